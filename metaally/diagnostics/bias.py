"""Small-study bias: Egger's regression test, the rank correlation test,
trim-and-fill and PET-PEESE.

Each function takes a fitted model result first (``egger_test(res)``, as metafor's
``regtest(res)``), or, as a convenience, effect sizes ``yi`` and sampling variances
``vi`` (``egger_test(yi, vi)``), and returns a frozen result object with ``summary()``
and ``to_frame()``.  ``egger_test`` also takes a clustered model (``multilevel`` or
its ``.robust()`` result); the other three assume independent effects and reject it.
Definitions follow metafor 3.8 (``regtest``, ``ranktest``, ``trimfill``); PET-PEESE
follows Stanley & Doucouliagos (2014); the test for dependent effects follows Rodgers &
Pustejovsky (2021).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.inputs import column_scale, effect_arrays
from metaally.models.multilevel import multilevel
from metaally.models.printing import Printable, coef_table, fields_frame, fmt_num, pvalue_phrase
from metaally.models.protocol import FittedModel, is_clustered
from metaally.models.robust import RobustResult
from metaally.models.tau2 import WARM_START_METHODS
from metaally.models.univariate import RandomEffectsResult, fit_arrays, random_effects
from metaally.models.wls import Design

__all__ = [
    "EXACT_RANK_TEST_MAX_K",
    "EggerResult",
    "PetPeeseResult",
    "RankTestResult",
    "TrimFillResult",
    "egger_test",
    "modified_se",
    "pet_peese",
    "rank_test",
    "trim_and_fill",
]

# Largest k for which the rank test uses Kendall's exact null distribution (its
# cost grows as k³); above it, and whenever there are ties, the normal
# approximation is used (R's ``cor.test`` cannot compute larger exact tables either).
EXACT_RANK_TEST_MAX_K = 400


def _p_phrase(p: float) -> str:
    """``p = 0.4218`` or ``p < .0001``, as metafor's regtest/ranktest printouts."""
    return pvalue_phrase(p).replace("p-val", "p")


def _effects(
    result: Any, vi: Any, what: str, clustered: bool = False
) -> tuple[np.ndarray, np.ndarray, FittedModel | None, np.ndarray]:
    """``(yi, vi, model, kept)`` of a fitted model result (intercept-only), or of the arrays
    ``yi`` (given as ``result``) and ``vi`` (then ``model`` is None); ``kept`` marks the
    input rows used (rows with a missing value are dropped).  A clustered model is
    accepted only where ``clustered`` is true."""
    if isinstance(result, FittedModel):
        if vi is not None:
            raise ValueError(f"{what}: give a fitted model result or yi and vi, not both")
        if result.X.shape[1] != 1 or result.coef_names[0] != "intrcpt":
            raise ValueError(f"{what} needs a model without moderators")
        if is_clustered(result) and not clustered:
            raise ValueError(
                f"{what} assumes independent effects; for several effects per study use "
                "egger_test on the multilevel result, or aggregate() to one effect per study"
            )
        return result.yi, result.vi, result, np.ones(result.yi.shape[0], dtype=bool)
    if vi is None:
        raise ValueError(f"{what} needs vi with yi (or a fitted model result)")
    y, v, _, kept = effect_arrays(result, vi)
    return y, v, None, kept


# --------------------------------------------------------------------------- Egger


