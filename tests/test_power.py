"""meta_power, subgroup_power, studies_needed: published values, the formulas, limits, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import metaally as ma


def _phi(x: float) -> float:
    """Standard normal cdf from math.erf (independent of scipy)."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _power_by_hand(effect: float, n: float, k: float, tau2: float, z: float = 1.959963984540054):
    n1 = n / 2
    v = 2 * n1 / (n1 * n1) + effect**2 / (2 * n)
    lam = effect / math.sqrt((v + tau2) / k)
    return 1 - _phi(z - lam) + _phi(-z - lam), v


def test_fixed_effect_power_equals_metapower_readme_example() -> None:
    # R metapower README: mpower(effect_size = .3, study_size = 20, k = 10, i2 = .5, es_type = "d")
    # prints "Fixed-Effects Model 0.5594533" (Griffin 2021, Quant Methods Psychol 17(1)).
    assert ma.meta_power(0.3, 20, 10) == pytest.approx(0.5594533, abs=5e-8)


@pytest.mark.parametrize(
    ("effect", "n", "k", "i2"),
    [(0.3, 20, 10, 0.5), (0.2, 100, 5, 0.25), (0.8, 40, 3, 0.9), (0.05, 1000, 40, 0.1)],
    ids=["readme", "small-effect", "few-studies-high-i2", "many-studies"],
)
def test_random_effects_power_equals_the_formula(
    effect: float, n: float, k: int, i2: float
) -> None:
    # tau^2 = v * I^2 / (1 - I^2) (the definition; Hedges & Pigott 2001)
    _, v = _power_by_hand(effect, n, k, 0.0)
    expected, _ = _power_by_hand(effect, n, k, v * i2 / (1 - i2))
    assert ma.meta_power(effect, n, k, i2=i2) == pytest.approx(expected, rel=1e-9)
    tau2 = 0.037
    expected_tau, _ = _power_by_hand(effect, n, k, tau2)
    assert ma.meta_power(effect, n, k, tau2=tau2, i2=0.99) == pytest.approx(expected_tau, rel=1e-9)


def test_knha_power_uses_the_t_quantile_on_k_minus_1_df() -> None:
    # Jackson & Turner 2017: the z statistic's distribution against t(k - 1) critical values
    from scipy import stats

    crit = stats.t.isf(0.025, 4)
    _, v = _power_by_hand(0.5, 60, 5, 0.0)
    lam = 0.5 / math.sqrt((v + 0.05) / 5)
    expected = 1 - _phi(crit - lam) + _phi(-crit - lam)
    assert ma.meta_power(0.5, 60, 5, tau2=0.05, test="knha") == pytest.approx(expected, rel=1e-9)
    assert ma.meta_power(0.5, 60, 5, tau2=0.05, test="knha") < ma.meta_power(0.5, 60, 5, tau2=0.05)


def test_knha_approximation_is_close_to_simulated_hksj_power() -> None:
    analytic = ma.meta_power(0.3, 80, 10, tau2=0.02, test="knha")
    design = {"effect": 0.3, "k": 10, "n": 80, "tau": 0.02**0.5, "sampling": "normal"}
    row = ma.simulate(design, "reml_knha", n_reps=20_000, seed=8, chunk_reps=20_000).to_frame()
    assert abs(row["power"].iloc[0] - analytic) < 0.03


def test_power_at_zero_effect_is_the_type_one_error_rate() -> None:
    assert ma.meta_power(0.0, 50, 7, i2=0.3) == pytest.approx(0.05, abs=1e-12)
    assert ma.meta_power(0.0, 50, 7, level=0.9) == pytest.approx(0.10, abs=1e-12)


@given(
    effect=st.floats(0.05, 1.5), n=st.floats(10, 500), k=st.integers(1, 60),
    i2=st.floats(0.0, 0.95),
)
def test_power_rises_with_studies_and_falls_with_heterogeneity(
    effect: float, n: float, k: int, i2: float
) -> None:
    p = ma.meta_power(effect, n, k, i2=i2)
    assert 0.05 <= p <= 1.0
    assert ma.meta_power(effect, n, k + 1, i2=i2) >= p - 1e-12
    assert ma.meta_power(effect, n, k, i2=min(i2 + 0.04, 0.99)) <= p + 1e-12
    assert ma.meta_power(-effect, n, k, i2=i2) == pytest.approx(p, rel=1e-12)


