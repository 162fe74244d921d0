"""Converters for what papers report instead of means and SDs, each with its published method.

- ``mean_sd_from_median``: sample mean and SD from the median with the quartiles
  and/or the range (Luo et al. 2018 for the mean; Wan et al. 2014 and Shi et al.
  2020 for the SD); the result names the method used.
- ``se_from_ci``: the standard error behind a Wald confidence interval, on the
  scale the interval is symmetric on (log for ratios).
- ``cluster_adjust``: Hedges' (2007) effect size d_T and its variance for a
  cluster-randomised two-group design analysed as if individuals were randomised.

References
----------
Altman, D. G. & Bland, J. M. (2011). How to obtain the confidence interval from a
    P value / the P value from a confidence interval. *BMJ*, 343, d2090 and d2304.
Hedges, L. V. (2007). Effect sizes in cluster-randomized designs. *Journal of
    Educational and Behavioral Statistics*, 32(4), 341-370.
Luo, D., Wan, X., Liu, J. & Tong, T. (2018). Optimally estimating the sample mean
    from the sample size, median, mid-range, and/or mid-quartile range. *Statistical
    Methods in Medical Research*, 27(6), 1785-1805.
Shi, J., Luo, D., Weng, H., Zeng, X.-T., Lin, L., Chu, H. & Tong, T. (2020).
    Optimally estimating the sample standard deviation from the five-number
    summary. *Research Synthesis Methods*, 11(5), 641-654.
Wan, X., Wang, W., Liu, J. & Tong, T. (2014). Estimating the sample mean and
    standard deviation from the sample size, median, range and/or interquartile
    range. *BMC Medical Research Methodology*, 14, 135.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy.stats import norm

# --------------------------------------------------------------------------- median -> mean, SD


def expected_normal_range(n: int) -> float:
    """E[max − min] of n standard normal variables: ∫ (1 − Φ(x)ⁿ − (1 − Φ(x))ⁿ) dx.

    The exact ξ(n) of Wan et al. (2014), whose Table 1 lists it for n ≤ 50.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")

    def integrand(x: float) -> float:
        return 1.0 - norm.cdf(x) ** n - norm.sf(x) ** n

    value, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)
    return float(value)


def range_divisor(n: float) -> float:
    """ξ(n), the divisor of the range: Wan et al. (2014), formulas (7)/(12) and Table 1.

    The exact expected range of n standard normals for n ≤ 50 (Table 1), and
    2·Φ⁻¹((n − 0.375)/(n + 0.25)) for n > 50, as the paper recommends.
    """
    if n <= 50 and float(n).is_integer():
        return expected_normal_range(int(n))
    return 2.0 * float(norm.ppf((n - 0.375) / (n + 0.25)))


def iqr_divisor(n: float) -> float:
    """η(n) = 2·Φ⁻¹((0.75n − 0.125)/(n + 0.25)), the divisor of the IQR (Wan et al. 2014)."""
    return 2.0 * float(norm.ppf((0.75 * n - 0.125) / (n + 0.25)))


@dataclass(frozen=True)
class MeanSD:
    """An estimated sample mean and SD, and the method (with its citation) that gave them."""

    mean: float
    sd: float
    method: str


