"""Weighted least squares vectorised over a batch of data sets.

Every univariate model quantity (τ² estimators, the fixed-effects fit, Q,
tr(P)) is built from the weighted fit of ``y`` (shape (B, k)) on a design ``X``
that is either shared, (k, p), or one per data set, (B, k, p).  Weights are
``w = mask / (v + τ²)``, so masked (padding) entries contribute nothing.

The projection matrix P = W − W X (X'WX)⁻¹ X'W (Viechtbauer 2005, metafor's
``P``) is never formed: every trace below reduces to p × p algebra, so the cost
is O(B·k·p²) and memory O(B·k·p).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "BLAS_MIN_K",
    "Design",
    "inverse",
    "logdet",
    "rowdot",
    "rowsum",
    "trace_p",
    "traces",
    "wls",
    "WLSFit",
    "ypy_squared",
]


class Design:
    """A design matrix shared by every data set, (k, p), or one per set, (B, k, p).

    Holds the row outer products x_i x_i' so that X'WX for any weights is one
    matrix product, ``w @ outer``.  The intercept-only design (a shared column of
    ones, the common case) reduces every product to a row sum.
    """

    def __init__(self, X: np.ndarray) -> None:
        if X.ndim not in (2, 3):
            raise ValueError(f"the design must be (k, p) or (B, k, p), got shape {X.shape}")
        self.X = X
        self.p = X.shape[-1]
        self.shared = X.ndim == 2
        self.ones = self.shared and self.p == 1 and bool(np.all(X == 1.0))
        self._outer = (
            None if self.ones
            else (X[..., :, None] * X[..., None, :]).reshape(*X.shape[:-1], self.p**2)
        )

    def take(self, rows: np.ndarray) -> Design:
        """The design of a subset of the data sets (itself when shared)."""
        return self if self.shared else Design(self.X[rows])

    def gram(self, w: np.ndarray) -> np.ndarray:
        """X'WX = Σ_i w_i x_i x_i', shape (B, p, p)."""
        if self.ones:
            return rowsum(w)[:, None, None]
        return _contract(w, self._outer).reshape(w.shape[0], self.p, self.p)

    def gram_prod(self, a: np.ndarray, *factors: np.ndarray) -> np.ndarray:
        """X' diag(a ∘ b ∘ …) X, shape (B, p, p), for the ``factors`` b, …; no product
        temporary for the intercept-only design."""
        if self.ones:
            if len(factors) == 1:
                return rowdot(a, factors[0])[:, None, None]
            subscripts = ",".join(["bk"] * (len(factors) + 1)) + "->b"
            return np.einsum(subscripts, a, *factors)[:, None, None]
        prod = a * factors[0]
        for f in factors[1:]:
            prod *= f
        return self.gram(prod)

    def xt_prod(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """X'(a ∘ b), shape (B, p)."""
        if self.ones:
            return rowdot(a, b)[:, None]
        return self.xt(a * b)

    def xt(self, u: np.ndarray) -> np.ndarray:
        """X'u = Σ_i u_i x_i, shape (B, p)."""
        if self.ones:
            return rowsum(u)[:, None]
        return _contract(u, self.X)

    def fitted(self, beta: np.ndarray) -> np.ndarray:
        """X β, shape (B, k) (broadcastable to it for the intercept-only design)."""
        if self.ones:
            return beta
        if self.shared:
            return beta @ self.X.T
        return np.einsum("bkp,bp->bk", self.X, beta)


@dataclass(frozen=True)
class WLSFit:
    """Weighted fit of ``y`` on ``design``: weights ``w``, (X'WX)⁻¹ and β̂; the residuals
    y − Xβ̂ and P y are computed when first asked for."""

    w: np.ndarray
    gram_inv: np.ndarray
    beta: np.ndarray
    y: np.ndarray
    design: Design

    @cached_property
    def resid(self) -> np.ndarray:
        """Residuals e = y − Xβ̂."""
        return self.y - self.design.fitted(self.beta)

    @cached_property
    def pe(self) -> np.ndarray:
        """P y = W e (formed in place, without keeping e: the score iterations need only P y)."""
        pe = self.y - self.design.fitted(self.beta)
        pe *= self.w
        return pe

    @cached_property
    def rss(self) -> np.ndarray:
        """Weighted residual sum of squares y'Py = Σ w_i e_i² (Cochran's Q for FE weights),
        summed without forming w ∘ e."""
        return np.einsum("bk,bk,bk->b", self.w, self.resid, self.resid)


def wls(y: np.ndarray, w: np.ndarray, design: Design) -> WLSFit:
    """Weighted least squares β̂ = (X'WX)⁻¹ X'Wy for every row of ``y`` at once."""
    gram_inv = inverse(design.gram(w))
    beta = np.einsum("bij,bj->bi", gram_inv, design.xt_prod(w, y))
    return WLSFit(w=w, gram_inv=gram_inv, beta=beta, y=y, design=design)


def inverse(a: np.ndarray) -> np.ndarray:
    """Batched inverse of symmetric p × p matrices; a singular one gets its pseudo-inverse."""
    if a.shape[-1] == 1:
        with np.errstate(divide="ignore"):
            return np.where(a != 0, 1.0 / a, 0.0)
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a, hermitian=True)


def trace_p(fit: WLSFit, design: Design) -> np.ndarray:
    """tr(P) = Σ w_i − tr((X'WX)⁻¹ X'W²X)."""
    return rowsum(fit.w) - _trace_prod(fit.gram_inv, design.gram_prod(fit.w, fit.w))


def traces(fit: WLSFit, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """(tr P, tr PP), with G = X'WX:
    tr P = Σ w_i − tr(G⁻¹ X'W²X),
    tr PP = Σ w_i² − 2 tr(G⁻¹ X'W³X) + tr((G⁻¹ X'W²X)²)."""
    w = fit.w
    a2 = fit.gram_inv @ design.gram_prod(w, w)
    tr_p = rowsum(w) - np.einsum("bii->b", a2)
    tr_pp = (
        rowdot(w, w)
        - 2.0 * _trace_prod(fit.gram_inv, design.gram_prod(w, w, w))
        + np.einsum("bij,bji->b", a2, a2)
    )
    return tr_p, tr_pp


def ypy_squared(fit: WLSFit) -> np.ndarray:
    """y'PPy = Σ w_i² e_i² (P y = W e)."""
    return rowdot(fit.pe, fit.pe)


def logdet(a: np.ndarray) -> np.ndarray:
    """log |A| for a batch of positive definite matrices."""
    return np.linalg.slogdet(a)[1]


def rowsum(a: np.ndarray) -> np.ndarray:
    """Σ_i a[b, i] (einsum: fast for short rows and for one long row alike)."""
    return np.einsum("bk->b", a)


BLAS_MIN_K = 64
"""Row length from which :func:`rowdot` uses BLAS dot products (faster there; einsum
is faster for the short rows of large batches)."""


def rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ_i a[b, i] b[b, i] without a temporary."""
    if a.shape[-1] >= BLAS_MIN_K:
        return np.vecdot(a, b)
    return np.einsum("bk,bk->b", a, b)


def _trace_prod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tr(A B) for batches of symmetric matrices."""
    return np.einsum("bij,bji->b", a, b)


def _contract(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Σ_i w[b, i] m[(b,) i, q] for a shared (k, q) or per-set (B, k, q) ``m``."""
    if m.ndim == 2:
        return w @ m
    return np.einsum("bk,bkq->bq", w, m)
