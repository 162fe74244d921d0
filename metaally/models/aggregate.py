"""One composite effect size per cluster (metafor's ``aggregate.escalc``, struct "CS").

For users who prefer one effect per study: within cluster j the effects are
combined by inverse-variance weighting under a compound-symmetric sampling
covariance V_j (``V_j[a, b] = rho * sqrt(v_a v_b)``, ``V_j[a, a] = v_a``)::

    yi_j = (1' V_j^-1 1)^-1 1' V_j^-1 y_j,     vi_j = (1' V_j^-1 1)^-1

(Borenstein et al. 2009, Introduction to Meta-Analysis, ch. 24; metafor
``aggregate(escalc_object, cluster, rho, struct = "CS")``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metaally.models.blocks import cluster_blocks, cs_covariance
from metaally.models.inputs import effect_arrays


def aggregate(yi: Any, vi: Any, cluster: Any, rho: float = 0.6) -> pd.DataFrame:
    """Composite effect and sampling variance for each cluster.

    yi_j = (1' V_j^-1 1)^-1 1' V_j^-1 y_j and vi_j = (1' V_j^-1 1)^-1, with the
    compound-symmetric V_j[a, b] = rho sqrt(v_a v_b) (metafor ``aggregate.escalc``,
    struct "CS"; Borenstein et al. 2009, ch. 24).

    Returns a DataFrame with columns ``cluster``, ``yi``, ``vi`` and ``k`` (number of
    effects combined), one row per cluster in order of first appearance.
    """
    if not (np.ndim(rho) == 0 and -1.0 < float(rho) < 1.0):
        raise ValueError(f"rho must be a number between -1 and 1; got {rho!r}")
    y, v, (labels,), _ = effect_arrays(
        yi, vi, np.asarray(cluster, dtype=object).reshape(-1), names=["cluster"]
    )
    blocks = cluster_blocks(labels)
    n = blocks.n_clusters
    out_y, out_v, out_k = np.empty(n), np.empty(n), np.empty(n, dtype=int)
    for group in blocks.groups:
        cov = cs_covariance(v[group.rows], float(rho))
        ones = np.ones((1, group.m))
        w = np.linalg.solve(cov, np.broadcast_to(ones.T, (len(group.clusters), group.m, 1)))[..., 0]
        total = w.sum(axis=1)  # 1' V^-1 1
        out_y[group.clusters] = np.einsum("cm,cm->c", w, y[group.rows]) / total
        out_v[group.clusters] = 1.0 / total
        out_k[group.clusters] = group.m
    return pd.DataFrame({"cluster": blocks.labels, "yi": out_y, "vi": out_v, "k": out_k})