def test_subgroup_power_equals_hedges_pigott_2004() -> None:
    effects, n, k, i2 = (0.2, 0.5), 20, (15, 15), 0.5
    n1 = n / 2
    v = [2 * n1 / n1**2 + d**2 / (2 * n) for d in effects]
    var = sum((vj + vj * i2 / (1 - i2)) / kj for vj, kj in zip(v, k, strict=True))
    lam = (effects[0] - effects[1]) / math.sqrt(var)
    z = 1.959963984540054
    expected = 1 - _phi(z - lam) + _phi(-z - lam)
    assert ma.subgroup_power(effects, n, k, i2=i2) == pytest.approx(expected, rel=1e-9)


def test_subgroup_power_against_a_known_zero_reduces_to_meta_power() -> None:
    # a second subgroup known exactly (infinitely many studies) at effect 0: the
    # difference test is the one-group test of the first subgroup's mean
    p = ma.subgroup_power((0.4, 0.0), 60, (6, 1e12), tau2=0.02)
    assert p == pytest.approx(ma.meta_power(0.4, 60, 6, tau2=0.02), rel=1e-9)


def test_studies_needed_without_current_studies_is_meta_power_in_new_studies() -> None:
    res = ma.studies_needed(0.25, 80, tau2=0.03, target=0.8, max_studies=60)
    for m in (1, 2, 7, 30, 60):
        assert res.power[m] == pytest.approx(ma.meta_power(0.25, 80, m, tau2=0.03), rel=1e-10)
    assert res.power[res.studies] >= 0.8 > res.power[res.studies - 1]
    assert res.k_current == 0


def test_studies_needed_conditional_power_equals_monte_carlo() -> None:
    # Roloff, Higgins & Sutton 2013: draw the new studies' mean and count rejections
    yi, vi, tau2 = np.array([0.1, 0.35, 0.05]), np.array([0.04, 0.02, 0.06]), 0.01
    effect, n = 0.3, 60
    res = ma.studies_needed(effect, n, yi=yi, vi=vi, tau2=tau2, max_studies=20)
    rng = np.random.default_rng(7)
    w = 1 / (vi + tau2)
    v_new = 4 / n + effect**2 / (2 * n)
    w_new = 1 / (v_new + tau2)
    for m in (1, 4, 12):
        new = rng.normal(effect, math.sqrt(v_new + tau2), size=(200_000, m))
        est = (w @ yi + w_new * new.sum(axis=1)) / (w.sum() + m * w_new)
        z = est * math.sqrt(w.sum() + m * w_new)
        rate = np.mean(np.abs(z) > 1.959963984540054)
        mcse = math.sqrt(rate * (1 - rate) / new.shape[0])
        assert abs(res.power[m] - rate) < 4 * mcse + 1e-12


def test_studies_needed_knha_counts_degrees_of_freedom_from_all_studies() -> None:
    res = ma.studies_needed(0.3, 100, yi=[0.3], vi=[0.04], tau2=0.01, test="knha", max_studies=30)
    assert res.power[0] == 0.0  # one study: no t test
    with_z = ma.studies_needed(0.3, 100, yi=[0.3], vi=[0.04], tau2=0.01, max_studies=30)
    assert np.all(res.power.to_numpy()[1:] < with_z.power.to_numpy()[1:])
    assert res.studies > with_z.studies


def test_studies_needed_reports_when_the_target_is_out_of_reach() -> None:
    res = ma.studies_needed(0.01, 20, max_studies=5)
    assert res.studies is None
    assert "more than 5 new studies" in res.summary()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: ma.meta_power(0.3, 2, 10), "n"),
        (lambda: ma.meta_power(0.3, 20, 0), "k"),
        (lambda: ma.meta_power(0.3, 20, 10, i2=50), "i2"),
        (lambda: ma.meta_power(0.3, 20, 10, tau2=-1), "tau2"),
        (lambda: ma.meta_power(0.3, 20, 10, level=95), "level"),
        (lambda: ma.meta_power(0.3, 20, 10, test="wald"), "test"),
        (lambda: ma.meta_power(0.3, 20, 1, test="knha"), "2 studies"),
        (lambda: ma.meta_power(float("nan"), 20, 10), "effect"),
        (lambda: ma.studies_needed(0.3, 20, target=1.5), "target"),
        (lambda: ma.studies_needed(0.3, 20, yi=[0.1]), "yi and vi"),
        (lambda: ma.subgroup_power((0.1,), 20, (3, 3)), "effects and k"),
    ],
    ids=["n", "k", "i2-percent", "tau2", "level-percent", "test", "knha-one-study", "effect-nan",
         "target", "yi-without-vi", "one-subgroup"],
)
def test_bad_arguments_are_named(call, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        call()
