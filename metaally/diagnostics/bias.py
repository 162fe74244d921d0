"""Small-study bias: Egger's regression test, the rank correlation test,
trim-and-fill and PET-PEESE.

Each function takes effect sizes ``yi`` and sampling variances ``vi`` (as
``random_effects`` does) and returns a frozen result object with ``summary()``
and ``to_frame()``.  Definitions follow metafor 3.8 (``regtest``, ``ranktest``,
``trimfill``); PET-PEESE follows Stanley & Doucouliagos (2014); the test for
dependent effects follows Rodgers & Pustejovsky (2021).
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.multilevel import multilevel
from metaally.models.inputs import effect_arrays
from metaally.models.printing import Printable, coef_table, fields_frame, fmt_num, pvalue_phrase
from metaally.models.univariate import RandomEffectsResult, random_effects

# Largest k for which the rank test uses Kendall's exact null distribution (its
# cost grows as k³); above it, and whenever there are ties, the normal
# approximation is used (R's ``cor.test`` cannot compute larger exact tables either).
EXACT_RANK_TEST_MAX_K = 400


def _p_phrase(p: float) -> str:
    """``p = 0.4218`` or ``p < .0001``, as metafor's regtest/ranktest printouts."""
    return pvalue_phrase(p).replace("p-val", "p")


# --------------------------------------------------------------------------- Egger


