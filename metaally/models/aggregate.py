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
from metaally.models.inputs import check_aligned, effect_arrays

__all__ = ["aggregate"]


def aggregate(
    yi: Any, vi: Any, study: Any, rho: float = 0.6, sigma2_within: float = 0.0
) -> pd.DataFrame:
    """Composite effect and sampling variance for each study.

    With A_j = V_j + sigma2_within I, yi_j = (1' A_j^-1 1)^-1 1' A_j^-1 y_j and
    vi_j = (1' A_j^-1 1)^-1, V_j the compound-symmetric sampling covariance
    V_j[a, b] = rho sqrt(v_a v_b), V_j[a, a] = v_a (metafor ``aggregate.escalc``,
    struct "CS", when ``sigma2_within`` = 0; Borenstein et al. 2009, ch. 24).  With
    ``sigma2_within`` > 0 (a fitted CHE model's effect-level variance) the composite is
    the study's GLS mean under the model's within-study covariance, whose weight in the
    pooled mean is 1/(vi_j + sigma2_study) (Sherman-Morrison); ``rho=0`` treats the
    effects of a study as independent.

    Returns a DataFrame with columns ``study``, ``yi``, ``vi`` and ``k`` (number of
    effects combined), one row per study in order of first appearance.  Rows with a
    missing yi, vi or study are dropped with a warning.
    """
    if not (np.ndim(rho) == 0 and -1.0 < float(rho) < 1.0):
        raise ValueError(f"rho must be a number between -1 and 1; got {rho!r}")
    if not (np.ndim(sigma2_within) == 0 and np.isfinite(sigma2_within) and sigma2_within >= 0):
        raise ValueError(f"sigma2_within must be a non-negative number; got {sigma2_within!r}")
    check_aligned(yi=yi, vi=vi, study=study)
    y, v, (labels,), _ = effect_arrays(
        yi, vi, np.asarray(study, dtype=object).reshape(-1), names=["study"]
    )
    blocks = cluster_blocks(labels)
    n = blocks.n_clusters
    out_y, out_v, out_k = np.empty(n), np.empty(n), np.empty(n, dtype=int)
    for group in blocks.groups:
        cov = cs_covariance(v[group.rows], float(rho)) + float(sigma2_within) * np.eye(group.m)
        ones = np.ones((1, group.m))
        w = np.linalg.solve(cov, np.broadcast_to(ones.T, (len(group.clusters), group.m, 1)))[..., 0]
        total = w.sum(axis=1)  # 1' A^-1 1
        out_y[group.clusters] = np.einsum("cm,cm->c", w, y[group.rows]) / total
        out_v[group.clusters] = 1.0 / total
        out_k[group.clusters] = group.m
    return pd.DataFrame({"study": blocks.labels, "yi": out_y, "vi": out_v, "k": out_k})
