"""Analytic power of meta-analytic tests, and conditional power of an updated meta-analysis.

For a standardized mean difference from two arms of n/2 participants each, the
large-sample sampling variance at the true effect δ is

    v = (n1 + n2)/(n1·n2) + δ²/(2(n1 + n2)),        n1 = n2 = n/2

(Hedges & Olkin 1985; metafor's ``vtype="LS"``).  With k studies of that size

- fixed effect: Var(μ̂) = v/k;
- random effects: Var(μ̂) = (v + τ²)/k, with τ² given or τ² = v·I²/(1 − I²)
  (the I² of a meta-analysis of equal-sized studies, Higgins & Thompson 2002);

and the two-sided z test at level α has power

    1 − Φ(z₁₋α/₂ − λ) + Φ(−z₁₋α/₂ − λ),       λ = δ/√Var(μ̂)

(Hedges & Pigott 2001, Psychol Methods 6(3), eq. 5; Valentine, Pigott &
Rothstein 2010, J Educ Behav Stat 35(2)).  The test of a difference between two
subgroups has the same form with λ = (δ₁ − δ₂)/√(Var(μ̂₁) + Var(μ̂₂)) (Hedges &
Pigott 2004, Psychol Methods 9(4), eq. 12).

:func:`studies_needed` answers "how many more studies of size n?" by the
conditional power of the updated inverse-variance pooled test given the studies
already in hand (Roloff, Higgins & Sutton 2013, Stat Med 32(1): the power of an
updated meta-analysis): with current weights w_i = 1/(v_i + τ²), S = Σw_i y_i,
W = Σw_i and m new studies of weight w* = 1/(v* + τ²) whose mean true effect is
δ, the updated estimate is (S + m w* ȳ*)/(W + m w*) with ȳ* ~ N(δ, 1/(m w*)),
so it is normal with mean (S + m w* δ)/(W + m w*), sd √(m w*)/(W + m w*), and
the test rejects when |estimate| > z₁₋α/₂/√(W + m w*).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.inputs import effect_arrays
from metaally.models.printing import Printable, fmt_num

__all__ = ["meta_power", "subgroup_power", "studies_needed", "smd_variance", "StudiesNeeded"]


def smd_variance(effect: Any, n: Any) -> np.ndarray:
    """Sampling variance of an SMD ``effect`` from ``n`` participants split equally in two arms.

    v = (n1 + n2)/(n1·n2) + δ²/(2(n1 + n2)) with n1 = n2 = n/2 (Hedges & Olkin 1985).
    """
    n = np.asarray(n, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n < 4):
        raise ValueError("n must be the total sample size per study, at least 4 (two arms of 2)")
    effect = np.asarray(effect, dtype=float)
    if np.any(~np.isfinite(effect)):
        raise ValueError("effect must be finite")
    n1 = n2 = n / 2.0
    return (n1 + n2) / (n1 * n2) + effect**2 / (2.0 * (n1 + n2))


def _between_variance(v: np.ndarray, i2: float, tau2: float | None) -> np.ndarray:
    if tau2 is not None:
        if not np.isfinite(tau2) or tau2 < 0:
            raise ValueError(f"tau2 must be a finite number >= 0; got {tau2!r}")
        return np.broadcast_to(np.asarray(tau2, dtype=float), np.shape(v))
    if not (0.0 <= i2 < 1.0):
        raise ValueError(f"i2 must be in [0, 1) (a proportion, not a percentage); got {i2!r}")
    return v * i2 / (1.0 - i2)


def _check_level(level: float) -> float:
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return float(level)


def _critical(test: str, level: float, df: Any) -> np.ndarray:
    """Two-sided critical value: the normal quantile (``"z"``) or t(df) (``"knha"``)."""
    if test == "z":
        return np.asarray(stats.norm.isf((1.0 - level) / 2.0))
    if test == "knha":
        df = np.asarray(df, dtype=float)
        if np.any(df < 1):
            raise ValueError("test='knha' needs at least 2 studies (k - 1 >= 1 df)")
        return stats.t.isf((1.0 - level) / 2.0, df)
    raise ValueError(f"test must be 'z' or 'knha'; got {test!r}")


def _two_sided_power(lam: np.ndarray, crit: np.ndarray) -> np.ndarray:
    return stats.norm.sf(crit - lam) + stats.norm.cdf(-crit - lam)


def meta_power(
    effect: float,
    n: float,
    k: float,
    *,
    i2: float = 0.0,
    tau2: float | None = None,
    level: float = 0.95,
    test: str = "z",
) -> float:
    """Power of the two-sided test of μ = 0 in a meta-analysis of ``k`` studies of ``n`` each.

    Parameters
    ----------
    effect : the true mean standardized mean difference δ.
    n : total sample size per study, split equally between two arms.
    k : number of studies.
    i2 : I² as a proportion in [0, 1); gives τ² = v·I²/(1 − I²). 0 = fixed effect.
    tau2 : between-study variance; overrides ``i2`` when given.
    level : confidence level of the test (α = 1 − level).
    test : ``"z"`` (exact under the model), or ``"knha"``: the same noncentral
        normal statistic compared with the t(k − 1) quantile, the approximation of
        Jackson & Turner (2017, Res Synth Methods 8(3)) for the
        Hartung–Knapp–Sidik–Jonkman test; exact simulated power of any analysis
        comes from :func:`metaally.simulate`.

    Formula (Hedges & Pigott 2001, eq. 5): with Var(μ̂) = (v + τ²)/k,
    power = 1 − Φ(z₁₋α/₂ − λ) + Φ(−z₁₋α/₂ − λ), λ = δ/√Var(μ̂).
    ``meta_power(0.3, 20, 10)`` = 0.5594533, the fixed-effect power R's metapower prints.
    """
    level = _check_level(level)
    if not np.isfinite(k) or k < 1:
        raise ValueError(f"k must be a number of studies >= 1; got {k!r}")
    crit = _critical(test, level, float(k) - 1.0)
    v = smd_variance(effect, n)
    var = (v + _between_variance(v, i2, tau2)) / float(k)
    return float(_two_sided_power(np.asarray(effect, dtype=float) / np.sqrt(var), crit))


def subgroup_power(
    effects: tuple[float, float],
    n: float,
    k: tuple[float, float],
    *,
    i2: float = 0.0,
    tau2: float | None = None,
    level: float = 0.95,
) -> float:
    """Power of the two-sided z test that two subgroup means differ (Hedges & Pigott 2004, eq. 12).

    ``effects`` = (δ₁, δ₂), ``k`` = (k₁, k₂) studies of ``n`` participants each;
    Var(μ̂_j) = (v_j + τ²)/k_j with v_j at δ_j, λ = (δ₁ − δ₂)/√(Var(μ̂₁) + Var(μ̂₂)).
    """
    level = _check_level(level)
    if len(effects) != 2 or len(k) != 2:
        raise ValueError("effects and k must each hold two values, one per subgroup")
    if min(k) < 1:
        raise ValueError(f"k must hold numbers of studies >= 1; got {k!r}")
    v = smd_variance(np.asarray(effects, dtype=float), n)
    var = (v + _between_variance(v, i2, tau2)) / np.asarray(k, dtype=float)
    lam = (effects[0] - effects[1]) / np.sqrt(var.sum())
    return float(_two_sided_power(np.asarray(lam), _critical("z", level, np.nan)))


@dataclass(frozen=True)
class StudiesNeeded(Printable):
    """How many new studies of size ``n`` bring the updated test's power to ``target``."""

    effect: float
    n: float
    tau2: float
    target: float
    level: float
    test: str
    k_current: int
    current_power: float
    studies: int | None
    power: pd.Series

    def to_frame(self) -> pd.DataFrame:
        """One row per number of new studies m: m and the updated test's power."""
        return pd.DataFrame({"new_studies": self.power.index, "power": self.power.to_numpy()})

    def summary(self) -> str:
        """Printed summary: the assumptions and the number of studies needed."""
        need = (f"{self.studies} new studies" if self.studies is not None
                else f"more than {int(self.power.index.max())} new studies")
        return "\n".join([
            f"Studies needed (conditional power of the updated random-effects {self.test} test)",
            f"  current studies: {self.k_current}; assumed true effect {fmt_num(self.effect)}, "
            f"tau^2 = {fmt_num(self.tau2, 4)}, new studies of n = {self.n:g}",
            f"  power now: {fmt_num(self.current_power, 3)}; target {fmt_num(self.target, 2)}: "
            f"{need}",
        ])


