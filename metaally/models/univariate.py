"""Univariate random- (and fixed-) effects models and meta-regression, as metafor's ``rma.uni``.

Model: y_i = x_i'β + u_i + e_i, u_i ~ N(0, τ²), e_i ~ N(0, v_i).  τ² comes from
:mod:`metaally.models.tau2`; β̂ = (X'WX)⁻¹X'Wy with w_i = 1/(v_i + τ̂²) and
Var(β̂) = (X'WX)⁻¹ (Viechtbauer 2010, J Stat Softw 36(3), §3).

- ``test="knha"``: Var(β̂) scaled by s² = Σw_i(y_i − x_i'β̂)²/(k − p), t and F
  tests with k − p df (Hartung & Knapp 2001; Sidik & Jonkman 2002);
  ``"adhoc"``: the same with s² = max(1, s²) (Jackson et al. 2017; metafor's
  ``test="adhoc"``).
- Q = y'P(0)y with FE weights; I² = 100 τ²/(τ² + s²), H² = τ²/s² + 1 with
  s² = (k − p)/tr P(0) (Higgins & Thompson 2002; metafor); for FE models
  I² = max(0, 100 (Q − (k − p))/Q), H² = Q/(k − p).
- Prediction interval (no moderators): μ̂ ± c √(SE² + τ²), c the z or t(k − p)
  quantile, as metafor's ``predict()``.
- τ² CI by the Q-profile method (Viechtbauer 2007): the τ² at which
  Q(τ²) = y'P(τ²)y equals the χ²(k − p) quantiles, as metafor's ``confint()``.

Every quantity is computed on a leading batch axis by :func:`fit_arrays`;
``random_effects`` is its B = 1 case and ``random_effects_batch`` the general one.
As in metafor, τ² and Q use y centred at its mean (identical with an intercept).
With k ≤ p (e.g. k = 1) there is no residual information: τ² = 0, the
heterogeneity statistics are NaN and inference is Wald (z), whatever ``test``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.inputs import (
    check_aligned,
    check_level,
    design_matrix,
    effect_arrays,
    mod_columns,
    take_rows,
    variance_scale,
)
from metaally.models.printing import Printable, coef_frame, coef_table, fmt_num, pvalue_phrase
from metaally.models.protocol import first_coefficient
from metaally.models.tau2 import (
    METHODS,
    Problem,
    estimate,
    loglik,
    make_problem,
    solve_q,
    warn_fallback,
)
from metaally.models.wls import Design, WLSFit, inverse, rowsum, trace_p

__all__ = [
    "TESTS",
    "check_options",
    "fit_arrays",
    "FitArrays",
    "random_effects",
    "RandomEffectsResult",
    "Tau2Interval",
]

TESTS = ("z", "knha", "adhoc")


@dataclass(frozen=True)
class FitArrays:
    """Results of a batch of fits, one entry (or row) per data set."""

    k: np.ndarray
    tau2: np.ndarray
    fallback: np.ndarray
    beta: np.ndarray
    vcov: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    df: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    qm: np.ndarray
    qm_df1: int
    qm_df2: np.ndarray
    qm_pvalue: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_pvalue: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray
    loglik: np.ndarray
    weights: np.ndarray


def check_options(method: str, test: str, level: float) -> tuple[str, str, float]:
    """Normalise ``method``/``test`` and check ``level`` (a proportion, e.g. 0.95)."""
    m = str(method).upper()
    if m not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    t = str(test).lower()
    if t not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}; got {test!r}")
    return m, t, check_level(level)


def fit_arrays(
    y: np.ndarray,
    v: np.ndarray,
    design: Design,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    tau2: float | np.ndarray | None = None,
    intercept: bool = True,
    mask: np.ndarray | None = None,
    warn: bool = True,
    tau2_start: float | np.ndarray | None = None,
) -> FitArrays:
    """Fit every row of ``y``/``v`` (B, k) on ``design``; options already checked.

    ``tau2`` fixes τ² (metafor's ``tau2=``); ``tau2_start`` (ML, REML) is a τ² near the
    estimate, e.g. that of a fit to nearly the same data, to iterate from (see
    :func:`metaally.models.tau2.estimate`); ``mask`` marks used entries
    (default: finite ones).  Coefficient-wise outputs have shape (B, p).
    A ``RuntimeWarning`` reports data sets that needed the τ² fallback unless
    ``warn=False`` (the caller then reports ``fallback`` itself).
    """
    # fit y/s, v/s² and scale back: the same answer, no overflow at any scale of y
    scale = variance_scale(v, mask)
    if np.any(scale != 1.0):
        y = y / scale[:, None]
        v = v / np.square(scale)[:, None]
    raw = make_problem(y, v, design, mask, center=False)
    pb = raw.centred()
    n = y.shape[0]
    if method == "FE":
        tau2_hat, fallback = np.zeros(n), np.zeros(n, dtype=bool)
    elif tau2 is not None:
        tau2_hat = np.broadcast_to(np.asarray(tau2, dtype=float), (n,)) / np.square(scale)
        fallback = np.zeros(n, dtype=bool)
    else:
        start = None
        if tau2_start is not None:
            start = np.broadcast_to(np.asarray(tau2_start, dtype=float), (n,)) / np.square(scale)
        tau2_hat, fallback = estimate(pb, method, start)
        if warn:
            warn_fallback(fallback, method, stacklevel=3)
    fit = raw.fit(tau2_hat)
    use_t = (test != "z") & (pb.df > 0)
    if test == "knha" and np.any(use_t & (fit.rss <= np.finfo(float).eps)):
        # metafor's numbers (se 0, an infinite test statistic), said out loud
        warnings.warn("the effect sizes fit the model exactly (e.g. identical yi): the "
                      "Knapp-Hartung scale factor is 0, so the se is 0 and the test infinite",
                      RuntimeWarning, stacklevel=3)
    arrays = FitArrays(
        k=raw.k.astype(int),
        tau2=tau2_hat,
        fallback=fallback,
        beta=fit.beta,
        **_coefficient_tests(fit, pb.df, use_t, test, level, intercept, tau2_hat),
        **_heterogeneity(pb, tau2_hat, method),
        loglik=loglik(fit, raw, restricted=method == "REML", constants=True),
        weights=_percent(fit.w),
    )
    if np.all(scale == 1.0):
        return arrays
    return _scaled_back(arrays, scale, raw.df if method == "REML" else raw.k)


def _scaled_back(a: FitArrays, s: np.ndarray, n_log: np.ndarray) -> FitArrays:
    """Results of the fit to y/s, v/s² in the units of y: β, se, intervals × s, variances
    × s², and the log-likelihood − n_log·log s (the Jacobian of y → y/s over the k, or
    for REML the k − p, dimensions of the likelihood)."""
    s1, s2 = s[:, None], np.square(s)
    return replace(
        a, tau2=a.tau2 * s2, beta=a.beta * s1, vcov=a.vcov * s2[:, None, None],
        se=a.se * s1, ci_low=a.ci_low * s1, ci_high=a.ci_high * s1,
        pi_low=a.pi_low * s, pi_high=a.pi_high * s, loglik=a.loglik - n_log * np.log(s),
    )


def _percent(w: np.ndarray) -> np.ndarray:
    """Weights in percent of their row total, 100 w_i / Σ w_j."""
    pct = 100 * w
    pct /= rowsum(w)[:, None]
    return pct


def _coefficient_tests(
    fit: WLSFit, resid_df: np.ndarray, use_t: np.ndarray, test: str, level: float,
    intercept: bool, tau2: np.ndarray,
) -> dict[str, Any]:
    """Wald or Knapp-Hartung tests and intervals for β, the omnibus QM test and the PI.

    knha/adhoc: Var(β̂) × s², s² = Σw_i e_i²/(k − p) (0 if that sum is ≤ machine eps,
    at least 1 for adhoc), t(k − p) and F(m, k − p) tests; otherwise z and χ²(m).
    QM tests all coefficients but the intercept (metafor's default ``btt``).
    """
    vcov = fit.gram_inv
    resid = np.where(use_t, resid_df, 1.0)
    if test != "z":
        s2w = np.where(fit.rss <= np.finfo(float).eps, 0.0, fit.rss / resid)
        if test == "adhoc":
            s2w = np.maximum(s2w, 1.0)
        vcov = np.where(use_t, s2w, 1.0)[:, None, None] * vcov
    se = np.sqrt(np.diagonal(vcov, axis1=1, axis2=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = fit.beta / se
    alpha = 1 - level
    abs_stat = np.abs(stat)
    pvalue = 2 * _t_or_z(use_t, stats.t.sf, stats.norm.sf, abs_stat, resid)
    crit = _t_or_z(use_t, stats.t.isf, stats.norm.isf, np.full(use_t.shape, alpha / 2), resid)

    p = fit.beta.shape[1]
    btt = np.arange(1, p) if intercept and p > 1 else np.arange(p)
    b = fit.beta[:, btt]
    qm = np.einsum("bi,bij,bj->b", b, inverse(vcov[:, btt[:, None], btt]), b)
    qm = np.where(use_t, qm / btt.size, qm)
    qm_pvalue = _t_or_z(
        use_t, lambda x, df: stats.f.sf(x, btt.size, df), lambda x: stats.chi2.sf(x, btt.size),
        qm, resid,
    )

    if intercept and p == 1:
        half = crit * np.sqrt(vcov[:, 0, 0] + tau2)
        pi_low, pi_high = fit.beta[:, 0] - half, fit.beta[:, 0] + half
    else:
        pi_low = pi_high = np.full(fit.beta.shape[0], np.nan)
    return {
        "vcov": vcov, "se": se, "stat": stat, "df": np.where(use_t, resid_df, np.inf),
        "pvalue": pvalue, "ci_low": fit.beta - crit[:, None] * se,
        "ci_high": fit.beta + crit[:, None] * se, "qm": qm, "qm_df1": int(btt.size),
        "qm_df2": np.where(use_t, resid_df, np.inf), "qm_pvalue": qm_pvalue,
        "pi_low": pi_low, "pi_high": pi_high,
    }


def _t_or_z(
    use_t: np.ndarray, t_dist: Any, z_dist: Any, x: np.ndarray, df: np.ndarray
) -> np.ndarray:
    """``t_dist(x, df)`` in the data sets (leading axis) with ``use_t``, ``z_dist(x)`` in the
    others; each distribution evaluated only where it is used."""
    out = np.empty(x.shape)
    if use_t.any():
        extra = (slice(None),) + (None,) * (x.ndim - 1)
        out[use_t] = t_dist(x[use_t], df[use_t][extra])
    if not use_t.all():
        out[~use_t] = z_dist(x[~use_t])
    return out


def _heterogeneity(pb: Problem, tau2: np.ndarray, method: str) -> dict[str, np.ndarray]:
    """Q = y'P(0)y (centred y), I², H² as metafor; NaN without residual df (k ≤ p)."""
    fe = pb.fe_fit
    has_df = pb.df > 0
    df = np.where(has_df, pb.df, 1.0)
    q = np.where(has_df, np.maximum(fe.rss, 0.0), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "FE":
            i2 = np.where(q > 0, np.maximum(0.0, 100 * (q - df) / q), 0.0)
            h2 = q / df
        else:
            s2 = df / trace_p(fe, pb.design)
            i2 = 100 * tau2 / (s2 + tau2)
            h2 = tau2 / s2 + 1
    nan = np.full(q.shape, np.nan)
    return {
        "q": q, "q_df": pb.df.astype(int), "q_pvalue": np.where(has_df, stats.chi2.sf(q, df), nan),
        "i2": np.where(has_df, i2, nan), "h2": np.where(has_df, h2, nan),
    }


class Tau2Interval(NamedTuple):
    """Confidence interval for τ² (unpacks as ``low, high``)."""

    low: float
    high: float


@dataclass(frozen=True)
class RandomEffectsResult(Printable):
    """A fitted univariate model (metafor's ``rma.uni`` object).

    With moderators, ``estimate``, ``se``, ``stat``, ``pvalue``, ``ci_low`` and
    ``ci_high`` refer to the first coefficient (the intercept, if any); ``coef``
    holds them all.  ``pi_low``/``pi_high`` are NaN when there are moderators
    (use :meth:`predict`).  ``df`` is ``inf`` for z tests.  ``weights`` are percent.
    ``rows`` are the input rows used (after dropping missing values).
    """

    k: int
    p: int
    estimate: float
    se: float
    stat: float
    df: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    tau: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pvalue: float
    pi_low: float
    pi_high: float
    qm: float
    qm_df1: int
    qm_df2: float
    qm_pvalue: float
    loglik: float
    method: str
    test: str
    level: float
    tau2_fixed: bool
    fallback: bool
    coef: pd.DataFrame
    vcov: np.ndarray
    weights: np.ndarray
    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    coef_names: tuple[str, ...]
    intercept: bool
    rows: np.ndarray
    labels: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def slab(self) -> tuple[str, ...]:
        """Study labels: ``slab`` as given, else "Study i" by input row (metafor's default)."""
        if self.labels is not None:
            return tuple(str(s) for s in self.labels)
        return tuple(f"Study {i + 1}" for i in self.rows)

    def tau2_ci(self, level: float | None = None) -> Tau2Interval:
        """Q-profile confidence interval for τ² (Viechtbauer 2007; metafor ``confint()``).

        Bounds solve Q(τ²) = χ²_{k−p}(1 − α/2) (lower) and χ²_{k−p}(α/2) (upper),
        each truncated at 0.  Unlike metafor, no upper search limit applies.
        """
        if self.method == "FE" or self.tau2_fixed:
            raise ValueError("the model has no estimated tau^2 (FE model or fixed tau2)")
        if self.k <= self.p:
            raise ValueError(
                f"a tau^2 interval needs more studies than coefficients (k = {self.k})"
            )
        _, _, lv = check_options(self.method, self.test, self.level if level is None else level)
        dfq = self.k - self.p
        targets = np.array([stats.chi2.isf((1 - lv) / 2, dfq), stats.chi2.ppf((1 - lv) / 2, dfq)])
        pb = make_problem(
            np.tile(self.yi, (2, 1)), np.tile(self.vi, (2, 1)), Design(self.X), center=False
        )
        low, high = solve_q(pb, targets).tau2
        return Tau2Interval(float(low), float(high))

    def predict(self, newmods: Any = None) -> pd.DataFrame:
        """Predicted effects with CI and prediction interval (metafor ``predict()``).

        ``newmods``: moderator values (one row per prediction, without the
        intercept column); None predicts the average effect of an
        intercept-only model.
        """
        if newmods is None:
            if self.p != 1 or not self.intercept:
                raise ValueError("give newmods to predict from a model with moderators")
            x_new = np.ones((1, 1))
        else:
            arr = np.atleast_1d(np.asarray(newmods, dtype=float))
            n_mods = self.p - int(self.intercept)
            arr = arr.reshape(-1, n_mods) if arr.ndim == 1 else arr
            if arr.shape[1] != n_mods:
                raise ValueError(f"newmods needs {n_mods} column(s), got {arr.shape[1]}")
            x_new = np.column_stack([np.ones(arr.shape[0]), arr]) if self.intercept else arr
        pred = x_new @ self.coef["estimate"].to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", x_new, self.vcov, x_new))
        crit = _critical(self.df, self.level)
        half_pi = crit * np.sqrt(se**2 + self.tau2)
        return pd.DataFrame({
            "pred": pred, "se": se, "ci_low": pred - crit * se, "ci_high": pred + crit * se,
            "pi_low": pred - half_pi, "pi_high": pred + half_pi,
        })

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (one row without moderators): term, estimate, se, stat, df,
        pvalue, ci_low, ci_high, then k, method, test and the heterogeneity statistics."""
        return coef_frame(self.coef, self.df, k=self.k, method=self.method, test=self.test,
                          **{name: getattr(self, name) for name in (
                              "tau2", "tau", "i2", "h2", "q", "q_df", "q_pvalue", "pi_low",
                              "pi_high")})

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.rma.uni``."""
        mods = self.p > 1 or not self.intercept
        if self.method == "FE":
            lines = [f"Fixed-Effects {'with Moderators ' if mods else ''}Model (k = {self.k})", ""]
        else:
            kind = "Mixed-Effects" if mods else "Random-Effects"
            est = "fixed" if self.tau2_fixed else self.method
            what = "residual" if mods else "total"
            lines = [
                f"{kind} Model (k = {self.k}; tau^2 estimator: {est})",
                "",
                f"tau^2 (estimated amount of {what} heterogeneity): {fmt_num(self.tau2)}",
                f"tau (square root of estimated tau^2 value): {fmt_num(self.tau)}",
            ]
        if not np.isnan(self.i2):
            what = "residual heterogeneity / unaccounted variability" if mods else (
                "total heterogeneity / total variability")
            lines += [
                f"I^2 ({what}): {fmt_num(self.i2, 2)}%",
                f"H^2 ({'unaccounted variability / sampling variability' if mods else 'total variability / sampling variability'}): {fmt_num(self.h2, 2)}",  # noqa: E501
            ]
        if self.fallback:
            lines.append("(tau^2 found by the bracketing fallback: the iteration did not converge)")
        if not np.isnan(self.q):
            name = "QE" if mods else "Q"
            lines += [
                "",
                f"Test for {'Residual ' if mods else ''}Heterogeneity:",
                f"{name}(df = {self.q_df}) = {fmt_num(self.q)}, {pvalue_phrase(self.q_pvalue)}",
            ]
        if mods:
            if self.df == np.inf:
                test = f"QM(df = {self.qm_df1}) = {fmt_num(self.qm)}"
            else:
                test = f"F(df1 = {self.qm_df1}, df2 = {int(self.qm_df2)}) = {fmt_num(self.qm)}"
            lines += ["", f"Test of Moderators: {test}, {pvalue_phrase(self.qm_pvalue)}"]
        table = self.coef if self.df == np.inf else self.coef.assign(df=self.df)
        stat = "zval" if self.df == np.inf else "tval"
        lines += ["", "Model Results:", "", coef_table(table, stat)]
        if not mods and not np.isnan(self.pi_low):
            lines += ["", f"Prediction interval: [{fmt_num(self.pi_low)}, {fmt_num(self.pi_high)}]"]
        return "\n".join(lines)


def random_effects(
    yi: Any,
    vi: Any,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    mods: Any = None,
    intercept: bool = True,
    slab: Any = None,
    tau2: float | None = None,
) -> RandomEffectsResult:
    """Fit a random-effects model or meta-regression (metafor's ``rma(yi, vi, ...)``).

    Parameters
    ----------
    yi, vi : effect sizes and sampling variances (lists, arrays or Series).
    method : τ² estimator, one of FE, DL, HE, HS, SJ, PM, EB, ML, REML.
    test : "z" (Wald), "knha" (Hartung-Knapp-Sidik-Jonkman t/F with k − p df)
        or "adhoc" (knha whose scaling factor is at least 1).
    level : confidence level of the intervals.
    mods : moderators (1-D/2-D array or DataFrame); an intercept is added
        unless ``intercept=False``.
    slab : study labels (default "Study 1", "Study 2", ...).
    tau2 : fix τ² at this value instead of estimating it.

    Rows with a missing yi, vi or moderator are dropped with a warning (metafor's
    ``na.omit``); pandas arguments must share one index.
    """
    method, test, level = check_options(method, test, level)
    if tau2 is not None and not (np.isfinite(tau2) and tau2 >= 0):
        raise ValueError(f"tau2 must be a non-negative number; got {tau2!r}")
    check_aligned(yi=yi, vi=vi, mods=mods, slab=slab)
    mod_cols = mod_columns(mods)
    y, v, _, kept = effect_arrays(yi, vi, *mod_cols, names=["mods"] * len(mod_cols))
    labels = None
    if slab is not None:
        labels = np.asarray(slab, dtype=object).ravel()
        if labels.size != kept.size:
            raise ValueError(f"slab has {labels.size} labels but there are {kept.size} rows")
        labels = labels[kept]
    X, names = design_matrix(take_rows(mods, kept), y.size, intercept)
    k, p = X.shape
    needed = p if method == "FE" or tau2 is not None else p + 1
    if k > 1 and k < needed:
        raise ValueError(
            f"the model has {p} coefficient(s) but only {k} studies; need at least {needed}"
        )
    if k == 1 and p > 1:
        raise ValueError("a meta-regression needs more than one study")
    arrays = fit_arrays(
        y[None, :], v[None, :], Design(X), method, test, level,
        tau2=tau2, intercept=intercept,
    )
    coef = pd.DataFrame(
        {
            "estimate": arrays.beta[0],
            "se": arrays.se[0],
            "stat": arrays.stat[0],
            "pvalue": arrays.pvalue[0],
            "ci_low": arrays.ci_low[0],
            "ci_high": arrays.ci_high[0],
        },
        index=pd.Index(names, name=None),
    )
    scalars = {name: float(getattr(arrays, name)[0])
               for name in ("df", "tau2", "i2", "h2", "q", "q_pvalue", "pi_low", "pi_high",
                            "qm", "qm_df2", "qm_pvalue", "loglik")}
    return RandomEffectsResult(
        k=k,
        p=p,
        **first_coefficient(coef),
        **scalars,
        tau=float(np.sqrt(arrays.tau2[0])),
        q_df=int(arrays.q_df[0]),
        qm_df1=arrays.qm_df1,
        method=method,
        test=test,
        level=level,
        tau2_fixed=tau2 is not None and method != "FE",
        fallback=bool(arrays.fallback[0]),
        coef=coef,
        vcov=arrays.vcov[0],
        weights=arrays.weights[0],
        yi=y,
        vi=v,
        X=X,
        coef_names=tuple(names),
        intercept=intercept,
        rows=np.flatnonzero(kept),
        labels=labels,
    )


def _critical(df: float, level: float) -> float:
    """Two-sided critical value: z for df = inf, else t(df)."""
    alpha = 1 - level
    return float(stats.norm.isf(alpha / 2) if np.isinf(df) else stats.t.isf(alpha / 2, df))
