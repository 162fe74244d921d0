"""random_effects: metafor conventions, input handling, result objects, cross-checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects
from univariate_cases import REFERENCE, assert_fit_matches, case_id

import metaally as ma
from metaally.models.tau2 import estimate_tau2

BCG = REFERENCE["data"]["bcg"]
YI, VI, ABLAT = (np.asarray(BCG[key], dtype=float) for key in ("yi", "vi", "mod"))


@pytest.mark.parametrize("case", REFERENCE["extra"], ids=[case_id(c) for c in REFERENCE["extra"]])
def test_metafor_conventions(case):
    """No-intercept models (tau^2 and QE from centred yi) and a fixed tau^2, as metafor."""
    if case["model"] == "fixed_tau2":
        res = ma.random_effects(YI, VI, test=case["test"], tau2=case["fixed_tau2"])
        assert res.tau2_fixed and "tau^2 estimator: fixed" in res.summary()
        assert_fit_matches(case, res)
    else:
        assert_fit_matches(case)


@pytest.mark.parametrize("method", ["DL", "PM"])
def test_statsmodels_combine_effects_agrees(method):
    sm = combine_effects(YI, VI, method_re={"DL": "dl", "PM": "pm"}[method])
    res = ma.random_effects(YI, VI, method=method)
    assert res.tau2 == pytest.approx(sm.tau2, rel=1e-6)
    assert res.estimate == pytest.approx(sm.mean_effect_re, rel=1e-6)
    assert res.se == pytest.approx(sm.sd_eff_w_re, rel=1e-6)
    assert res.q == pytest.approx(sm.q, rel=1e-10)


def test_eb_equals_pm():
    for mods in (None, ABLAT):
        pm = ma.random_effects(YI, VI, method="PM", mods=mods)
        eb = ma.random_effects(YI, VI, method="EB", mods=mods)
        assert eb.tau2 == pm.tau2 and eb.estimate == pm.estimate


def test_missing_rows_are_dropped_with_a_warning():
    yi, vi, mods = YI.copy(), VI.copy(), ABLAT.copy()
    yi[2], mods[5] = np.nan, np.nan
    with pytest.warns(UserWarning, match="2 of 13 rows"):
        res = ma.random_effects(yi, vi, mods=mods)
    keep = np.ones(13, dtype=bool)
    keep[[2, 5]] = False
    full = ma.random_effects(YI[keep], VI[keep], mods=ABLAT[keep])
    assert res.k == 11 and res.tau2 == pytest.approx(full.tau2, rel=1e-12)
    assert res.slab[2] == "Study 4"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vi": [0.1, 0.0, 0.2]}, "positive finite"),
        ({"yi": [0.1, np.inf, 0.3]}, "finite"),
        ({"vi": [0.1, 0.2]}, "same length"),
        ({"method": "XX"}, "method must be one of"),
        ({"test": "t"}, "test must be one of"),
        ({"level": 0}, "level"),
        ({"tau2": -1.0}, "tau2"),
        ({"mods": [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]]}, "coefficient"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    args = {"yi": [0.1, 0.2, 0.3], "vi": [0.1, 0.2, 0.3], **kwargs}
    with pytest.raises(ValueError, match=message):
        ma.random_effects(**args)


@pytest.mark.parametrize("test", ["z", "knha", "adhoc"])
def test_one_study_is_the_study_itself(test):
    res = ma.random_effects([0.4], [0.04], test=test)
    assert res.k == 1 and res.tau2 == 0
    assert res.estimate == 0.4 and res.se == pytest.approx(0.2)
    assert res.ci_low == pytest.approx(0.4 - 1.959963984540054 * 0.2)
    assert np.isnan(res.q) and np.isnan(res.i2) and np.isnan(res.h2)
    assert "Random-Effects Model (k = 1" in res.summary()


def test_result_object():
    res = ma.random_effects(YI, VI, test="knha", slab=[f"trial {i}" for i in range(13)])
    with pytest.raises(AttributeError):
        res.tau2 = 0.0  # frozen
    assert res.tau == pytest.approx(np.sqrt(res.tau2))
    assert res.weights.sum() == pytest.approx(100)
    assert res.df == 12 and (res.qm_df1, res.qm_df2) == (1, 12)
    assert not res.fallback and res.slab[0] == "trial 0"
    text = res.summary()
    assert text.startswith("Random-Effects Model (k = 13; tau^2 estimator: REML)")
    for part in ("tau^2", "I^2", "H^2", "Q(df = 12) = 152.2330, p-val < .0001", "tval", "ci.lb"):
        assert part in text
    assert str(res) == text and res._repr_html_().startswith("<pre>")
    frame = res.to_frame()
    assert frame.shape[0] == 1 and frame.loc[0, "estimate"] == res.estimate
    low, high = res.tau2_ci()
    assert low < res.tau2 < high


def test_meta_regression_result():
    mods = pd.DataFrame({"ablat": ABLAT, "year": np.arange(13.0)})
    res = ma.random_effects(YI, VI, mods=mods, test="knha")
    assert res.coef_names == ("intrcpt", "ablat", "year")
    assert list(res.coef.index) == ["intrcpt", "ablat", "year"]
    assert res.estimate == res.coef.loc["intrcpt", "estimate"]
    assert (res.qm_df1, res.qm_df2) == (2, 10) and np.isnan(res.pi_low)
    assert res.to_frame().shape[0] == 3
    assert "Test of Moderators: F(df1 = 2, df2 = 10)" in res.summary()
    pred = res.predict([[40.0, 5.0], [10.0, 1.0]])
    expected = res.coef["estimate"].to_numpy() @ np.array([[1, 40.0, 5.0], [1, 10.0, 1.0]]).T
    np.testing.assert_allclose(pred["pred"], expected)
    assert (pred["pi_low"] < pred["ci_low"]).all()


def test_predict_without_mods_matches_fields():
    res = ma.random_effects(YI, VI)
    pred = res.predict()
    assert pred.loc[0, "pi_low"] == pytest.approx(res.pi_low)
    assert pred.loc[0, "ci_high"] == pytest.approx(res.ci_high)


def test_tau2_ci_needs_an_estimated_tau2():
    with pytest.raises(ValueError):
        ma.random_effects(YI, VI, method="FE").tau2_ci()
    with pytest.raises(ValueError):
        ma.random_effects(YI, VI, tau2=0.1).tau2_ci()


def test_fe_summary_and_i2():
    res = ma.random_effects(YI, VI, method="FE")
    assert res.summary().startswith("Fixed-Effects Model (k = 13)")
    assert res.i2 == pytest.approx(100 * (res.q - 12) / res.q)


def _oscillating_case():
    """A simulated k = 10 data set on which Fisher scoring for REML oscillates (metafor stops
    there with "did not converge"; about 1 in 100 of these draws)."""
    rng = np.random.default_rng(1)
    for _ in range(5000):
        v = rng.uniform(0.01, 0.5, 10)
        y = rng.normal(0, np.sqrt(v + 0.1))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = estimate_tau2(y, v, np.ones((10, 1)), "REML")
        if est.fallback:
            return y, v, caught
    raise AssertionError("no oscillating data set found")


def test_fallback_warns_and_solves_the_score_equation():
    y, v, caught = _oscillating_case()
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)
    with pytest.warns(RuntimeWarning, match="bracketing"):
        res = ma.random_effects(y, v)
    assert res.fallback and "fallback" in res.summary()
    w = 1 / (v + res.tau2)
    mu = np.sum(w * y) / w.sum()
    # REML score: sum w^2 (y - mu)^2 = tr P = sum w - sum w^2 / sum w
    assert np.sum(w**2 * (y - mu) ** 2) == pytest.approx(w.sum() - np.sum(w**2) / w.sum(), rel=1e-9)


def test_no_warning_on_ordinary_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("ML", "REML", "PM", "EB"):
            assert not ma.random_effects(YI, VI, method=method, mods=ABLAT).fallback


def test_estimate_tau2_single_and_batch():
    single = estimate_tau2(YI, VI, np.ones((13, 1)), "DL")
    assert isinstance(single.tau2, float) and single.fallback is False
    batch = estimate_tau2(np.vstack([YI, YI]), np.vstack([VI, VI]), np.ones((13, 1)), "DL")
    assert batch.tau2.shape == (2,) and batch.tau2[1] == single.tau2