def studies_needed(
    effect: float,
    n: float,
    *,
    yi: Any = None,
    vi: Any = None,
    tau2: float = 0.0,
    target: float = 0.8,
    level: float = 0.95,
    test: str = "z",
    max_studies: int = 500,
) -> StudiesNeeded:
    """Smallest number m of new studies of ``n`` participants giving power ≥ ``target``.

    Conditional power of the updated inverse-variance random-effects z test
    (Roloff, Higgins & Sutton 2013), given the current study-level effects
    ``yi``/``vi`` (one row per study: composites for dependent effects), the
    between-study variance ``tau2`` and the true effect ``effect`` of the new
    studies (module docstring).  With no current studies (``yi=None``) this is
    :func:`meta_power` with k = m.  ``test="knha"`` compares the same statistic
    with the t quantile on (current + new studies − 1) df (Jackson & Turner 2017),
    which is what few-study intervals need.

    Returns a :class:`StudiesNeeded` whose ``power`` holds the power for every m
    from 0 to ``max_studies`` and ``studies`` the smallest m reaching the target
    (None when even ``max_studies`` do not).
    """
    level = _check_level(level)
    if not (0.0 < target < 1.0):
        raise ValueError(f"target must be a power in (0, 1); got {target!r}")
    if not np.isfinite(tau2) or tau2 < 0:
        raise ValueError(f"tau2 must be a finite number >= 0; got {tau2!r}")
    if int(max_studies) < 1:
        raise ValueError(f"max_studies must be >= 1; got {max_studies!r}")
    if (yi is None) != (vi is None):
        raise ValueError("give both yi and vi (the current studies) or neither")
    if yi is None:
        s_cur = w_cur = 0.0
        k_cur = 0
    else:
        y, v, _, _ = effect_arrays(yi, vi)
        w = 1.0 / (v + tau2)
        s_cur, w_cur, k_cur = float(w @ y), float(w.sum()), int(y.size)
    w_new = 1.0 / (float(smd_variance(effect, n)) + tau2)
    m = np.arange(int(max_studies) + 1, dtype=float)
    total = w_cur + m * w_new
    if test == "knha":  # one study in all has no t test: it never rejects
        df = k_cur + m - 1.0
        crit = np.where(df >= 1, _critical(test, level, np.maximum(df, 1.0)), np.inf)
    else:
        crit = _critical(test, level, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (s_cur + m * w_new * effect) / total
        sd = np.sqrt(m * w_new) / total
        bound = crit / np.sqrt(total)
        power = np.where(
            m > 0,
            stats.norm.sf((bound - mean) / np.where(m > 0, sd, 1.0))
            + stats.norm.cdf((-bound - mean) / np.where(m > 0, sd, 1.0)),
            # no new studies: the current test either rejects or not
            (np.abs(mean) > bound).astype(float) if k_cur else 0.0,
        )
    series = pd.Series(power, index=pd.Index(m.astype(int), name="new_studies"), name="power")
    hit = np.flatnonzero(power >= target)
    return StudiesNeeded(
        effect=float(effect), n=float(n), tau2=float(tau2), target=float(target),
        level=level, test=test, k_current=k_cur, current_power=float(power[0]),
        studies=int(hit[0]) if hit.size else None, power=series,
    )
