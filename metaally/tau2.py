"""Estimators of the between-study variance τ², vectorised over a batch of data sets.

Each estimator is one small function with the definition of metafor 3.8's
``rma.uni(method=...)`` (Viechtbauer 2010, J Stat Softw 36(3); Viechtbauer 2005,
J Educ Behav Stat 30(3)), moderators included, truncated at 0.  Notation: k
studies, p coefficients, w_i = 1/(v_i + τ²), P = W − WX(X'WX)⁻¹X'W, Q(τ²) = y'P(τ²)y.

As metafor does, the estimators see y centred at its mean (``Ymc`` in rma.uni);
with an intercept in the model this changes nothing, without one it is metafor's
convention.

| method | definition |
|---|---|
| FE | τ² = 0 |
| DL | (Q(0) − (k − p)) / tr P(0)  (DerSimonian & Laird 1986) |
| HE | (y'(I − H)y − tr((I − H)V)) / (k − p), H the OLS hat matrix (Hedges 1983) |
| HS | (Q(0) − k) / Σ 1/v_i  (Hunter & Schmidt 2004) |
| SJ | τ₀² Q(τ₀²) / (k − p), τ₀² = Σ(y_i − ȳ)²/k, one step (Sidik & Jonkman 2005) |
| PM, EB | root of Q(τ²) = k − p, 0 if Q(0) < k − p (Paule & Mandel 1982; Morris 1983) |
| ML | root of y'PPy = Σ w_i (Fisher scoring from max(0, HE)) |
| REML | root of y'PPy = tr P (Fisher scoring from max(0, HE)) |

ML and REML use metafor's Fisher scoring (same start, same step halving at the
0 bound, same check that τ² = 0 is not more likely), iterated to a relative
change below 1e-12; PM/EB use Newton's method on Q, which is decreasing and
convex in τ², so the iterates rise monotonically to the root (metafor uses
``uniroot`` there; the root is the same).  A data set whose iteration does not
converge falls back to a bracketing root search (Brent) on the same estimating
equation, with a ``RuntimeWarning`` saying so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from metaally.wls import Design, WLSFit, logdet, trace_p, trace_pp, wls, ypy_squared

METHODS = ("FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")

TOL = 1e-12
"""Convergence: change in τ² below TOL × (τ² + mean v_i), scale-free."""

MAXITER = 500


class Tau2Estimate(NamedTuple):
    """τ² per data set and whether the bracketing fallback was needed for it."""

    tau2: np.ndarray
    fallback: np.ndarray


@dataclass(frozen=True)
class Problem:
    """A batch of data sets as the estimators see them.

    ``y`` is centred per data set, masked entries hold y = 0, v = 1 and weight 0.
    """

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    design: Design
    k: np.ndarray
    df: np.ndarray

    @property
    def vbar(self) -> np.ndarray:
        return np.sum(self.m * self.v, axis=1) / self.k

    def weights(self, tau2: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.m[rows] / (self.v[rows] + tau2[:, None])

    def fit(self, tau2: np.ndarray, rows: np.ndarray | slice = slice(None)) -> WLSFit:
        design = self.design if isinstance(rows, slice) else self.design.take(rows)
        return wls(self.y[rows], self.weights(tau2, rows), design)

    def sub(self, rows: np.ndarray) -> Problem:
        return Problem(
            self.y[rows], self.v[rows], self.m[rows], self.design.take(rows),
            self.k[rows], self.df[rows],
        )


def make_problem(
    y: np.ndarray, v: np.ndarray, design: Design, mask: np.ndarray | None = None,
    center: bool = True,
) -> Problem:
    """Batch arrays (B, k) → :class:`Problem` (NaN entries are masked when ``mask`` is None)."""
    if mask is None:
        mask = np.isfinite(y) & np.isfinite(v)
    m = mask.astype(float)
    v = np.where(mask, v, 1.0)
    y = np.where(mask, y, 0.0)
    k = m.sum(axis=1)
    if center:
        y = (y - (y.sum(axis=1) / np.maximum(k, 1))[:, None]) * m
    return Problem(y=y, v=v, m=m, design=design, k=k, df=k - design.p)


def estimate_tau2(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str = "REML",
    mask: np.ndarray | None = None,
) -> Tau2Estimate:
    """τ² by ``method`` for one data set (y, v of shape (k,)) or a batch ((B, k)).

    ``X`` is (k, p) shared or (B, k, p); ``mask`` marks the entries to use
    (default: the finite ones).  Data sets with k ≤ p get τ² = 0.  Returns
    arrays of shape (B,), or scalars for 1-D input.
    """
    single = np.ndim(y) == 1
    y2, v2 = np.atleast_2d(y).astype(float), np.atleast_2d(v).astype(float)
    m2 = None if mask is None else np.atleast_2d(mask)
    est = estimate(make_problem(y2, v2, Design(np.asarray(X, dtype=float)), m2), method)
    if single:
        return Tau2Estimate(float(est.tau2[0]), bool(est.fallback[0]))
    return est


def estimate(pb: Problem, method: str) -> Tau2Estimate:
    """Dispatch to the estimator named ``method`` (one of :data:`METHODS`), truncated at 0."""
    tau2 = np.zeros(pb.y.shape[0])
    fallback = np.zeros(pb.y.shape[0], dtype=bool)
    rows = np.flatnonzero(pb.df > 0)
    if rows.size:
        est = _ESTIMATORS[method](pb.sub(rows))
        tau2[rows] = np.maximum(est.tau2, 0.0)
        fallback[rows] = est.fallback
    return Tau2Estimate(tau2, fallback)


def _closed(tau2: np.ndarray) -> Tau2Estimate:
    return Tau2Estimate(tau2, np.zeros(tau2.shape, dtype=bool))


def _fe(pb: Problem) -> Tau2Estimate:
    return _closed(np.zeros(pb.y.shape[0]))


def _dl(pb: Problem) -> Tau2Estimate:
    fit = pb.fit(np.zeros(pb.y.shape[0]))
    return _closed((fit.rss - pb.df) / trace_p(fit, pb.design))


def _hs(pb: Problem) -> Tau2Estimate:
    fit = pb.fit(np.zeros(pb.y.shape[0]))
    return _closed((fit.rss - pb.k) / fit.w.sum(axis=1))


def _he(pb: Problem) -> Tau2Estimate:
    fit = wls(pb.y, pb.m, pb.design)
    tr_pv = np.sum(pb.m * pb.v, axis=1) - np.einsum(
        "bij,bji->b", fit.gram_inv, pb.design.gram(pb.m * pb.v)
    )
    return _closed((fit.rss - tr_pv) / pb.df)


def _sj(pb: Problem) -> Tau2Estimate:
    tau0 = np.sum(pb.m * pb.y**2, axis=1) / pb.k
    return _closed(tau0 * pb.fit(tau0).rss / pb.df)


def _pm(pb: Problem) -> Tau2Estimate:
    return solve_q(pb, pb.df)


def solve_q(pb: Problem, target: np.ndarray) -> Tau2Estimate:
    """Root τ² ≥ 0 of Q(τ²) = target, or 0 where Q(0) ≤ target.

    Q(τ²) = y'P(τ²)y is decreasing (dQ/dτ² = −y'PPy) and convex
    (d²Q/dτ² = 2y'PPPy ≥ 0), so Newton's method from 0 rises monotonically to
    the root.  Used by PM/EB and by the Q-profile confidence interval.
    """
    tau2 = np.zeros(pb.y.shape[0])
    active = np.ones(pb.y.shape[0], dtype=bool)
    for _ in range(MAXITER):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        fit = pb.fit(tau2[rows], rows)
        excess = fit.rss - target[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(excess > 0, excess / ypy_squared(fit), 0.0)
        step = np.nan_to_num(step, nan=0.0, posinf=0.0)
        tau2[rows] += step
        active[rows[step <= TOL * (tau2[rows] + pb.vbar[rows])]] = False
    return _fallback(
        pb, tau2, active, lambda fit, t, rows: fit.rss - target[rows],
        "the Paule-Mandel equation Q(tau^2) = k - p",
    )


def _score_reml(fit: WLSFit, pb: Problem) -> tuple[np.ndarray, np.ndarray]:
    """REML score ×2 and expected information ×2: y'PPy − tr P, tr PP."""
    design = pb.design
    return ypy_squared(fit) - trace_p(fit, design), trace_pp(fit, design)


def _score_ml(fit: WLSFit, pb: Problem) -> tuple[np.ndarray, np.ndarray]:
    """ML score ×2 and expected information ×2: y'PPy − Σw_i, Σw_i²."""
    return ypy_squared(fit) - fit.w.sum(axis=1), np.sum(fit.w**2, axis=1)


def _loglik(fit: WLSFit, pb: Problem, restricted: bool) -> np.ndarray:
    """(Restricted) log-likelihood up to a constant: −½Σlog(v+τ²) − ½y'Py [− ½log|X'WX|]."""
    ll = 0.5 * np.sum(pb.m * np.log(np.where(pb.m > 0, fit.w, 1.0)), axis=1) - 0.5 * fit.rss
    if restricted:
        ll -= 0.5 * logdet(pb.design.gram(fit.w))
    return ll


def _fisher_scoring(pb: Problem, restricted: bool) -> Tau2Estimate:
    """metafor's Fisher scoring: τ² ← τ² + score/information from max(0, HE),
    the step halved while it would cross 0; then τ² = 0 if that is more likely."""
    score = _score_reml if restricted else _score_ml
    tau2 = np.maximum(_he(pb).tau2, 0.0)
    active = np.ones(pb.y.shape[0], dtype=bool)
    for _ in range(MAXITER):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        sub = pb.sub(rows)
        u, info = score(sub.fit(tau2[rows]), sub)
        with np.errstate(divide="ignore", invalid="ignore"):
            adj = np.nan_to_num(u / info, nan=0.0, posinf=0.0, neginf=0.0)
        new = _step_within_bound(tau2[rows], adj)
        change = np.abs(new - tau2[rows])
        tau2[rows] = new
        active[rows[change <= TOL * (new + pb.vbar[rows])]] = False
    est = _fallback(
        pb, tau2, active, lambda fit, t, rows: score(fit, pb.sub(rows))[0],
        "the restricted likelihood score" if restricted else "the likelihood score",
    )
    rows = np.flatnonzero(est.tau2 > 0)
    if rows.size:
        sub = pb.sub(rows)
        ll0 = _loglik(sub.fit(np.zeros(rows.size)), sub, restricted)
        ll = _loglik(sub.fit(est.tau2[rows]), sub, restricted)
        est.tau2[rows[ll0 - ll > 1e-10]] = 0.0
    return est


def _step_within_bound(tau2: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """τ² + adj, with adj halved (as often as needed) while the sum would be negative."""
    new = tau2 + adj
    cross = new < 0
    if cross.any():
        t, a = tau2[cross], adj[cross]
        with np.errstate(divide="ignore"):
            halvings = np.ceil(np.log2(-a / t))
        new[cross] = np.where(t > 0, np.maximum(t + a * 2.0**-halvings, 0.0), 0.0)
    return new


def _fallback(
    pb: Problem, tau2: np.ndarray, failed: np.ndarray,
    equation: Callable[[WLSFit, np.ndarray, np.ndarray], np.ndarray], name: str,
) -> Tau2Estimate:
    """Solve ``equation`` (decreasing through its root) by Brent's method for the failed rows."""
    rows = np.flatnonzero(failed)
    for i in rows:
        idx = np.array([i])

        def f(t: float, idx: np.ndarray = idx) -> float:
            tt = np.array([t])
            return float(equation(pb.fit(tt, idx), tt, idx)[0])

        if f(0.0) <= 0:
            tau2[i] = 0.0
            continue
        hi = max(float(pb.vbar[i]), 1e-300)
        while f(hi) > 0:
            hi *= 10.0
        tau2[i] = brentq(f, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=1000)
    if rows.size:
        warnings.warn(
            f"tau^2 iteration did not converge for {rows.size} of {pb.y.shape[0]} data set(s); "
            f"solved {name} by a bracketing root search (Brent) instead",
            RuntimeWarning,
            stacklevel=4,
        )
    return Tau2Estimate(tau2, failed)


def _ml(pb: Problem) -> Tau2Estimate:
    return _fisher_scoring(pb, restricted=False)


def _reml(pb: Problem) -> Tau2Estimate:
    return _fisher_scoring(pb, restricted=True)


_ESTIMATORS: dict[str, Callable[[Problem], Tau2Estimate]] = {
    "FE": _fe,
    "DL": _dl,
    "HE": _he,
    "HS": _hs,
    "SJ": _sj,
    "PM": _pm,
    "EB": _pm,
    "ML": _ml,
    "REML": _reml,
}
