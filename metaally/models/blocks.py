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

from dataclasses import dataclass, replace
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
    "marginal_inverse",
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
    rho: float = float("nan")  # the V's correlation (NaN: V is not compound-symmetric)


def che_blocks(
    yi: np.ndarray, vi: np.ndarray, X: np.ndarray, blocks: ClusterBlocks, rho: float
) -> list[Block]:
    """Stack the data cluster by cluster, one ``Block`` per cluster size."""
    return [
        Block(X[g.rows], yi[g.rows], cs_covariance(vi[g.rows], rho), float(rho))
        for g in blocks.groups
    ]


def marginal_covariance(block: Block, sigma2_study: float, sigma2_within: float) -> np.ndarray:
    """``Sigma_j = V_j + sigma2_study * 1 1' + sigma2_within * I`` for every cluster of a block."""
    m = block.y.shape[1]
    return block.V + sigma2_study + sigma2_within * np.eye(m)


def marginal_inverse(
    block: Block, sigma2_study: float, sigma2_within: float
) -> tuple[np.ndarray, float]:
    """(Sigma_j^-1 for every cluster of the block, sum of log |Sigma_j|).

    The CHE Sigma_j = A + U C U' with A = diag(sigma2_within + (1 - rho) v_i),
    U = [1, sqrt(v)] and C = diag(sigma2_study, rho) is a rank-2 update of a diagonal
    matrix: Woodbury's identity Sigma^-1 = A^-1 - A^-1 U C (I + U'A^-1 U C)^-1 U'A^-1 and
    the determinant lemma |Sigma| = |A| |I + U'A^-1 U C| need only 2 x 2 inverses, in
    place of a LAPACK inverse and Cholesky factor per cluster.  When A is near singular
    (rho near 1 with sigma2_within near 0) or V is not compound-symmetric, they are
    computed directly.
    """
    v = np.diagonal(block.V, axis1=1, axis2=2)
    a = sigma2_within + (1.0 - block.rho) * v
    if not np.isfinite(block.rho) or not np.all(a > 1e-8 * v):
        sigma = marginal_covariance(block, sigma2_study, sigma2_within)
        chol = np.linalg.cholesky(sigma)
        return np.linalg.inv(sigma), 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    a_inv = 1.0 / a
    sd = np.sqrt(v)
    G = np.stack([a_inv, a_inv * sd], axis=2)  # A^-1 U, (C, m, 2)
    k01 = G[:, :, 1].sum(axis=1)
    K = np.stack([np.stack([a_inv.sum(axis=1), k01], axis=1),
                  np.stack([k01, (a_inv * v).sum(axis=1)], axis=1)], axis=1)  # U'A^-1 U
    c = np.array([sigma2_study, block.rho])
    D = np.eye(2) + K * c  # I + U'A^-1 U C (C scales the columns)
    det = D[:, 0, 0] * D[:, 1, 1] - D[:, 0, 1] * D[:, 1, 0]
    if not np.all(det > 0):  # Sigma not positive definite: the direct path says so
        return marginal_inverse(replace(block, rho=float("nan")), sigma2_study, sigma2_within)
    D_inv = np.stack([np.stack([D[:, 1, 1], -D[:, 0, 1]], axis=1),
                      np.stack([-D[:, 1, 0], D[:, 0, 0]], axis=1)], axis=1) / det[:, None, None]
    M = c[None, :, None] * D_inv  # C (I + U'A^-1 U C)^-1
    sinv = -((G @ M) @ G.transpose(0, 2, 1))
    idx = np.arange(v.shape[1])
    sinv[:, idx, idx] += a_inv
    return sinv, float(np.log(a).sum() + np.log(det).sum())
