"""Converters: published tables and worked examples, hand computations, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from metaally.effects.converters import (
    cluster_adjust,
    expected_normal_range,
    iqr_divisor,
    mean_sd_from_median,
    range_divisor,
    se_from_ci,
)

# Wan et al. (2014), BMC Med Res Methodol 14:135, Table 1: xi(n) for n <= 50 (3 decimals)
WAN_TABLE_1 = [
    0.0, 1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078,
    3.173, 3.259, 3.336, 3.407, 3.472, 3.532, 3.588, 3.640, 3.689, 3.735,
    3.778, 3.819, 3.858, 3.895, 3.931, 3.964, 3.997, 4.027, 4.057, 4.086,
    4.113, 4.139, 4.165, 4.189, 4.213, 4.236, 4.259, 4.280, 4.301, 4.322,
    4.341, 4.361, 4.379, 4.398, 4.415, 4.433, 4.450, 4.466, 4.482, 4.498,
]


@pytest.mark.parametrize("n", range(1, 51))
def test_range_divisor_reproduces_wan_table_1(n: int) -> None:
    # every entry agrees to its 3 printed decimals except n = 12 (exact 3.25846, printed 3.259)
    tol = 6e-4 if n == 12 else 5e-4
    assert range_divisor(n) == pytest.approx(WAN_TABLE_1[n - 1], abs=tol)


def test_expected_range_of_two_normals_by_hand() -> None:
    # E|Z1 - Z2| for independent standard normals: Z1 - Z2 ~ N(0, 2), E|.| = 2/sqrt(pi)
    assert expected_normal_range(2) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-12)


def test_range_divisor_beyond_50_is_wans_approximation() -> None:
    assert range_divisor(51) == pytest.approx(2 * norm.ppf((51 - 0.375) / 51.25), rel=1e-15)
    # the approximation continues the table smoothly (within 0.3% at n = 50)
    assert abs(2 * norm.ppf((50 - 0.375) / 50.25) / WAN_TABLE_1[-1] - 1) < 3e-3


def test_quartiles_by_hand() -> None:
    # n = 100: w = 0.7 + 0.39/100 = 0.7039; mean = 0.7039*(10+20)/2 + 0.2961*14
    # eta(100) = 2*Phi^-1(74.875/100.25)
    est = mean_sd_from_median(14, 100, q1=10, q3=20)
    assert est.mean == pytest.approx(0.7039 * 15 + 0.2961 * 14, rel=1e-14)
    assert est.sd == pytest.approx(10 / (2 * norm.ppf(74.875 / 100.25)), rel=1e-14)
    assert "Luo et al. 2018" in est.method and "Wan et al. 2014 (IQR)" in est.method


def test_range_by_hand() -> None:
    # n = 16: n^0.75 = 8, w = 4/12 = 1/3; mean = (1/3)*(2+30)/2 + (2/3)*12 = 16/3 + 8
    est = mean_sd_from_median(12, 16, minimum=2, maximum=30)
    assert est.mean == pytest.approx(16 / 3 + 8, rel=1e-14)
    assert est.sd == pytest.approx(28 / WAN_TABLE_1[15], rel=2e-4)
    assert "Wan et al. 2014 (range)" in est.method


def test_five_number_summary_by_hand() -> None:
    # n = 32: 32^0.6 = 8 and 32^0.75 = 2^3.75
    est = mean_sd_from_median(12, 32, q1=8, q3=17, minimum=2, maximum=30)
    w1 = 2.2 / (2.2 + 2 ** 3.75)
    w2 = 0.7 - 0.72 / 32**0.55
    assert est.mean == pytest.approx(w1 * 16 + w2 * 12.5 + (1 - w1 - w2) * 12, rel=1e-14)
    w = 1 / (1 + 0.07 * 8)
    xi = 2 * norm.ppf((32 - 0.375) / 32.25)
    eta = 2 * norm.ppf((24 - 0.125) / 32.25)
    assert est.sd == pytest.approx(w * 28 / xi + (1 - w) * 9 / eta, rel=1e-12)
    assert est.method.endswith("SD: Shi et al. 2020")


@settings(max_examples=50, deadline=None)
@given(mu=st.floats(-100, 100), sigma=st.floats(0.1, 50), n=st.integers(500, 100000))
def test_normal_quantiles_recover_mean_and_sd(mu: float, sigma: float, n: int) -> None:
    """Symmetric summaries give mean = median; the population quartiles give SD ≈ σ."""
    q = norm.ppf([0.25, 0.75], loc=mu, scale=sigma)
    est = mean_sd_from_median(mu, n, q1=q[0], q3=q[1])
    assert est.mean == pytest.approx(mu, abs=1e-9 * (1 + abs(mu)) + 1e-9 * sigma)
    # eta(n) -> 2*Phi^-1(0.75) as n grows: within 1% of sigma for n >= 500
    assert est.sd == pytest.approx(sigma, rel=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"median": 5, "n": 20, "q1": 3}, "q1 and q3"),
        ({"median": 5, "n": 20, "minimum": 1}, "minimum and maximum"),
        ({"median": 5, "n": 20}, "give q1 and q3"),
        ({"median": 5, "n": 1, "q1": 3, "q3": 7}, "n must be"),
        ({"median": 8, "n": 20, "q1": 3, "q3": 7}, "median .* must not exceed q3"),
        ({"median": 5, "n": 20, "q1": 5, "q3": 5}, "must differ"),
    ],
)
def test_median_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mean_sd_from_median(**kwargs)


def test_iqr_divisor_limit() -> None:
    assert iqr_divisor(1e9) == pytest.approx(2 * norm.ppf(0.75), rel=1e-8)


# --------------------------------------------------------------------------- CI -> SE


def test_se_from_ci_altman_bland_2011_example() -> None:
    """Altman & Bland (2011, BMJ 343:d2304): RR 0.81, 95% CI 0.70 to 0.94.

    On the log scale SE = (−0.062 − (−0.357))/(2·1.96) = 0.075, z = −0.211/0.075 = −2.81,
    P = 0.005 (their worked example, rounded as printed).
    """
    se = se_from_ci(0.70, 0.94, log=True)
    assert (round(math.log(0.70), 3), round(math.log(0.94), 3)) == (-0.357, -0.062)
    assert round(se, 3) == 0.075
    z = round(math.log(0.81), 3) / round(se, 3)  # the paper divides the printed values
    assert round(z, 2) == -2.81
    assert round(2 * norm.sf(abs(z)), 3) == 0.005


def test_se_from_ci_by_hand() -> None:
    assert se_from_ci(0.1, 0.9) == pytest.approx(0.8 / (2 * norm.ppf(0.975)), rel=1e-15)
    assert se_from_ci(-1, 1, level=0.9) == pytest.approx(1 / norm.ppf(0.95), rel=1e-15)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [((0.5, 0.4), {}, "ci_high must exceed"), ((0.0, 2.0), {"log": True}, "ci_low must be > 0"),
     ((0.1, 0.2), {"level": 95}, "level")],
)
def test_se_from_ci_bad_input(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        se_from_ci(*args, **kwargs)


# --------------------------------------------------------------------------- clustering


def test_cluster_adjust_without_clustering() -> None:
    # icc = 0: d unchanged, v = 1/n1 + 1/n2 + d^2/(2(N - 2))
    res = cluster_adjust(0.5, 30, 40, 0.0, 10)
    assert res.yi == pytest.approx(0.5, rel=1e-15)
    assert res.vi == pytest.approx(1 / 30 + 1 / 40 + 0.25 / (2 * 68), rel=1e-14)
    assert res.design_effect == 1.0


def test_cluster_adjust_by_hand() -> None:
    # N = 100 in clusters of n = 10, icc = 0.2: d_T = d*sqrt(1 - 2*9*0.2/98);
    # design effect 1 + 9*0.2 = 2.8
    d, rho, n, big_n = 0.4, 0.2, 10, 100
    res = cluster_adjust(d, 50, 50, rho, n)
    d_t = d * math.sqrt(1 - 3.6 / 98)
    num = 98 * 0.8**2 + 10 * 80 * 0.04 + 2 * 80 * 0.2 * 0.8
    assert res.yi == pytest.approx(d_t, rel=1e-14)
    assert res.design_effect == pytest.approx(2.8, rel=1e-15)
    assert res.vi == pytest.approx(big_n / 2500 * 2.8 + d_t**2 * num / (2 * 98 * (98 - 3.6)),
                                   rel=1e-14)


@settings(max_examples=50, deadline=None)
@given(d=st.floats(-3, 3), rho=st.floats(0.0, 0.5), m=st.integers(1, 30), n1=st.integers(60, 500))
def test_clustering_shrinks_d_and_inflates_variance(d: float, rho: float, m: int, n1: int) -> None:
    res = cluster_adjust(d, n1, n1, rho, m)
    assert abs(res.yi) <= abs(d) + 1e-15
    assert res.vi >= (2 / n1) * (1 + (m - 1) * rho) - 1e-15
    assert np.isfinite(res.vi)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0.3, 20, 20, 1.0, 5), "icc"), ((0.3, 20, 20, 0.1, 0), "cluster_size"),
     ((0.3, 20, 20, 0.1, 25), "either arm")],
)
def test_cluster_adjust_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cluster_adjust(*args)