def mean_sd_from_median(
    median: float,
    n: float,
    q1: float | None = None,
    q3: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> MeanSD:
    """Sample mean and SD from the median, n, and the quartiles and/or the range.

    Scenario by what is given (Wan et al. 2014's S1-S3):

    - range (a, m, b): mean = w·(a + b)/2 + (1 − w)·m, w = 4/(4 + n^0.75)
      (Luo et al. 2018); SD = (b − a)/ξ(n) (Wan et al. 2014, formula 7);
    - quartiles (q1, m, q3): mean = w·(q1 + q3)/2 + (1 − w)·m, w = 0.7 + 0.39/n
      (Luo et al. 2018); SD = (q3 − q1)/η(n) (Wan et al. 2014);
    - both: mean = w1·(a + b)/2 + w2·(q1 + q3)/2 + (1 − w1 − w2)·m with
      w1 = 2.2/(2.2 + n^0.75), w2 = 0.7 − 0.72/n^0.55 (Luo et al. 2018);
      SD = w·(b − a)/ξ(n) + (1 − w)·(q3 − q1)/η(n), w = 1/(1 + 0.07·n^0.6), with
      ξ(n) = 2Φ⁻¹((n − 0.375)/(n + 0.25)) (Shi et al. 2020, shortcut formula).

    All assume roughly normal data.  Raises ``ValueError`` naming the argument
    when a scenario is incomplete or the summary is out of order.
    """
    has_q = (q1 is not None, q3 is not None)
    has_r = (minimum is not None, maximum is not None)
    if has_q[0] != has_q[1]:
        raise ValueError("q1 and q3 must be given together")
    if has_r[0] != has_r[1]:
        raise ValueError("minimum and maximum must be given together")
    if not (all(has_q) or all(has_r)):
        raise ValueError("give q1 and q3, or minimum and maximum (or both) with the median")
    if not (n >= 2 and math.isfinite(n)):
        raise ValueError(f"n must be >= 2; got {n}")
    order = [("minimum", minimum), ("q1", q1), ("median", median), ("q3", q3),
             ("maximum", maximum)]
    given = [(name, x) for name, x in order if x is not None]
    for (name_a, a), (name_b, b) in zip(given, given[1:], strict=False):
        if a > b:
            raise ValueError(f"{name_a} ({a:g}) must not exceed {name_b} ({b:g})")
    low, high = given[0][1], given[-1][1]
    if not high > low:
        raise ValueError(f"{given[0][0]} and {given[-1][0]} must differ to estimate an SD")
    m = median
    if all(has_q) and all(has_r):
        w1 = 2.2 / (2.2 + n**0.75)
        w2 = 0.7 - 0.72 / n**0.55
        mean = w1 * (minimum + maximum) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * m
        w = 1.0 / (1.0 + 0.07 * n**0.6)
        xi = 2.0 * float(norm.ppf((n - 0.375) / (n + 0.25)))
        sd = w * (maximum - minimum) / xi + (1 - w) * (q3 - q1) / iqr_divisor(n)
        method = "mean: Luo et al. 2018 (five-number summary); SD: Shi et al. 2020"
    elif all(has_q):
        w = 0.7 + 0.39 / n
        mean = w * (q1 + q3) / 2 + (1 - w) * m
        sd = (q3 - q1) / iqr_divisor(n)
        method = "mean: Luo et al. 2018 (median, quartiles); SD: Wan et al. 2014 (IQR)"
    else:
        w = 4.0 / (4.0 + n**0.75)
        mean = w * (minimum + maximum) / 2 + (1 - w) * m
        sd = (maximum - minimum) / range_divisor(n)
        method = "mean: Luo et al. 2018 (median, range); SD: Wan et al. 2014 (range)"
    return MeanSD(float(mean), float(sd), method)


# --------------------------------------------------------------------------- CI -> SE


def se_from_ci(ci_low: float, ci_high: float, level: float = 0.95, log: bool = False) -> float:
    """Standard error behind a Wald interval: (high − low)/(2·z_{(1+level)/2}).

    With ``log=True`` the bounds are ratios (odds ratios) whose interval is
    symmetric on the log scale, and the SE is that of the log ratio (Altman &
    Bland 2011).  Raises ``ValueError`` naming the bound that is out of order.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    if log:
        if not ci_low > 0:
            raise ValueError(f"ci_low must be > 0 for a ratio; got {ci_low}")
        ci_low, ci_high = math.log(ci_low), math.log(ci_high)
    if not ci_high > ci_low:
        raise ValueError(f"ci_high must exceed ci_low; got {ci_low:g} and {ci_high:g}")
    return (ci_high - ci_low) / (2.0 * float(norm.ppf((1.0 + level) / 2.0)))


# --------------------------------------------------------------------------- clustering


@dataclass(frozen=True)
class ClusterAdjusted:
    """Hedges' (2007) d_T, its variance, and the design effect 1 + (n − 1)·ICC used."""

    yi: np.ndarray
    vi: np.ndarray
    design_effect: np.ndarray


def cluster_adjust(
    yi: np.ndarray, n1: np.ndarray, n2: np.ndarray, icc: np.ndarray, cluster_size: np.ndarray
) -> ClusterAdjusted:
    """d_T and its variance for a cluster-randomised design analysed at the individual level.

    Hedges (2007), equal cluster sizes n, N = n1 + n2 individuals, ICC ρ: the
    SMD computed with the total SD ignoring clustering is rescaled to
    d_T = d·√(1 − 2(n − 1)ρ/(N − 2)) (eq. 15), with variance (eq. 16)

        v(d_T) = (N/(n1·n2))·(1 + (n − 1)ρ)
                 + d_T²·[(N − 2)(1 − ρ)² + n(N − 2n)ρ² + 2(N − 2n)ρ(1 − ρ)]
                   / (2(N − 2)·[(N − 2) − 2(n − 1)ρ]),

    whose first term is the usual variance times the design effect 1 + (n − 1)ρ.
    With ρ = 0 it is 1/n1 + 1/n2 + d²/(2(N − 2)).  ``yi`` is the SMD as
    computed for independent groups (metaally applies it to Hedges' g).
    """
    yi, n1, n2, rho, m = (np.asarray(x, dtype=float) for x in (yi, n1, n2, icc, cluster_size))
    if np.any((rho < 0) | (rho >= 1)):
        raise ValueError("icc must be in [0, 1)")
    if np.any(m < 1):
        raise ValueError("cluster_size must be >= 1")
    big_n = n1 + n2
    if np.any(m > np.minimum(n1, n2)):
        raise ValueError("cluster_size must not exceed the size of either arm")
    shrink = 1.0 - 2.0 * (m - 1.0) * rho / (big_n - 2.0)
    if np.any(shrink <= 0):
        raise ValueError("icc and cluster_size are too large for the sample: "
                         "1 - 2(n-1)icc/(N-2) must be > 0")
    d_t = yi * np.sqrt(shrink)
    deff = 1.0 + (m - 1.0) * rho
    numerator = ((big_n - 2.0) * (1.0 - rho) ** 2 + m * (big_n - 2.0 * m) * rho**2
                 + 2.0 * (big_n - 2.0 * m) * rho * (1.0 - rho))
    vi = big_n / (n1 * n2) * deff + d_t**2 * numerator / (
        2.0 * (big_n - 2.0) * ((big_n - 2.0) - 2.0 * (m - 1.0) * rho)
    )
    d_t, vi, deff = np.broadcast_arrays(d_t, vi, deff)
    return ClusterAdjusted(d_t, vi, deff.copy())


__all__ = ["ClusterAdjusted", "MeanSD", "cluster_adjust", "expected_normal_range",
           "iqr_divisor", "mean_sd_from_median", "range_divisor", "se_from_ci"]
