"""Block-diagonal bookkeeping for clustered effect sizes.

Effects from the same study (cluster) are dependent; effects from different
studies are not, so every covariance matrix of the multilevel model is
block-diagonal.  Rather than forming a k x k matrix, the rows are grouped into
clusters, and clusters of equal size m are stacked into arrays of shape
(C_m, m, ...), so that numpy's batched linear algebra (``np.linalg.cholesky``,
``inv``, ``eigh``, ``@``) handles all clusters of one size in one call.  The cost
is linear in the number of clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Block",
    "che_blocks",
    "cluster_blocks",
    "ClusterBlocks",
    "cs_covariance",
    "marginal_covariance",
    "SizeGroup",
]


@dataclass(frozen=True)
class SizeGroup:
    """The clusters holding ``m`` rows; ``rows[c, i]`` is row i of cluster ``clusters[c]``."""

    m: int
    rows: np.ndarray  # (C_m, m) row indices into the data, original order within a cluster
    clusters: np.ndarray  # (C_m,) cluster codes


@dataclass(frozen=True)
class ClusterBlocks:
    """Rows partitioned by cluster, clusters grouped by size."""

    labels: np.ndarray  # cluster labels, in order of first appearance
    codes: np.ndarray  # (k,) cluster code of each row (index into labels)
    groups: tuple[SizeGroup, ...]

    @property
    def n_clusters(self) -> int:
        return len(self.labels)


def cluster_blocks(cluster: Any) -> ClusterBlocks:
    """Group the rows of ``cluster`` (labels: numbers or strings) by cluster and cluster size."""
    codes, labels = pd.factorize(pd.Series(np.asarray(cluster, dtype=object)), sort=False)
    if np.any(codes < 0):
        raise ValueError("cluster labels must not be missing")
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(labels))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    groups = []
    for m in np.unique(sizes):
        clusters = np.flatnonzero(sizes == m)
        rows = order[starts[clusters][:, None] + np.arange(m)[None, :]]
        groups.append(SizeGroup(int(m), rows, clusters))
    return ClusterBlocks(np.asarray(labels, dtype=object), codes, tuple(groups))


def cs_covariance(vi: np.ndarray, rho: float) -> np.ndarray:
    """Compound-symmetric sampling covariances of stacked clusters.

    ``vi`` has shape (C, m); the result (C, m, m) has ``vi`` on the diagonal and
    ``rho * sqrt(vi_a * vi_b)`` off it: metafor's ``vcalc(vi, cluster, obs, rho)``
    when each effect in a cluster is a different observation (struct "CS").
    """
    sd = np.sqrt(vi)
    cov = rho * sd[:, :, None] * sd[:, None, :]
    idx = np.arange(vi.shape[1])
    cov[:, idx, idx] = vi
    return cov


@dataclass(frozen=True)
class Block:
    """Data of the clusters of one size: X (C, m, p), y (C, m), sampling covariances (C, m, m)."""

    X: np.ndarray
    y: np.ndarray
    V: np.ndarray


def che_blocks(
    yi: np.ndarray, vi: np.ndarray, X: np.ndarray, blocks: ClusterBlocks, rho: float
) -> list[Block]:
    """Stack the data cluster by cluster, one ``Block`` per cluster size."""
    return [
        Block(X[g.rows], yi[g.rows], cs_covariance(vi[g.rows], rho)) for g in blocks.groups
    ]


def marginal_covariance(block: Block, sigma2_study: float, sigma2_within: float) -> np.ndarray:
    """``Sigma_j = V_j + sigma2_study * 1 1' + sigma2_within * I`` for every cluster of a block."""
    m = block.y.shape[1]
    return block.V + sigma2_study + sigma2_within * np.eye(m)