@dataclass(frozen=True)
class EggerResult(Printable):
    """Regression test for funnel plot asymmetry (Egger et al. 1997).

    ``stat``/``pvalue`` test the slope on the standard error; ``limit_estimate``
    is the intercept, the effect expected for a study with standard error 0.
    ``df`` is the Satterthwaite df of the robust test (NaN for the z test).
    ``model`` is the fitted meta-regression (a ``RandomEffectsResult``, or the
    ``RobustResult`` of the CHE model when ``study`` was given).
    """

    k: int
    n_studies: int
    test: str
    stat: float
    df: float
    pvalue: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    level: float
    model: Any

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.regtest``."""
        if self.test == "z":
            model = "mixed-effects meta-regression model (REML, z test)"
            stat = f"z = {fmt_num(self.stat)}"
        else:
            model = (
                f"CHE multilevel meta-regression, {self.n_studies} studies "
                "(CR2 cluster-robust t test, Satterthwaite df)"
            )
            stat = f"t = {fmt_num(self.stat)}, df = {fmt_num(self.df, 2)}"
        pct = f"{100 * self.level:g}%"
        return "\n".join(
            [
                "Regression Test for Funnel Plot Asymmetry",
                "",
                f"Model:     {model}",
                "Predictor: standard error",
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


def egger_test(yi: Any, vi: Any, study: Any = None, rho: float = 0.6) -> EggerResult:
    """Egger's regression test: the meta-regression yi = b0 + b1·sei + u_i + e_i.

    Without ``study`` (independent effects) this is metafor's
    ``regtest(rma(yi, vi))``: a REML random-effects meta-regression on the
    standard error sei = √vi, Wald z test of b1 = 0; b0 is the limit estimate
    with its Wald CI.

    With ``study`` (several effects per study) it is "Egger's sandwich"
    (Rodgers & Pustejovsky 2021, Psychological Methods 26:141–160): the CHE
    working model (``multilevel(yi, vi, study, rho=rho, mods=sei)``) with a
    CR2 cluster-robust t test of b1 on Satterthwaite degrees of freedom
    (clubSandwich ``coef_test(vcov = "CR2")``); the limit estimate's CI uses
    the same robust SE and df.
    """
    if study is None:
        y, v, _, _ = effect_arrays(yi, vi)
        if y.shape[0] < 3:
            raise ValueError("Egger's test needs at least 3 effect sizes")
        n_studies = y.shape[0]
        model: Any = random_effects(y, v, method="REML", test="z",
                                    mods=pd.DataFrame({"sei": np.sqrt(v)}))
        test, level = "z", model.level
    else:
        y, v, (s,), _ = effect_arrays(yi, vi, study, names=("study",))
        n_studies = len(pd.unique(s))
        if n_studies < 3:
            raise ValueError("Egger's sandwich test needs at least 3 studies")
        fit = multilevel(y, v, s, rho=rho, mods=pd.DataFrame({"sei": np.sqrt(v)}))
        model = fit.robust(adjust="CR2")
        test, level = "CR2", fit.level
    intercept, slope = model.coef.iloc[0], model.coef.iloc[1]
    return EggerResult(
        k=int(y.shape[0]),
        n_studies=n_studies,
        test=test,
        stat=float(slope["stat"]),
        df=float(slope.get("df", float("nan"))),  # z test: no df column
        pvalue=float(slope["pvalue"]),
        limit_estimate=float(intercept["estimate"]),
        limit_ci_low=float(intercept["ci_low"]),
        limit_ci_high=float(intercept["ci_high"]),
        level=level,
        model=model,
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


def rank_test(yi: Any, vi: Any) -> RankTestResult:
    """Begg & Mazumdar (1994) rank correlation test, as metafor's ``ranktest``.

    With the fixed-effect estimate θ̂ = Σ wᵢyᵢ / Σ wᵢ (wᵢ = 1/vᵢ) and its
    variance v̄ = 1/Σ wᵢ, the standardised effects yᵢ* = (yᵢ − θ̂)/√(vᵢ − v̄) are
    correlated with vᵢ by Kendall's τ_b.  The two-sided p-value is R's
    ``cor.test(method = "kendall", exact = TRUE)``: from the exact null
    distribution of the number of concordant pairs when there are no ties (and
    k ≤ ``EXACT_RANK_TEST_MAX_K``), otherwise from the normal approximation
    with the tie-corrected variance of Kendall's S, no continuity correction.
    """
    y, v, _, _ = effect_arrays(yi, vi)
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
    yi: Any,
    vi: Any,
    estimator: Literal["L0", "R0", "Q0"] = "L0",
    side: Literal["left", "right"] | None = None,
    method: str = "REML",
    maxiter: int = 100,
) -> TrimFillResult:
    """Duval & Tweedie's (2000) trim-and-fill method, as metafor's ``trimfill``.

    ``side`` (where studies are missing) defaults to metafor's choice: "right"
    if the slope of the ``method`` meta-regression of yi on √vi is negative,
    else "left".  Working on the side-flipped effects sorted increasingly, the
    k0 largest are trimmed, the ``method`` model is fitted to the rest giving
    θ̂, and k0 is re-estimated from the signed ranks of |yᵢ − θ̂| until it stops
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
    y, v, _, _ = effect_arrays(yi, vi)
    k = y.shape[0]
    if k < 3:
        raise ValueError("trim-and-fill needs at least 3 effect sizes")
    if side is None:
        slope = random_effects(y, v, method=method, mods=np.sqrt(v)).coef["estimate"].iloc[1]
        side = "right" if slope < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y, kind="stable")
    ys, vs = sign * y[order], v[order]

    k0, previous, iteration = 0, -1, 0
    while k0 != previous:
        previous = k0
        iteration += 1
        if iteration > maxiter:
            raise ValueError(f"trim-and-fill did not converge in {maxiter} iterations")
        theta = random_effects(ys[: k - k0], vs[: k - k0], method=method).estimate
        k0, se_k0 = _missing_count(ys - theta, estimator)

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
    if estimator == "L0":
        se = 4.0 * np.sqrt(var_t) / (2.0 * k - 1.0)
    else:
        se = 2.0 * np.sqrt(var_t) / np.sqrt((k - 0.5) ** 2 - k0 * (2.0 * k - k0 - 1.0))
    # Python's round, like R's, takes halves to even
    return int(max(0.0, round(k0))), float(max(0.0, se))


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
    yi: Any,
    vi: Any,
    alternative: Literal["greater", "less"] = "greater",
    alpha: float = 0.05,
    level: float = 0.95,
) -> PetPeeseResult:
    """PET-PEESE limit estimate (Stanley & Doucouliagos 2014, Res Synth Methods 5:60–78).

    PET is the weighted least-squares regression yi = b0 + b1·sei (weights
    1/vi, residual variance estimated, as R's ``lm(yi ~ sei, weights = 1/vi)``);
    PEESE is yi = b0 + b1·vi with the same weights.  b0 is each model's limit
    estimate; SEs, two-sided p-values and CIs use the t distribution with
    k − 2 df.

    Conditional rule: PET's one-sided t test (k − 2 df) of H0: b0 = 0 against
    H1: b0 > 0 (``alternative="greater"``, for effects coded so that positive
    is the intended effect, as in metaally's data) or H1: b0 < 0 (``"less"``);
    if it rejects at ``alpha`` = 0.05, i.e. there is evidence of a genuine
    effect, the PEESE estimate is chosen, otherwise the PET estimate.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', not {alternative!r}")
    y, v, _, _ = effect_arrays(yi, vi)
    k = y.shape[0]
    if k < 3:
        raise ValueError("PET-PEESE needs at least 3 effect sizes")
    pet = _wls_intercept(y, np.sqrt(v), 1.0 / v, level)
    peese = _wls_intercept(y, v, 1.0 / v, level)
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


def _wls_intercept(y: np.ndarray, x: np.ndarray, w: np.ndarray, level: float) -> dict[str, float]:
    """Intercept of the WLS line y = b0 + b1·x (R ``lm`` with weights ``w``).

    σ̂² = Σ wᵢeᵢ²/(k − 2); returns b0's estimate, se, t statistic, two-sided
    p-value and CI.
    """
    k = y.shape[0]
    X = np.column_stack([np.ones(k), x])
    xtwx_inv = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = xtwx_inv @ (X.T @ (w * y))
    resid = y - X @ beta
    sigma2 = np.sum(w * resid**2) / (k - 2)
    se = float(np.sqrt(sigma2 * xtwx_inv[0, 0]))
    b0 = float(beta[0])
    half = float(stats.t.isf((1.0 - level) / 2.0, k - 2)) * se
    return {
        "estimate": b0,
        "se": se,
        "stat": b0 / se,
        "pvalue": float(2.0 * stats.t.sf(abs(b0 / se), k - 2)),
        "ci_low": b0 - half,
        "ci_high": b0 + half,
    }
