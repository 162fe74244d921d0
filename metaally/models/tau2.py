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
``uniroot`` there; the root is the same).  Fisher scoring can oscillate (metafor
then stops with "did not converge"; about 1 in 100 random k = 10 data sets with
unequal v_i) or creep towards the root (its steps shrinking by a factor close to
1 per iteration): after 100 steps such data sets are finished by a vectorised
bracketing search on the same score equation.  It starts where the iteration
stopped, steps outward in the direction the iteration was moving (step sizes
doubling from the last step) until the score changes sign, so that it brackets
the root the iteration was heading to rather than another stationary point, and
then closes in by regula falsi (Illinois).  As in metafor, the ML/REML result is
finally compared with τ² = 0 and the more likely of the two returned: the
(restricted) likelihood can have a local maximum at the bound and a higher one
inside (dat.bcg studies 1, 3, 5, 13), or the reverse.  Data sets that metafor
would report as not converged are flagged in ``fallback`` (the public functions
warn with :func:`warn_fallback`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

from metaally.models.wls import (
    Design,
    WLSFit,
    logdet,
    rowdot,
    rowsum,
    trace_p,
    traces,
    wls,
    ypy_squared,
)

__all__ = [
    "FISHER_MAXITER",
    "LOOSE_TOL",
    "MAXITER",
    "METHODS",
    "TOL",
    "WARM_START_METHODS",
    "bracketed_root",
    "Equation",
    "estimate",
    "estimate_tau2",
    "loglik",
    "make_problem",
    "Problem",
    "solve_q",
    "Tau2Estimate",
    "warn_fallback",
]

METHODS = ("FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")

WARM_START_METHODS = ("ML", "REML")
"""The estimators that iterate from a start and so can take one (``estimate(start=)``)."""

TOL = 1e-12
"""Convergence: change in τ² below TOL × (τ² + mean v_i), scale-free."""

LOOSE_TOL = 1e-5
"""metafor's default threshold, relative: a Fisher iteration still moving more than this
after FISHER_MAXITER steps is one metafor reports as "did not converge"."""

FISHER_MAXITER = 100
"""metafor's ``maxiter`` for Fisher scoring."""

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
    vbar: np.ndarray
    complete: bool = False

    def weights(self, tau2: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """w_i = 1/(v_i + τ²), 0 for masked entries (written to ``out`` if given)."""
        w = np.add(self.v, tau2[:, None], out=out)
        np.divide(1.0, w, out=w)
        if not self.complete:
            w *= self.m
        return w

    def fit(self, tau2: np.ndarray, out: np.ndarray | None = None) -> WLSFit:
        """WLS fit of every data set at its ``tau2`` (weights ``1/(v_i + τ²)``, written to
        ``out`` if given: iterations reuse one buffer instead of a fresh array per step)."""
        return wls(self.y, self.weights(tau2, out), self.design)

    @cached_property
    def fe_fit(self) -> WLSFit:
        """The fit at τ² = 0 (fixed-effects weights 1/v_i), shared by the estimators, the
        likelihood check at the bound and Q."""
        return self.fit(np.zeros(self.y.shape[0]))

    def centred(self) -> Problem:
        """The same data sets with y centred at its mean (metafor's ``Ymc``)."""
        y = self.y - (rowsum(self.y) / np.maximum(self.k, 1))[:, None]
        if not self.complete:
            y *= self.m
        return replace(self, y=y)

    def sub(self, rows: np.ndarray) -> Problem:
        """The data sets ``rows`` (sorted, unique indices); itself when that is all of them."""
        if rows.size == self.y.shape[0]:
            return self
        return Problem(
            self.y[rows], self.v[rows], self.m[rows], self.design.take(rows),
            self.k[rows], self.df[rows], self.vbar[rows], self.complete,
        )


class _WorkingSet:
    """The rows of ``pb`` still iterating; re-extracted only when fewer than half remain,
    so that the copies cost O(B) in total rather than per iteration."""

    def __init__(self, pb: Problem, rows: np.ndarray | None = None) -> None:
        self.pb = pb
        self.idx = np.arange(pb.y.shape[0]) if rows is None else rows
        self.sub = pb if rows is None else pb.sub(rows)
        self.w: np.ndarray | None = None

    def fit(self, tau2: np.ndarray) -> WLSFit:
        """The working rows' fit at ``tau2``, its weights in one buffer reused until the set
        shrinks (valid until the next call).  Measured: this saves a fresh k-length array
        (and its page faults) per Fisher step; in :func:`solve_q` it made PM slower."""
        if self.w is None:
            self.w = np.empty_like(self.sub.v)
        return self.sub.fit(tau2, out=self.w)

    def shrink(self, active: np.ndarray) -> bool:
        """Drop finished rows if worthwhile; False when none is left."""
        keep = active[self.idx]
        if keep.sum() < 0.5 * self.idx.size:
            self.idx = self.idx[keep]
            self.sub = self.pb.sub(self.idx)
            self.w = None
        return bool(keep.any())


def make_problem(
    y: np.ndarray, v: np.ndarray, design: Design, mask: np.ndarray | None = None,
    center: bool = True,
) -> Problem:
    """Batch arrays (B, k) → :class:`Problem` (NaN entries are masked when ``mask`` is None)."""
    if mask is None:
        mask = np.isfinite(y) & np.isfinite(v)
    m = mask.astype(float)
    complete = bool(mask.all())
    if not complete:
        v = np.where(mask, v, 1.0)
        y = np.where(mask, y, 0.0)
    k = rowsum(m)
    vbar = rowdot(m, v) / np.maximum(k, 1)
    pb = Problem(
        y=y, v=v, m=m, design=design, k=k, df=k - design.p, vbar=vbar, complete=complete
    )
    return pb.centred() if center else pb


def estimate_tau2(
    y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str = "REML",
    mask: np.ndarray | None = None,
) -> Tau2Estimate:
    """τ² by ``method`` for one data set (y, v of shape (k,)) or a batch ((B, k)).

    ``X`` is (k, p) shared or (B, k, p); ``mask`` marks the entries to use
    (default: the finite ones).  Data sets with k ≤ p get τ² = 0.  Returns
    arrays of shape (B,), or scalars for 1-D input.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    single = np.ndim(y) == 1
    y2, v2 = np.atleast_2d(y).astype(float), np.atleast_2d(v).astype(float)
    m2 = None if mask is None else np.atleast_2d(mask)
    est = estimate(make_problem(y2, v2, Design(np.asarray(X, dtype=float)), m2), method)
    warn_fallback(est.fallback, method, stacklevel=2)
    if single:
        return Tau2Estimate(float(est.tau2[0]), bool(est.fallback[0]))
    return est


def estimate(pb: Problem, method: str, start: np.ndarray | None = None) -> Tau2Estimate:
    """Dispatch to the estimator named ``method`` (one of :data:`METHODS`), truncated at 0.

    ``start`` (ML and REML only; one τ² per data set) is a value near the root, e.g. the
    estimate of a slightly different data set: see :func:`_fisher_scoring`.  The other
    estimators are closed-form or start from 0 by construction and do not take it.
    Does not warn: callers report ``fallback`` with :func:`warn_fallback`."""
    if start is not None and method not in WARM_START_METHODS:
        raise ValueError(f"start applies to the ML and REML iterations, not to {method}")
    tau2 = np.zeros(pb.y.shape[0])
    fallback = np.zeros(pb.y.shape[0], dtype=bool)
    rows = np.flatnonzero(pb.df > 0)
    if rows.size:
        sub = pb.sub(rows)
        if start is None:
            est = _ESTIMATORS[method](sub)
        else:
            est = _fisher_scoring(sub, method == "REML", np.asarray(start, dtype=float)[rows])
        tau2[rows] = np.maximum(est.tau2, 0.0)
        fallback[rows] = est.fallback
    return Tau2Estimate(tau2, fallback)


def _closed(tau2: np.ndarray) -> Tau2Estimate:
    return Tau2Estimate(tau2, np.zeros(tau2.shape, dtype=bool))


def _fe(pb: Problem) -> Tau2Estimate:
    return _closed(np.zeros(pb.y.shape[0]))


def _dl(pb: Problem) -> Tau2Estimate:
    fit = pb.fe_fit
    return _closed((fit.rss - pb.df) / trace_p(fit, pb.design))


def _hs(pb: Problem) -> Tau2Estimate:
    fit = pb.fe_fit
    return _closed((fit.rss - pb.k) / rowsum(fit.w))


def _he(pb: Problem) -> Tau2Estimate:
    fit = wls(pb.y, pb.m, pb.design)
    tr_pv = rowdot(pb.m, pb.v) - np.einsum(
        "bij,bji->b", fit.gram_inv, pb.design.gram_prod(pb.m, pb.v)
    )
    return _closed((fit.rss - tr_pv) / pb.df)


def _sj(pb: Problem) -> Tau2Estimate:
    tau0 = rowdot(pb.y, pb.y) / pb.k
    return _closed(tau0 * pb.fit(tau0).rss / pb.df)


def _pm(pb: Problem) -> Tau2Estimate:
    return solve_q(pb, pb.df)


Equation = Callable[[Problem, np.ndarray, np.ndarray], np.ndarray]
"""f(sub-problem, τ², row indices) for a batch of rows; decreasing through its root."""


def solve_q(pb: Problem, target: np.ndarray) -> Tau2Estimate:
    """Root τ² ≥ 0 of Q(τ²) = target, or 0 where Q(0) ≤ target.

    Q(τ²) = y'P(τ²)y is decreasing (dQ/dτ² = −y'PPy) and convex
    (d²Q/dτ² = 2y'PPPy ≥ 0), so Newton's method from 0 rises monotonically to
    the root.  Used by PM/EB and by the Q-profile confidence interval.
    """
    tau2 = np.zeros(pb.y.shape[0])
    last = np.zeros(pb.y.shape[0])
    active = np.ones(pb.y.shape[0], dtype=bool)
    work = _WorkingSet(pb)
    for _ in range(MAXITER):
        if not work.shrink(active):
            break
        idx, sub = work.idx, work.sub
        fit = sub.fit(tau2[idx])
        excess = fit.rss - target[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where((excess > 0) & active[idx], excess / ypy_squared(fit), 0.0)
        step = np.nan_to_num(step, nan=0.0, posinf=0.0)
        tau2[idx] += step
        last[idx] = np.where(active[idx], step, last[idx])
        active[idx[step <= TOL * (tau2[idx] + sub.vbar)]] = False

    def equation(sub: Problem, t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return sub.fit(t).rss - target[rows]

    return _finish(pb, tau2, last, active, active, equation)


def _score_reml(fit: WLSFit, pb: Problem) -> tuple[np.ndarray, np.ndarray]:
    """REML score ×2 and expected information ×2: y'PPy − tr P, tr PP."""
    tr_p, tr_pp = traces(fit, pb.design)
    return ypy_squared(fit) - tr_p, tr_pp


def _score_ml(fit: WLSFit, pb: Problem) -> tuple[np.ndarray, np.ndarray]:
    """ML score ×2 and expected information ×2: y'PPy − Σw_i, Σw_i²."""
    return ypy_squared(fit) - rowsum(fit.w), rowdot(fit.w, fit.w)


def loglik(
    fit: WLSFit, pb: Problem, restricted: bool, constants: bool = False
) -> np.ndarray:
    """(Restricted) log-likelihood of each row at the τ² of ``fit``: −½Σlog(v+τ²) − ½y'Py
    [− ½log|X'WX| for REML], up to a constant that does not depend on τ².

    With ``constants`` it is metafor's ``logLik``: ML −½[k log 2π + Σlog(v_i+τ²) + Σw_i e_i²];
    REML −½[(k−p) log 2π − log|X'X| + Σlog(v_i+τ²) + log|X'WX| + Σw_i e_i²]
    (Viechtbauer 2005, J Educ Behav Stat 30:261-293).
    """
    log_w = np.log(fit.w if pb.complete else np.where(pb.m > 0, fit.w, 1.0))
    ll = 0.5 * (rowsum(log_w) if pb.complete else rowdot(pb.m, log_w)) - 0.5 * fit.rss
    if restricted:
        ll -= 0.5 * logdet(pb.design.gram(fit.w))
    if constants:
        if restricted:
            ll += 0.5 * logdet(pb.design.gram(pb.m)) - 0.5 * pb.df * np.log(2 * np.pi)
        else:
            ll -= 0.5 * pb.k * np.log(2 * np.pi)
    return ll


def _fisher_scoring(
    pb: Problem, restricted: bool, start: np.ndarray | None = None
) -> Tau2Estimate:
    """metafor's Fisher scoring: τ² ← τ² + score/information from max(0, HE), the step
    halved while it would cross 0, at most 100 steps; then τ² = 0 if that is more likely.

    Rows still moving after 100 steps are finished by :func:`bracketed_root`, starting
    from their last τ² and last (unhalved) step; they count as a fallback (metafor would
    stop with "did not converge") unless their last step was already below metafor's
    default threshold (10⁻⁵, here relative to τ² + mean v_i).

    With a ``start`` near the root, one Fisher step from it sizes the bracket and the root
    is found by :func:`bracketed_root` (regula falsi, superlinear) to the same tolerance, in
    about half the score evaluations where Fisher scoring converges slowly (linearly, at the
    rate |1 − observed/expected information|).  That is the iteration's root where the
    likelihood has one maximum; where it has several, the one the search from ``start``
    reaches (a search that ends at the bound 0 is redone from the default start).
    """
    score = _score_reml if restricted else _score_ml

    def equation(sub: Problem, t: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return score(sub.fit(t), sub)[0]

    if start is None:
        est = _from_he(pb, score, equation)
    else:
        t = np.maximum(start, 0.0)
        u, info = score(pb.fit(t), pb)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.nan_to_num(u / info, nan=0.0, posinf=0.0, neginf=0.0)
        n = pb.y.shape[0]
        est = _finish(pb, t.copy(), step, np.ones(n, dtype=bool), np.zeros(n, dtype=bool),
                      equation)
        # at the bound: the search may have stepped over an interior maximum (a likelihood
        # falling from 0, then rising to it): those rows take the default iteration
        bound = np.flatnonzero(est.tau2 <= 0)
        if bound.size:
            cold = _from_he(pb.sub(bound), score, equation)
            est.tau2[bound], est.fallback[bound] = cold.tau2, cold.fallback
    rows = np.flatnonzero(est.tau2 > 0)
    if rows.size:
        sub = pb.sub(rows)
        ll0 = loglik(sub.fe_fit, sub, restricted)
        ll = loglik(sub.fit(est.tau2[rows]), sub, restricted)
        est.tau2[rows[ll0 - ll > 1e-10]] = 0.0
    return est


def _from_he(pb: Problem, score: Callable[[WLSFit, Problem], tuple[np.ndarray, np.ndarray]],
             equation: Equation) -> Tau2Estimate:
    """The Fisher iteration of :func:`_fisher_scoring` from metafor's start max(0, HE)."""
    n = pb.y.shape[0]
    tau2 = np.maximum(_he(pb).tau2, 0.0)
    last = np.zeros(n)
    active = np.ones(n, dtype=bool)
    loose = np.zeros(n, dtype=bool)
    work = _WorkingSet(pb)
    for _ in range(FISHER_MAXITER):
        if not work.shrink(active):
            break
        idx, sub = work.idx, work.sub
        on = active[idx]
        t = tau2[idx]
        u, info = score(work.fit(t), sub)
        with np.errstate(divide="ignore", invalid="ignore"):
            adj = np.where(on, np.nan_to_num(u / info, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
        new = _step_within_bound(t, adj)
        change = np.abs(new - t)
        tau2[idx] = new
        last[idx] = np.where(on, adj, last[idx])
        scale = new + sub.vbar
        loose[idx] = np.where(on, change <= LOOSE_TOL * scale, loose[idx])
        active[idx[change <= TOL * scale]] = False
    return _finish(pb, tau2, last, active, active & ~loose, equation)


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


def _finish(
    pb: Problem, tau2: np.ndarray, step: np.ndarray, unfinished: np.ndarray,
    failed: np.ndarray, equation: Equation,
) -> Tau2Estimate:
    """Solve ``equation`` by :func:`bracketed_root` for the ``unfinished`` rows, from their
    last iterate ``tau2`` and last ``step``; flag the ``failed`` ones."""
    rows = np.flatnonzero(unfinished)
    if rows.size:
        tau2[rows] = bracketed_root(pb, rows, equation, tau2[rows], step[rows])
    return Tau2Estimate(tau2, failed)


_EQUATIONS = {
    "ML": "the likelihood score equation",
    "REML": "the restricted likelihood score equation",
    "PM": "the Paule-Mandel equation Q(tau^2) = k - p",
    "EB": "the Paule-Mandel equation Q(tau^2) = k - p",
}


def warn_fallback(fallback: np.ndarray, method: str, stacklevel: int = 2) -> None:
    """RuntimeWarning naming how many data sets needed the bracketing fallback (if any)."""
    n = int(np.sum(fallback))
    if n:
        warnings.warn(
            f"{method}: the tau^2 iteration did not converge for {n} of {np.size(fallback)} "
            f"data set(s) (metafor would stop there); solved {_EQUATIONS[method]} by a "
            "bracketing root search instead",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )


def bracketed_root(
    pb: Problem, rows: np.ndarray, equation: Equation, start: np.ndarray, step: np.ndarray
) -> np.ndarray:
    """Root τ² ≥ 0 of a decreasing ``equation`` that an iteration stopped at ``start``
    (last step ``step``) was heading to, for each of the ``rows``.

    From ``start`` the search moves up where f(start) > 0 and down where f(start) < 0, by
    |step|, 2|step|, 4|step|, … (at least TOL × (start + mean v_i); never below 0) until f
    changes sign; a row reaching τ² = 0 with f(0) ≤ 0 has its root at the bound.  The
    bracket [lo, hi], f(lo) > 0 > f(hi), is then narrowed by regula falsi (Illinois variant:
    superlinear and always bracketing) to a point where f crosses from + to − (for a score,
    a maximum of the likelihood).  An iteration that stopped short of its root (creeping)
    or just past it (oscillating) thus gets that root, not another stationary point.
    """
    def f(idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        return equation(pb.sub(rows[idx]), t, rows[idx])

    n = rows.size
    vbar = pb.vbar[rows]
    f_start = f(np.arange(n), start)
    root = np.where(f_start == 0, start, np.nan)
    lo, hi, f_lo, f_hi = start.copy(), start.copy(), f_start.copy(), f_start.copy()
    up = f_start > 0
    dist = np.maximum(np.nan_to_num(np.abs(step)), TOL * (start + vbar))
    todo = np.flatnonzero(f_start != 0)
    for _ in range(MAXITER):
        if todo.size == 0:
            break
        rising = up[todo]
        probe = np.where(rising, lo[todo] + dist[todo], np.maximum(hi[todo] - dist[todo], 0.0))
        fp = f(todo, probe)
        positive = fp > 0
        below = todo[positive]
        lo[below], f_lo[below] = probe[positive], fp[positive]
        above = todo[~positive]
        hi[above], f_hi[above] = probe[~positive], fp[~positive]
        at_root = (fp == 0) | (~rising & ~positive & (probe == 0))
        root[todo[at_root]] = probe[at_root]
        dist[todo] *= 2
        todo = todo[(rising == positive) & ~at_root]
    root[todo] = start[todo]
    return _regula_falsi(f, root, lo, hi, f_lo, f_hi, vbar)


def _regula_falsi(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray], root: np.ndarray, lo: np.ndarray,
    hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray, vbar: np.ndarray,
) -> np.ndarray:
    """Fill the NaN entries of ``root`` by the Illinois algorithm on brackets f(lo) > 0 > f(hi),
    stopping when hi − lo ≤ TOL × (τ² + mean v_i)."""
    side = np.zeros(root.size)
    todo = np.flatnonzero(np.isnan(root))
    for _ in range(MAXITER):
        if todo.size == 0:
            break
        a, b, fa, fb = lo[todo], hi[todo], f_lo[todo], f_hi[todo]
        c = np.clip((a * fb - b * fa) / (fb - fa), a, b)
        fc = f(todo, c)
        right = fc < 0
        hi[todo] = np.where(right, c, b)
        f_hi[todo] = np.where(right, fc, np.where(side[todo] == -1, fb / 2, fb))
        lo[todo] = np.where(right, a, c)
        f_lo[todo] = np.where(right, np.where(side[todo] == 1, fa / 2, fa), fc)
        side[todo] = np.where(right, 1, -1)
        done = (fc == 0) | (hi[todo] - lo[todo] <= TOL * (c + vbar[todo]))
        root[todo[done]] = c[done]
        todo = todo[~done]
    root[todo] = 0.5 * (lo[todo] + hi[todo])
    return root


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