@dataclass(frozen=True)
class EggerResult(Printable):
    """Regression test for funnel plot asymmetry (Egger et al. 1997).

    ``stat``/``pvalue`` test the slope on the standard error; ``limit_estimate``
    is the intercept, the effect expected for a study with standard error 0.
    ``df`` is the df of the t test (Knapp-Hartung k − p, or Satterthwaite for the robust
    test; ``inf`` for the z test).  ``n_clusters`` is the number of studies (the number of
    effects when they are independent).
    ``model`` is the fitted meta-regression (a ``RandomEffectsResult``, or the
    ``RobustResult`` of the CHE model when ``study`` was given).
    ``se_used`` says which standard errors were used: "sqrt(vi)" or "sei as given".
    """

    k: int
    n_clusters: int
    test: str
    stat: float
    df: float
    pvalue: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    level: float
    model: Any
    se_used: str = "sqrt(vi)"

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.regtest``."""
        if self.test in ("z", "knha", "adhoc"):
            method = self.model.method
            kind = "fixed-effects" if method == "FE" else "mixed-effects"
            model = f"{kind} meta-regression model ({method}, {self.test} test)"
            stat = (f"z = {fmt_num(self.stat)}" if self.test == "z"
                    else f"t = {fmt_num(self.stat)}, df = {fmt_num(self.df, 2)}")
        else:
            model = (
                f"CHE multilevel meta-regression, {self.n_clusters} studies "
                f"({self.test} cluster-robust t test, Satterthwaite df)"
            )
            stat = f"t = {fmt_num(self.stat)}, df = {fmt_num(self.df, 2)}"
        pct = f"{100 * self.level:g}%"
        return "\n".join(
            [
                "Regression Test for Funnel Plot Asymmetry",
                "",
                f"Model:     {model}",
                f"Predictor: standard error ({self.se_used})",
                f"k = {self.k}",
                "",
                f"Test for Funnel Plot Asymmetry: {stat}, {_p_phrase(self.pvalue)}",
                f"Limit Estimate (as sei -> 0):   b = {fmt_num(self.limit_estimate)} "
                f"({pct} CI: {fmt_num(self.limit_ci_low)}, {fmt_num(self.limit_ci_high)})",
            ]
        )

    def to_frame(self) -> pd.DataFrame:
        """One row: test, k, stat, df, pvalue and the limit estimate with its CI."""
        return fields_frame(self, ("test", "k", "stat", "df", "pvalue", "limit_estimate",
                                   "limit_ci_low", "limit_ci_high"))


def modified_se(n1: Any, n2: Any) -> np.ndarray:
    """Modified standard error of a standardized mean difference, √((n1 + n2)/(n1·n2)).

    The usual SE of Hedges' g, √((n1 + n2)/(n1·n2) + g²/(2(n1 + n2))), contains g itself,
    so large effects look imprecise and Egger's test and PET-PEESE find small-study
    effects that are an artefact; this SE drops the g² term (Pustejovsky & Rodgers 2019,
    Res Synth Methods 10(1):57–71).  Pass it as ``sei`` to :func:`egger_test` and
    :func:`pet_peese`.
    """
    a = np.asarray(n1, dtype=float)
    b = np.asarray(n2, dtype=float)
    if a.shape != b.shape or np.any(~np.isfinite(a)) or np.any(~np.isfinite(b)) or np.any(
            a <= 0) or np.any(b <= 0):
        raise ValueError("n1 and n2 must be positive numbers of the same length")
    return np.sqrt((a + b) / (a * b))


def _precision(v: np.ndarray, sei: Any, kept: np.ndarray) -> tuple[np.ndarray, str]:
    """The standard errors a small-study test uses: ``sei`` (rows ``kept``) or √vi."""
    if sei is None:
        return np.sqrt(v), "sqrt(vi)"
    se = np.asarray(sei, dtype=float).ravel()
    if se.shape[0] != kept.shape[0]:
        raise ValueError(f"sei has {se.shape[0]} values but yi has {kept.shape[0]}")
    se = se[kept]
    if np.any(~np.isfinite(se)) or np.any(se <= 0):
        raise ValueError("sei must be positive finite numbers")
    return se, "sei as given"


def egger_test(
    result: Any, vi: Any = None, study: Any = None, rho: float = 0.6, sei: Any = None
) -> EggerResult:
    """Egger's regression test: the meta-regression yi = b0 + b1·sei + u_i + e_i.

    ``result``: a fitted intercept-only model, or the effect sizes ``yi`` (then give
    ``vi``, and ``study`` for several effects per study).

    ``sei``: the standard errors to test with, in place of √vi both as the predictor and
    as the sampling SE of the model (metafor's ``regtest(yi, sei = sei)``), one per row
    of ``yi`` (or of the result's data).  For standardized mean differences pass
    ``modified_se(n1, n2)``: √vi contains g, which makes the test find asymmetry that is
    an artefact (Pustejovsky & Rodgers 2019); the default √vi is right for effect sizes
    whose variance does not depend on the effect.

    Independent effects (a ``RandomEffectsResult``, or ``yi, vi`` without ``study``):
    metafor's ``regtest(res)``, the model refitted with the standard error
    sei = √vi as moderator (same τ² estimator and test; REML and z for arrays), and
    the test of b1 = 0; b0 is the limit estimate with its CI.

    Several effects per study (a ``MultilevelResult`` or its ``.robust()`` result, or
    ``yi, vi, study``): "Egger's sandwich" (Rodgers & Pustejovsky 2021, Psychological
    Methods 26:141–160), the CHE working model with sei as moderator (the result's rho,
    estimator and es_id; ``rho`` for arrays) and a cluster-robust t test of b1 on
    Satterthwaite degrees of freedom (CR2, or the robust result's adjustment;
    clubSandwich ``coef_test``); the limit estimate's CI uses the same robust SE and df.
    """
    if isinstance(result, FittedModel) and study is not None:
        raise ValueError("Egger's test: a fitted model result carries its study; drop study=")
    model: FittedModel | None = None
    if study is None:
        y, v, model, kept = _effects(result, vi, "Egger's test", clustered=True)
    clustered = study is not None or is_clustered(model)
    if not clustered:
        se, se_used = _precision(v, sei, kept)
        v = se**2
        predictor = pd.DataFrame({"sei": se})
        if y.shape[0] < 3:
            raise ValueError("Egger's test needs at least 3 effect sizes")
        n_clusters = y.shape[0]
        settings = ({"method": "REML", "test": "z"} if model is None else
                    {"method": model.method, "test": model.test, "level": model.level})
        fit: Any = random_effects(y, v, mods=predictor, **settings)
        test, level = fit.test, fit.level
    else:
        if model is None:
            if vi is None:
                raise ValueError("Egger's test needs vi with yi (or a fitted model result)")
            y, v, (s,), kept = effect_arrays(result, vi, study, names=("study",))
            che = {"rho": rho}
            adjust = "CR2"
        else:
            s = model.study
            che = {"rho": model.rho, "es_id": model.es_id, "method": model.method,
                   "level": model.level}
            adjust = model.adjust if isinstance(model, RobustResult) else "CR2"
        se, se_used = _precision(v, sei, kept)
        v = se**2
        predictor = pd.DataFrame({"sei": se})
        n_clusters = len(pd.unique(pd.Series(s, dtype=object)))
        if n_clusters < 3:
            raise ValueError("Egger's sandwich test needs at least 3 studies")
        fit = multilevel(y, v, s, mods=predictor, **che).robust(adjust=adjust)
        test, level = adjust, fit.level
    intercept, slope = fit.coef.iloc[0], fit.coef.iloc[1]
    return EggerResult(
        k=int(y.shape[0]),
        n_clusters=n_clusters,
        test=test,
        stat=float(slope["stat"]),
        df=float(slope.get("df", fit.df)),
        pvalue=float(slope["pvalue"]),
        limit_estimate=float(intercept["estimate"]),
        limit_ci_low=float(intercept["ci_low"]),
        limit_ci_high=float(intercept["ci_high"]),
        level=level,
        model=fit,
        se_used=se_used,
    )


# --------------------------------------------------------------------------- rank test


@dataclass(frozen=True)
class RankTestResult(Printable):
    """Begg & Mazumdar's rank correlation test (Kendall's tau and its p-value)."""

    k: int
    tau: float
    pvalue: float
    exact: bool

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.ranktest``."""
        method = "exact" if self.exact else "normal approximation"
        return "\n".join(
            [
                "Rank Correlation Test for Funnel Plot Asymmetry",
                "",
                f"k = {self.k}; p-value: {method}",
                f"Kendall's tau = {fmt_num(self.tau)}, {_p_phrase(self.pvalue)}",
            ]
        )

    def to_frame(self) -> pd.DataFrame:
        """One row: k, Kendall's tau, pvalue, exact."""
        return fields_frame(self, ("k", "tau", "pvalue", "exact"))


def rank_test(result: Any, vi: Any = None) -> RankTestResult:
    """Begg & Mazumdar (1994) rank correlation test, as metafor's ``ranktest``.

    ``result``: a fitted intercept-only univariate model (its yi and vi are used), or
    the effect sizes ``yi`` (then give ``vi``).  ``sei`` replaces √vi as the standard
    error (regressor and weights, vi = sei²); pass ``modified_se(n1, n2)`` for
    standardized mean differences (Pustejovsky & Rodgers 2019; see :func:`egger_test`).

    With the fixed-effect estimate θ̂ = Σ wᵢyᵢ / Σ wᵢ (wᵢ = 1/vᵢ) and its
    variance v̄ = 1/Σ wᵢ, the standardised effects yᵢ* = (yᵢ − θ̂)/√(vᵢ − v̄) are
    correlated with vᵢ by Kendall's τ_b.  The two-sided p-value is R's
    ``cor.test(method = "kendall", exact = TRUE)``: from the exact null
    distribution of the number of concordant pairs when there are no ties (and
    k ≤ ``EXACT_RANK_TEST_MAX_K``), otherwise from the normal approximation
    with the tie-corrected variance of Kendall's S, no continuity correction.
    """
    y, v, _, _ = _effects(result, vi, "the rank test")
    k = y.shape[0]
    if k < 3:
        raise ValueError("the rank test needs at least 3 effect sizes")
    if np.ptp(y) <= 4 * np.finfo(float).eps * np.max(np.abs(y)):
        warnings.warn("all yi are identical: the rank correlation is undefined (tau and "
                      "p-value are NaN)", RuntimeWarning, stacklevel=2)
        return RankTestResult(k=k, tau=float("nan"), pvalue=float("nan"), exact=False)
    w = 1.0 / v
    theta = np.sum(w * y) / np.sum(w)
    y_star = (y - theta) / np.sqrt(v - 1.0 / np.sum(w))
    tau = float(stats.kendalltau(y_star, v).statistic)
    ties = min(len(np.unique(y_star)), len(np.unique(v))) < k
    exact = not ties and k <= EXACT_RANK_TEST_MAX_K
    if np.isnan(tau):
        pvalue = float("nan")
    elif exact:
        pvalue = _kendall_exact_pvalue(tau, k)
    else:
        pvalue = _kendall_normal_pvalue(tau, y_star, v)
    return RankTestResult(k=k, tau=tau, pvalue=pvalue, exact=exact)


def _kendall_exact_pvalue(tau: float, n: int) -> float:
    """Two-sided exact p-value of Kendall's tau without ties (R ``cor.test``).

    The number of concordant pairs T = (τ + 1)·n(n − 1)/4 has, under
    independence, the Mahonian distribution of inversions of a random
    permutation; p = 2·min(P(T ≤ t), P(T ≥ t)), capped at 1.
    """
    pairs = n * (n - 1) // 2
    t = int(round((tau + 1.0) * n * (n - 1) / 4.0))
    cdf = np.cumsum(_mahonian_pmf(n))
    if t > pairs / 2:
        p = 1.0 - cdf[t - 1]
    else:
        p = cdf[t]
    return float(min(2.0 * p, 1.0))


def _mahonian_pmf(n: int) -> np.ndarray:
    """P(I = i), i = 0 … n(n−1)/2, for the inversions I of a random permutation of n.

    Built by the recursion P_m(i) = (1/m) Σ_{j=0}^{m−1} P_{m−1}(i − j).
    """
    pmf = np.ones(1)
    for m in range(2, n + 1):
        size = pmf.size + m - 1
        csum = np.concatenate([[0.0], np.cumsum(np.concatenate([pmf, np.zeros(m - 1)]))])
        idx = np.arange(1, size + 1)
        pmf = (csum[idx] - csum[np.maximum(idx - m, 0)]) / m
    return pmf


def _kendall_normal_pvalue(tau: float, x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p-value of Kendall's τ_b from the normal approximation of S.

    S = τ_b·√((n₀ − n₁)(n₀ − n₂)) with n₀ = n(n − 1)/2 and n₁, n₂ the tied
    pairs in x and y; Var(S) is Kendall's (1970) tie-corrected variance.
    """
    n = x.shape[0]
    tx = _tie_sizes(x)
    ty = _tie_sizes(y)
    n0 = n * (n - 1) / 2.0
    pairs_x, pairs_y = np.sum(tx * (tx - 1)), np.sum(ty * (ty - 1))
    s = tau * np.sqrt((n0 - pairs_x / 2.0) * (n0 - pairs_y / 2.0))
    var_s = (
        n * (n - 1) * (2 * n + 5)
        - np.sum(tx * (tx - 1) * (2 * tx + 5))
        - np.sum(ty * (ty - 1) * (2 * ty + 5))
    ) / 18.0
    var_s += pairs_x * pairs_y / (2.0 * n * (n - 1))
    var_s += (
        np.sum(tx * (tx - 1) * (tx - 2)) * np.sum(ty * (ty - 1) * (ty - 2))
        / (9.0 * n * (n - 1) * (n - 2))
    )
    return float(2.0 * stats.norm.sf(abs(s / np.sqrt(var_s))))


def _tie_sizes(x: np.ndarray) -> np.ndarray:
    """Sizes of the groups of equal values (groups of one included; they add 0)."""
    return np.unique(x, return_counts=True)[1].astype(float)


# --------------------------------------------------------------------------- trim and fill


@dataclass(frozen=True)
class TrimFillResult(Printable):
    """Trim-and-fill: the number of imputed studies and the model refitted with them.

    ``yi_all``/``vi_all`` hold the observed effects followed by the ``k0``
    filled ones (``filled_mask`` marks the latter), ready for a funnel plot;
    ``filled`` is the tidy table of the imputed effects.  ``model`` is the
    random-effects fit to all k + k0 effects (the plain fit when k0 = 0).
    """

    k: int
    k0: int
    se_k0: float
    side: str
    estimator: str
    method: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    tau2: float
    yi_all: np.ndarray
    vi_all: np.ndarray
    filled_mask: np.ndarray
    model: RandomEffectsResult

    @property
    def filled(self) -> pd.DataFrame:
        """The imputed effects, one row each (``yi``, ``vi``)."""
        mask = self.filled_mask
        return pd.DataFrame({"yi": self.yi_all[mask], "vi": self.vi_all[mask]})

    def summary(self) -> str:
        """The estimated k0 (metafor's ``print.rma.uni`` of a ``trimfill`` fit), then the fit."""
        head = (
            f"Estimated number of missing studies on the {self.side} side: {self.k0} "
            f"(SE = {fmt_num(self.se_k0)}; estimator {self.estimator})"
        )
        return head + "\n\n" + self.model.summary()

    def to_frame(self) -> pd.DataFrame:
        """One row: k, k0, side, estimator, method and the adjusted estimate with its se, CI, p."""
        return fields_frame(self, ("k", "k0", "side", "estimator", "method", "estimate", "se",
                                   "ci_low", "ci_high", "pvalue", "tau2"))


def trim_and_fill(
    result: Any,
    vi: Any = None,
    estimator: Literal["L0", "R0", "Q0"] = "L0",
    side: Literal["left", "right"] | None = None,
    method: str | None = None,
    maxiter: int = 100,
) -> TrimFillResult:
    """Duval & Tweedie's (2000) trim-and-fill method, as metafor's ``trimfill``.

    ``result``: a fitted intercept-only univariate model (its data, and its τ²
    estimator unless ``method`` is given), or the effect sizes ``yi`` (then give
    ``vi``; ``method`` defaults to "REML").

    ``side`` (where studies are missing) defaults to metafor's choice: "right"
    if the slope of the ``method`` meta-regression of yi on √vi is negative,
    else "left".  Working on the side-flipped effects sorted increasingly, the
    k0 largest are trimmed, the ``method`` model is fitted to the rest giving
    θ̂ (an ML/REML refit iterates from the previous round's τ²: in fewer steps, the same
    estimate as metafor's iteration from its default start wherever the likelihood has one
    maximum), and k0 is re-estimated from the signed ranks of |yᵢ − θ̂| until it stops
    changing; with T = sum of the positive ranks and γ* the rightmost run of
    positive ranks:

    - L0: k0 = (4T − k(k + 1)) / (2k − 1)
    - R0: k0 = γ* − 1 (with γ* = k when no rank is negative)
    - Q0: k0 = k − 1/2 − √(2k² − 4T + 1/4)

    rounded and truncated at 0.  The k0 trimmed effects are mirrored about θ̂
    (yᵢ → 2θ̂ − yᵢ, same vᵢ), and the ``method`` random-effects model (z test)
    is refitted to the k + k0 effects.
    """
    if estimator not in ("L0", "R0", "Q0"):
        raise ValueError(f"estimator must be 'L0', 'R0' or 'Q0', not {estimator!r}")
    if side not in (None, "left", "right"):
        raise ValueError(f"side must be 'left', 'right' or None, not {side!r}")
    y, v, model, _ = _effects(result, vi, "trim-and-fill")
    if method is None:
        method = "REML" if model is None else model.method
    k = y.shape[0]
    if k < 3:
        raise ValueError("trim-and-fill needs at least 3 effect sizes")
    if side is None:
        slope = random_effects(y, v, method=method, mods=np.sqrt(v)).coef["estimate"].iloc[1]
        side = "right" if slope < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y, kind="stable")
    ys, vs = sign * y[order], v[order]

    k0, previous, iteration, tau2 = 0, -1, 0, None
    intercept = Design(np.ones((1, 1)))
    while k0 != previous:
        previous = k0
        iteration += 1
        if iteration > maxiter:
            raise ValueError(f"trim-and-fill did not converge in {maxiter} iterations")
        # each trimmed fit starts its τ² iteration from the previous one's estimate
        fit = fit_arrays(ys[None, : k - k0], vs[None, : k - k0], intercept, method, warn=False,
                         tau2_start=tau2 if method in WARM_START_METHODS else None)
        theta, tau2 = float(fit.beta[0, 0]), fit.tau2
        k0, se_k0 = _missing_count(ys - theta, estimator)
    if np.isnan(se_k0):
        warnings.warn(f"the standard error of k0 is undefined for these data: Duval & Tweedie's "
                      f"variance of the {estimator} statistic is negative here; se_k0 is NaN",
                      RuntimeWarning, stacklevel=2)

    fit = random_effects(y, v, method=method)
    yi_all, vi_all = y, v
    if k0 > 0:
        mirrored = sign * (2.0 * theta - ys[k - k0 :])
        yi_all = np.concatenate([y, mirrored])
        vi_all = np.concatenate([v, vs[k - k0 :]])
        fit = random_effects(yi_all, vi_all, method=method)
    return TrimFillResult(
        k=k,
        k0=k0,
        se_k0=se_k0,
        side=side,
        estimator=estimator,
        method=method,
        estimate=fit.estimate,
        se=fit.se,
        ci_low=fit.ci_low,
        ci_high=fit.ci_high,
        pvalue=fit.pvalue,
        tau2=fit.tau2,
        yi_all=yi_all,
        vi_all=vi_all,
        filled_mask=np.arange(yi_all.shape[0]) >= k,
        model=fit,
    )


def _missing_count(centred: np.ndarray, estimator: str) -> tuple[int, float]:
    """Duval & Tweedie's estimate of the number of missing studies and its SE.

    ``centred`` is sorted increasingly (y sorted, minus θ̂), so the ranks of |centred|
    (ties in index order, as a stable sort) follow from merging the negative part,
    reversed, with the positive part: O(k log k) binary searches instead of a sort.
    """
    k = centred.shape[0]
    n_neg = int(np.searchsorted(centred, 0.0, side="left"))
    n_pos = int(np.searchsorted(centred, 0.0, side="right"))
    n_zero = n_pos - n_neg
    left = -centred[:n_neg][::-1]  # |negative values|, increasing
    right = centred[n_pos:]         # positive values, increasing
    if estimator == "R0":
        # the largest rank of a negative value: its tie group's last, after every zero,
        # every other negative and the positives of smaller absolute value
        largest = (n_zero + n_neg + int(np.searchsorted(right, left[-1], side="left"))
                   if n_neg else 0.0)
        k0 = k - largest - 1.0
        return int(max(0.0, round(k0))), float(np.sqrt(2.0 * max(0.0, k0) + 2.0))
    # the rank of the j-th positive value: 1 + the zeros + j positives + the negatives of
    # absolute value <= it (they come earlier in the data, so win ties)
    m = right.shape[0]
    t = float(m * (1 + n_zero) + m * (m - 1) / 2
              + np.searchsorted(left, right, side="right").sum())
    if estimator == "L0":
        k0 = (4.0 * t - k * (k + 1)) / (2.0 * k - 1.0)
    else:
        radicand = 2.0 * k**2 - 4.0 * t + 0.25
        if radicand < 0:
            raise ValueError(
                "the Q0 estimator is undefined for these data (the square root of a negative "
                "number); use estimator='L0' or 'R0'"
            )
        k0 = k - 0.5 - np.sqrt(radicand)
    var_t = (
        k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0
        - 18 * k * k0**2 - 18 * k * k0 + 6 * k**2 * k0
    ) / 24.0
    denominator = (2.0 * k - 1.0) / 4.0 if estimator == "L0" else 0.5 * np.sqrt(
        max((k - 0.5) ** 2 - k0 * (2.0 * k - k0 - 1.0), 0.0))
    # var_t < 0 (an estimate far below 0 before truncation): the formula has no SE; NaN, as
    # metafor's sqrt of a negative number (trim_and_fill says so)
    se = np.sqrt(var_t) / denominator if var_t >= 0 and denominator > 0 else np.nan
    # Python's round, like R's, takes halves to even
    return int(max(0.0, round(k0))), float(se)


# --------------------------------------------------------------------------- PET-PEESE


@dataclass(frozen=True)
class PetPeeseResult(Printable):
    """PET and PEESE limit estimates (intercepts) and the conditional PET-PEESE choice.

    ``estimate``/``ci_low``/``ci_high`` are those of the ``chosen`` model;
    ``pet_pvalue``/``peese_pvalue`` are two-sided, ``pet_pvalue_one_sided`` is
    the p-value of the test that decides (see :func:`pet_peese`).
    """

    k: int
    df: int
    pet_estimate: float
    pet_se: float
    pet_stat: float
    pet_pvalue: float
    pet_ci_low: float
    pet_ci_high: float
    peese_estimate: float
    peese_se: float
    peese_stat: float
    peese_pvalue: float
    peese_ci_low: float
    peese_ci_high: float
    pet_pvalue_one_sided: float
    alternative: str
    alpha: float
    chosen: str
    estimate: float
    ci_low: float
    ci_high: float
    level: float

    def summary(self) -> str:
        """The conditional test of PET, the intercepts of PET and PEESE and the one chosen."""
        pct = f"{100 * self.level:g}%"
        sign = ">" if self.alternative == "greater" else "<"
        table = self.to_frame().set_index("model").drop(columns="chosen")
        return "\n".join(
            [
                f"PET-PEESE (Stanley & Doucouliagos 2014; WLS, weights 1/vi; k = {self.k})",
                "",
                "Limit estimates (intercepts):",
                "",
                coef_table(table, "tval"),
                "",
                f"PET one-sided test of b0 {sign} 0: {_p_phrase(self.pet_pvalue_one_sided)} "
                f"(alpha = {self.alpha:g}) -> {self.chosen}",
                f"PET-PEESE estimate: {fmt_num(self.estimate)} "
                f"({pct} CI: {fmt_num(self.ci_low)}, {fmt_num(self.ci_high)})",
            ]
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per model (PET, PEESE): the intercept's estimate, se, t, df, p, CI."""
        rows = []
        for model in ("PET", "PEESE"):
            prefix = model.lower()
            rows.append(
                {
                    "model": model,
                    **{
                        name: getattr(self, f"{prefix}_{name}")
                        for name in ("estimate", "se", "stat")
                    },
                    "df": self.df,
                    **{
                        name: getattr(self, f"{prefix}_{name}")
                        for name in ("pvalue", "ci_low", "ci_high")
                    },
                    "chosen": model == self.chosen,
                }
            )
        return pd.DataFrame(rows)


def pet_peese(
    result: Any,
    vi: Any = None,
    alternative: Literal["greater", "less"] = "greater",
    alpha: float = 0.05,
    level: float = 0.95,
    sei: Any = None,
) -> PetPeeseResult:
    """PET-PEESE limit estimate (Stanley & Doucouliagos 2014, Res Synth Methods 5:60–78).

    ``result``: a fitted intercept-only univariate model (its yi and vi are used), or
    the effect sizes ``yi`` (then give ``vi``).

    PET is the weighted least-squares regression yi = b0 + b1·sei (weights
    1/vi, residual variance estimated, as R's ``lm(yi ~ sei, weights = 1/vi)``);
    PEESE is yi = b0 + b1·vi with the same weights.  b0 is each model's limit
    estimate; SEs, two-sided p-values and CIs use the t distribution with
    k − 2 df.  Each is the fixed-effect meta-regression with the Knapp-Hartung
    test (``random_effects(yi, vi, method="FE", test="knha", mods=...)``), whose
    Var(b) = s² (X'WX)⁻¹ with s² = Σwᵢeᵢ²/(k − 2) is exactly ``lm``'s.

    Conditional rule: PET's one-sided t test (k − 2 df) of H0: b0 = 0 against
    H1: b0 > 0 (``alternative="greater"``, for effects coded so that positive
    is the intended effect, as in metaally's data) or H1: b0 < 0 (``"less"``);
    if it rejects at ``alpha`` = 0.05, i.e. there is evidence of a genuine
    effect, the PEESE estimate is chosen, otherwise the PET estimate.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', not {alternative!r}")
    y, v, _, kept = _effects(result, vi, "PET-PEESE")
    se, _ = _precision(v, sei, kept)
    v = se**2
    k = y.shape[0]
    if k < 3:
        raise ValueError("PET-PEESE needs at least 3 effect sizes")
    pet = _limit(y, v, np.sqrt(v), level)
    peese = _limit(y, v, v, level)
    directed = pet["stat"] if alternative == "greater" else -pet["stat"]
    one_sided = float(stats.t.sf(directed, k - 2))
    chosen, best = ("PEESE", peese) if one_sided < alpha else ("PET", pet)
    return PetPeeseResult(
        k=k,
        df=k - 2,
        **{f"pet_{name}": value for name, value in pet.items()},
        **{f"peese_{name}": value for name, value in peese.items()},
        pet_pvalue_one_sided=one_sided,
        alternative=alternative,
        alpha=alpha,
        chosen=chosen,
        estimate=best["estimate"],
        ci_low=best["ci_low"],
        ci_high=best["ci_high"],
        level=level,
    )


def _limit(y: np.ndarray, v: np.ndarray, x: np.ndarray, level: float) -> dict[str, float]:
    """The intercept of the fixed-effect Knapp-Hartung meta-regression of y on x (R's
    ``lm(y ~ x, weights = 1/v)``): estimate, se, t statistic, two-sided p-value and CI."""
    # x divided by a power of two near its size: the same intercept, a well-scaled design
    # at any scale of the effects (PEESE's x = v is the square of that scale)
    fit = random_effects(y, v, method="FE", test="knha", level=level,
                         mods=x / column_scale(x[:, None])[0])
    b0 = fit.coef.iloc[0]
    return {name: float(b0[name]) for name in ("estimate", "se", "stat", "pvalue", "ci_low",
                                                "ci_high")}
