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

from metaally.models.wls import rowdot

__all__ = [
    "Block",
    "che_blocks",
    "cluster_blocks",
    "ClusterBlocks",
    "cs_covariance",
    "marginal_covariance",
    "marginal_inverse",
    "MarginalInverse",
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
    values = np.asarray(cluster)
    if values.dtype.kind not in "iuf":  # strings, mixed labels: factorized as objects
        values = pd.Series(np.asarray(cluster, dtype=object))
    codes, labels = pd.factorize(values, sort=False)
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
    """Data of the clusters of one size: X (C, m, p), y (C, m), sampling covariances (C, m, m)
    and their diagonal ``v`` (C, m), kept contiguous: the per-cluster arithmetic reads it
    often, and a strided view of V's diagonal is many times slower to read."""

    X: np.ndarray
    y: np.ndarray
    V: np.ndarray
    v: np.ndarray
    rho: float = float("nan")  # the V's correlation (NaN: V is not compound-symmetric)


def che_blocks(
    yi: np.ndarray, vi: np.ndarray, X: np.ndarray, blocks: ClusterBlocks, rho: float
) -> list[Block]:
    """Stack the data cluster by cluster, one ``Block`` per cluster size."""
    return [
        Block(X[g.rows], yi[g.rows], cs_covariance(vi[g.rows], rho), vi[g.rows], float(rho))
        for g in blocks.groups
    ]


def marginal_covariance(block: Block, sigma2_study: float, sigma2_within: float) -> np.ndarray:
    """``Sigma_j = V_j + sigma2_study * 1 1' + sigma2_within * I`` for every cluster of a block."""
    m = block.y.shape[1]
    return block.V + sigma2_study + sigma2_within * np.eye(m)


@dataclass(frozen=True)
class MarginalInverse:
    """Sigma_j^-1 of every cluster of a block, without forming it where the CHE structure allows.

    Either ``dense_inverse`` (C, m, m), or the Woodbury form Sigma_j^-1 = diag(d) - d h' - g q'
    (all (C, m): the rank-2 correction G M G' with G = A^-1 U = [d, g], d = diag(A^-1), M
    symmetric, h = M00 d + M01 g, q = M01 d + M11 g).  ``apply``, ``trace`` and
    ``frobenius2`` then cost O(m) per cluster instead of O(m^2).  ``logdet`` is
    sum_j log |Sigma_j|.
    """

    logdet: float
    dense_inverse: np.ndarray | None = None
    d: np.ndarray | None = None
    g: np.ndarray | None = None
    h: np.ndarray | None = None
    q: np.ndarray | None = None

    def apply(self, b: np.ndarray) -> np.ndarray:
        """Sigma_j^-1 b_j for b of shape (C, m) or (C, m, p)."""
        if self.dense_inverse is not None:
            return self.dense_inverse @ b if b.ndim == 3 else np.einsum(
                "cab,cb->ca", self.dense_inverse, b)
        if b.ndim == 3:
            hb = np.einsum("cm,cmp->cp", self.h, b)[:, None, :]
            qb = np.einsum("cm,cmp->cp", self.q, b)[:, None, :]
            return self.d[:, :, None] * (b - hb) - self.g[:, :, None] * qb
        hb = rowdot(self.h, b)[:, None]
        qb = rowdot(self.q, b)[:, None]
        return self.d * (b - hb) - self.g * qb

    def trace(self) -> float:
        """sum_j tr Sigma_j^-1."""
        if self.dense_inverse is not None:
            return float(np.einsum("caa->", self.dense_inverse))
        return float(self.d.sum() - rowdot(self.d, self.h).sum() - rowdot(self.g, self.q).sum())

    def frobenius2(self) -> float:
        """sum_j ||Sigma_j^-1||_F^2: with R = d h' + g q', ||diag(d) - R||^2 =
        sum d^2 - 2 sum_i d_i R_ii + ||R||^2 and ||R||^2 = |d|^2|h|^2 + 2 (d.g)(h.q) +
        |g|^2|q|^2."""
        if self.dense_inverse is not None:
            return float(np.einsum("cab,cab->", self.dense_inverse, self.dense_inverse))
        d, g, h, q = self.d, self.g, self.h, self.q
        norm_r = (rowdot(d, d) * rowdot(h, h) + 2.0 * rowdot(d, g) * rowdot(h, q)
                  + rowdot(g, g) * rowdot(q, q))
        return float(rowdot(d, d).sum() - 2.0 * rowdot(d, d * h + g * q).sum() + norm_r.sum())

    def dense(self) -> np.ndarray:
        """Sigma_j^-1 as (C, m, m) matrices."""
        if self.dense_inverse is not None:
            return self.dense_inverse
        out = -(self.d[:, :, None] * self.h[:, None, :] + self.g[:, :, None] * self.q[:, None, :])
        idx = np.arange(self.d.shape[1])
        out[:, idx, idx] += self.d
        return out


def marginal_inverse(block: Block, sigma2_study: float, sigma2_within: float) -> MarginalInverse:
    """Sigma_j^-1 for every cluster of the block, and sum of log |Sigma_j|.

    The CHE Sigma_j = A + U C U' with A = diag(sigma2_within + (1 - rho) v_i),
    U = [1, sqrt(v)] and C = diag(sigma2_study, rho) is a rank-2 update of a diagonal
    matrix: Woodbury's identity Sigma^-1 = A^-1 - A^-1 U C (I + U'A^-1 U C)^-1 U'A^-1 and
    the determinant lemma |Sigma| = |A| |I + U'A^-1 U C| need only 2 x 2 inverses, in
    place of a LAPACK inverse and Cholesky factor per cluster (M = C (I + U'A^-1 U C)^-1 is
    symmetric by the push-through identity).  When A is near singular (rho near 1 with
    sigma2_within near 0) or V is not compound-symmetric, the inverse is computed directly.
    """
    v = block.v
    a = sigma2_within + (1.0 - block.rho) * v
    if not np.isfinite(block.rho) or not np.all(a > 1e-8 * v):
        return _dense_inverse(block, sigma2_study, sigma2_within)
    rho = block.rho
    a_inv = 1.0 / a
    g = a_inv * np.sqrt(v)  # A^-1 U = [a_inv, g]
    k00, k01, k11 = a_inv.sum(axis=1), g.sum(axis=1), rowdot(a_inv, v)  # U'A^-1 U
    d00, d01, d10, d11 = 1.0 + k00 * sigma2_study, k01 * rho, k01 * sigma2_study, 1.0 + k11 * rho
    det = d00 * d11 - d01 * d10  # |I + U'A^-1 U C|
    if not np.all(det > 0):  # Sigma not positive definite: the direct path says so
        return _dense_inverse(block, sigma2_study, sigma2_within)
    m00, m01, m11 = sigma2_study * d11 / det, -sigma2_study * d01 / det, rho * d00 / det
    h = m00[:, None] * a_inv + m01[:, None] * g
    q = m01[:, None] * a_inv + m11[:, None] * g
    return MarginalInverse(float(np.log(a).sum() + np.log(det).sum()), d=a_inv, g=g, h=h, q=q)


def _dense_inverse(block: Block, sigma2_study: float, sigma2_within: float) -> MarginalInverse:
    sigma = marginal_covariance(block, sigma2_study, sigma2_within)
    chol = np.linalg.cholesky(sigma)
    return MarginalInverse(float(2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()),
                           dense_inverse=np.linalg.inv(sigma))
