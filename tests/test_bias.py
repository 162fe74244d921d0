"""Small-study bias tests against metafor 3.8 / lm / clubSandwich.

Reference values: tests/reference/diagnostics.json, written by
tests/reference/diagnostics.R (regtest, ranktest, trimfill, lm for PET-PEESE on
dat.bcg, dat.hackshaw1998, dat.egger2001 and a tied copy of dat.hackshaw1998;
Egger's sandwich on dat.assink2016).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma
from metaally.diagnostics.bias import EXACT_RANK_TEST_MAX_K, _kendall_exact_pvalue, _mahonian_pmf

REF = json.loads((Path(__file__).parent / "reference" / "diagnostics.json").read_text())
DATASETS = ["bcg", "hackshaw", "egger", "hackshaw_ties"]
TRIMFILL_CASES = [f"{e}_{m}" for e in ("L0", "R0", "Q0") for m in ("REML", "DL")]
TRIMFILL_CASES.append("L0_REML_forced")
RTOL = 1e-6
RTOL_ROBUST = 1e-4


def data(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = REF["datasets"][name]
    return np.array(d["yi"], dtype=float), np.array(d["vi"], dtype=float)


def close(got: float, want: float, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-10)


def test_reference_grid_is_complete():
    assert sorted(REF["bias"]) == sorted(DATASETS)
    for name in DATASETS:
        entry = REF["bias"][name]
        assert set(entry) == {"regtest", "ranktest", "trimfill", "pet_peese"}
        assert sorted(entry["trimfill"]) == sorted(TRIMFILL_CASES)
    assert any(REF["bias"][n]["trimfill"]["L0_REML"]["k0"] > 0 for n in DATASETS)
    assert set(REF["multilevel"]["egger_sandwich"]) >= {"stat", "df", "pvalue", "limit_estimate"}


# ---------------------------------------------------------------- Egger (regtest)


@pytest.mark.parametrize("name", DATASETS)
def test_egger_matches_regtest(name):
    ref = REF["bias"][name]["regtest"]
    res = ma.egger_test(*data(name))
    for field in ("stat", "pvalue", "limit_estimate", "limit_ci_low", "limit_ci_high"):
        close(getattr(res, field), ref[field])
    assert res.test == "z" and res.df == np.inf  # z test: infinite df, as every z test


def test_egger_sandwich_matches_clubsandwich():
    ml = REF["multilevel"]
    ref = ml["egger_sandwich"]
    d = ml["data"]
    res = ma.egger_test(d["yi"], d["vi"], study=d["study"], rho=ml["rho"])
    for field in ("stat", "df", "pvalue", "limit_estimate", "limit_ci_low", "limit_ci_high"):
        close(getattr(res, field), ref[field], RTOL_ROBUST)
    assert res.test == "CR2" and res.n_clusters == 17 and res.k == 100
    assert "CR2 cluster-robust t test" in res.summary()
    assert f"df = {res.df:.2f}" in res.summary()


def test_egger_summary_and_frame():
    res = ma.egger_test(*data("egger"))
    text = res.summary()
    assert "Regression Test for Funnel Plot Asymmetry" in text
    assert "z = -4.6686, p < .0001" in text
    frame = res.to_frame()
    assert list(frame["limit_estimate"]) == [res.limit_estimate]


# ---------------------------------------------------------------- rank test


@pytest.mark.parametrize("name", DATASETS)
def test_rank_test_matches_ranktest(name):
    ref = REF["bias"][name]["ranktest"]
    res = ma.rank_test(*data(name))
    close(res.tau, ref["tau"])
    close(res.pvalue, ref["pvalue"])
    assert res.exact == (name != "hackshaw_ties")


def test_mahonian_distribution_small_n():
    # inversions of the 6 permutations of 3 items: 0, 1, 1, 2, 2, 3
    np.testing.assert_allclose(_mahonian_pmf(3), np.array([1, 2, 2, 1]) / 6)
    pmf = _mahonian_pmf(12)
    assert pmf.size == 12 * 11 // 2 + 1
    np.testing.assert_allclose(pmf.sum(), 1.0)
    np.testing.assert_allclose(pmf, pmf[::-1])


def test_exact_pvalue_extremes():
    # perfect concordance among n = 5: one of 120 orderings on each side
    assert _kendall_exact_pvalue(1.0, 5) == pytest.approx(2 / 120)
    assert _kendall_exact_pvalue(0.0, 5) == 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=3, max_value=25), st.randoms(use_true_random=False))
def test_rank_test_invariant_to_order(k, rnd):
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    yi = rng.normal(size=k)
    vi = rng.uniform(0.01, 1.0, size=k)
    perm = rng.permutation(k)
    a, b = ma.rank_test(yi, vi), ma.rank_test(yi[perm], vi[perm])
    assert a.tau == pytest.approx(b.tau, abs=1e-12)
    assert a.pvalue == pytest.approx(b.pvalue, abs=1e-12)
    assert 0.0 <= a.pvalue <= 1.0 and -1.0 <= a.tau <= 1.0


def test_rank_test_large_k_uses_normal_approximation():
    rng = np.random.default_rng(1)
    k = EXACT_RANK_TEST_MAX_K + 1
    res = ma.rank_test(rng.normal(size=k), rng.uniform(0.01, 1, size=k))
    assert not res.exact and 0 <= res.pvalue <= 1


# ---------------------------------------------------------------- trim and fill


def trimfill_params():
    return [
        pytest.param(name, case, id=f"{name}-{case}")
        for name in DATASETS
        for case in TRIMFILL_CASES
    ]


@pytest.mark.parametrize(("name", "case"), trimfill_params())
def test_trim_and_fill_matches_trimfill(name, case):
    ref = REF["bias"][name]["trimfill"][case]
    yi, vi = data(name)
    kwargs = {"estimator": ref["estimator"], "method": ref["method"]}
    if "side_arg" in ref:
        kwargs["side"] = ref["side_arg"]
    if ref.get("error"):
        with pytest.raises(ValueError, match="Q0"):
            ma.trim_and_fill(yi, vi, **kwargs)
        return
    res = ma.trim_and_fill(yi, vi, **kwargs)
    assert res.k0 == ref["k0"]
    assert res.side == ref["side"]
    for field in ("estimate", "se", "ci_low", "ci_high", "pvalue", "tau2"):
        close(getattr(res, field), ref[field])
    np.testing.assert_allclose(res.filled["yi"], ref["filled_yi"], rtol=RTOL, atol=1e-10)
    np.testing.assert_allclose(res.filled["vi"], ref["filled_vi"], rtol=RTOL, atol=1e-10)
    assert res.filled_mask.sum() == res.k0
    np.testing.assert_array_equal(res.yi_all[~res.filled_mask], yi)


def test_trim_and_fill_summary_names_side_and_k0():
    res = ma.trim_and_fill(*data("hackshaw"))
    assert "missing studies on the left side: 7" in res.summary()
    assert res.to_frame().loc[0, "k0"] == 7


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=4, max_value=15), st.randoms(use_true_random=False))
def test_trim_and_fill_with_no_missing_studies_is_the_plain_fit(k, rnd):
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    yi = rng.normal(size=k)
    vi = rng.uniform(0.05, 1.0, size=k)
    # on some draws REML's Fisher scoring does not converge and the documented bracketing
    # fallback answers instead, and on some the SE of k0 does not exist (se_k0 NaN), each with
    # its RuntimeWarning; any other warning (numpy's, say) fails the test
    documented = ("bracketing root search", "standard error of k0 is undefined")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = ma.trim_and_fill(yi, vi)
        plain = ma.random_effects(yi, vi)
    assert all(w.category is RuntimeWarning and any(d in str(w.message) for d in documented)
               for w in caught), [str(w.message) for w in caught]
    assert np.isnan(res.se_k0) == any(documented[1] in str(w.message) for w in caught)
    if res.k0 == 0:
        assert res.estimate == plain.estimate and res.tau2 == plain.tau2
        assert res.filled.empty
    else:
        # the filled effects are mirror images of observed ones about a common centre
        assert res.yi_all.size == k + res.k0
        assert set(np.round(res.filled["vi"], 12)) <= set(np.round(vi, 12))


def test_trim_and_fill_of_symmetric_funnel_fills_nothing():
    yi = np.array([-0.4, -0.2, 0.0, 0.2, 0.4])
    vi = np.array([0.2, 0.1, 0.05, 0.1, 0.2])
    res = ma.trim_and_fill(yi, vi)
    assert res.k0 == 0 and res.estimate == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimator": "X0"}, "estimator"),
        ({"side": "up"}, "side"),
    ],
    ids=["bad-estimator", "bad-side"],
)
def test_trim_and_fill_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.trim_and_fill(*data("bcg"), **kwargs)


# ---------------------------------------------------------------- PET-PEESE


@pytest.mark.parametrize("name", DATASETS)
def test_pet_peese_matches_lm(name):
    ref = REF["bias"][name]["pet_peese"]
    res = ma.pet_peese(*data(name))
    for field, want in ref.items():
        if field == "chosen":
            assert res.chosen == want
        else:
            close(getattr(res, field), want)
    chosen = res.chosen.lower()
    assert res.estimate == getattr(res, f"{chosen}_estimate")
    assert (res.ci_low, res.ci_high) == (
        getattr(res, f"{chosen}_ci_low"),
        getattr(res, f"{chosen}_ci_high"),
    )


def test_pet_peese_direction_of_the_one_sided_test():
    yi, vi = data("egger")  # PET intercept > 0, one-sided p < .05
    assert ma.pet_peese(yi, vi).chosen == "PEESE"
    assert ma.pet_peese(yi, vi, alternative="less").chosen == "PET"
    assert ma.pet_peese(-yi, vi, alternative="less").chosen == "PEESE"


def test_pet_peese_summary_and_frame():
    res = ma.pet_peese(*data("egger"))
    assert "-> PEESE" in res.summary()
    frame = res.to_frame()
    assert list(frame["model"]) == ["PET", "PEESE"]
    assert list(frame["chosen"]) == [False, True]


# ---------------------------------------------------------------- bad input

EVERY_TEST = pytest.mark.parametrize(
    "func",
    [ma.egger_test, ma.rank_test, ma.trim_and_fill, ma.pet_peese],
    ids=["egger", "rank", "trimfill", "petpeese"],
)


@EVERY_TEST
def test_too_few_studies(func):
    with pytest.raises(ValueError, match="at least 3"):
        func([0.1, 0.2], [0.01, 0.02])


@EVERY_TEST
def test_negative_variance_is_rejected(func):
    with pytest.raises(ValueError, match="vi must be positive"):
        func([0.1, 0.2, 0.3], [0.01, -0.02, 0.03])


CREEP = json.loads((Path(__file__).parent / "reference" / "trimfill_creep.json").read_text())


@pytest.mark.parametrize("case", sorted(CREEP["fits"]))
def test_trim_and_fill_over_many_rounds_equals_metafor(case):
    """Publication-biased data on which metafor's trimfill needs many trim-and-refit rounds
    (tests/reference/trimfill_creep.R); each refit here starts τ² from the previous round's,
    which must not change where the rounds end."""
    ref = CREEP["fits"][case]
    # the L0 reference runs do exercise the multi-round path (R0 stops after one round)
    assert ref["rounds"] >= 5 or ref["estimator"] == "R0"
    tf = ma.trim_and_fill(np.array(CREEP["yi"]), np.array(CREEP["vi"]),
                          estimator=ref["estimator"], method=ref["method"], maxiter=1000)
    assert (tf.k0, tf.side) == (ref["k0"], ref["side"])
    assert tf.estimate == pytest.approx(ref["estimate"], rel=1e-9)
    assert tf.se == pytest.approx(ref["se"], rel=1e-8)
    assert tf.tau2 == pytest.approx(ref["tau2"], rel=1e-7)


def test_trim_and_fill_without_an_se_of_k0_says_so_as_metafor():
    """L0 far below 0: Duval & Tweedie's variance is negative; metafor gives se.k0 NaN
    (tests/reference/trimfill_se.R).  Here too NaN, with a warning naming it, and no numpy
    warning (it used to be a silent 0)."""
    ref = json.loads((Path(__file__).parent / "reference" / "trimfill_se.json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = ma.trim_and_fill(np.array(ref["yi"]), np.array(ref["vi"]))
    assert [str(w.message) for w in caught] == [
        "the standard error of k0 is undefined for these data: Duval & Tweedie's variance of "
        "the L0 statistic is negative here; se_k0 is NaN"]
    assert ref["se_k0_is_nan"] and np.isnan(res.se_k0)
    assert (res.k0, res.side) == (ref["k0"], ref["side"])
    assert res.estimate == pytest.approx(ref["estimate"], rel=1e-9)
    assert "SE = NA" in res.summary()
