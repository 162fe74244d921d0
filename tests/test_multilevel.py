"""metaally.models.multilevel: the CHE working model beyond the metafor examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multilevel_cases import REFERENCE, clustered_effects, fit

import metaally as ma

ONE = REFERENCE["one_per_study"]


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_one_effect_per_study_is_rma_reml(rho):
    """Every study one effect: sigma2_study + sigma2_within is metafor's rma REML tau^2."""
    m = ma.multilevel(ONE["yi"], ONE["vi"], np.arange(len(ONE["yi"])), rho=rho)
    np.testing.assert_allclose(m.estimate, ONE["estimate"], rtol=1e-6)
    np.testing.assert_allclose(m.se, ONE["se"], rtol=1e-6)
    np.testing.assert_allclose(m.sigma2_study + m.sigma2_within, ONE["tau2"], rtol=1e-6)


def test_one_effect_per_study_equals_random_effects():
    study = [f"s{i}" for i in range(len(ONE["yi"]))]
    m = ma.multilevel(ONE["yi"], ONE["vi"], study, rho=0.0)
    re = ma.random_effects(ONE["yi"], ONE["vi"], method="REML")
    np.testing.assert_allclose(m.estimate, re.estimate, rtol=1e-6)
    np.testing.assert_allclose(m.se, re.se, rtol=1e-6)
    np.testing.assert_allclose(m.sigma2_study + m.sigma2_within, re.tau2, rtol=1e-6)


def test_string_labels_and_default_es_id():
    data = REFERENCE["data"]["assink2016"]
    case = next(c for c in REFERENCE["cases"] if c["id"] == "assink2016-rho0.6-intercept-REML")
    labels = [f"study {s}" for s in data["cluster"]]
    m = ma.multilevel(data["yi"], data["vi"], labels, rho=0.6)
    np.testing.assert_allclose([m.estimate, m.sigma2_study, m.sigma2_within],
                               [case["estimate"], case["sigma2_study"], case["sigma2_within"]],
                               rtol=1e-5)
    assert m.es_id[:7].tolist() == [1, 2, 3, 4, 5, 6, 1]


def test_no_heterogeneity_gives_zero_components():
    y = np.full(12, 0.3)
    m = ma.multilevel(y, np.full(12, 0.05), np.repeat(np.arange(4), 3), rho=0.5)
    assert (m.sigma2_study, m.sigma2_within) == (0.0, 0.0)
    np.testing.assert_allclose(m.estimate, 0.3)


def test_missing_rows_are_dropped_with_a_warning():
    data = REFERENCE["data"]["konstantopoulos2011"]
    yi = np.array(data["yi"], dtype=float)
    yi[[0, 10]] = np.nan
    with pytest.warns(UserWarning, match="2 of 56 rows"):
        m = ma.multilevel(yi, data["vi"], data["cluster"], data["es_id"])
    keep = ~np.isnan(yi)
    expected = ma.multilevel(yi[keep], np.asarray(data["vi"])[keep],
                             np.asarray(data["cluster"])[keep], np.asarray(data["es_id"])[keep])
    assert m.k == 54
    np.testing.assert_allclose(m.estimate, expected.estimate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "DL"}, "method must be"),
        ({"rho": 1.5}, "rho must be"),
        ({"level": 95}, "level must be"),
        ({"es_id": [1, 1, 2, 1]}, "es_id must identify"),
        ({"mods": np.eye(4)[:, :3]}, "coefficients but only"),
    ],
)
def test_bad_input_raises(kwargs, message):
    args = {"yi": [0.1, 0.2, 0.3, 0.4], "vi": [0.1] * 4, "study": [1, 1, 2, 2]}
    with pytest.raises(ValueError, match=message):
        ma.multilevel(**(args | kwargs))


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="same length"):
        ma.multilevel([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], [1, 2])


def test_summary_and_frame():
    case = next(c for c in REFERENCE["cases"] if c["id"] == "assink2016-rho0.6-mods-REML")
    m = fit(case)
    text = m.summary()
    for part in ["CHE working model", "k = 100", "studies = 17", "method: REML",
                 "Variance Components", "sigma^2.study", "study/es_id", "QE(df = 97)",
                 "QM(df = 2)", "modgeneral"]:
        assert part in text
    frame = m.to_frame()
    assert list(frame.columns)[:10] == ["term", "estimate", "se", "stat", "df", "pvalue",
                                        "ci_low", "ci_high", "k", "n_clusters"]
    assert (frame["k"] == 100).all() and (frame["n_clusters"] == 17).all()
    assert frame["term"].tolist() == ["intrcpt", "modgeneral", "modovert"]
    assert str(m) == text and "<pre>" in m._repr_html_()


@st.composite
def clustered_data(draw):
    yi, vi, study, rng = draw(clustered_effects(min_studies=4, max_studies=8, max_size=4))
    return yi, vi, study, rng.normal(size=yi.size), rng


def _key(m):
    return np.array([*m.coef["estimate"], *m.coef["se"], m.sigma2_study, m.sigma2_within,
                     m.loglik])


@settings(max_examples=50, deadline=None)
@given(clustered_data(), st.sampled_from([0.0, 0.6]))
def test_invariant_to_row_order(data, rho):
    yi, vi, study, x, rng = data
    perm = rng.permutation(len(yi))
    a = ma.multilevel(yi, vi, study, rho=rho, mods=x)
    b = ma.multilevel(yi[perm], vi[perm], study[perm], rho=rho, mods=x[perm])
    np.testing.assert_allclose(_key(a), _key(b), rtol=1e-6, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(clustered_data())
def test_invariant_to_relabelling_studies(data):
    yi, vi, study, x, rng = data
    new_names = np.array([f"s{i}" for i in rng.permutation(study.max() + 1)], dtype=object)
    a = ma.multilevel(yi, vi, study, mods=pd.Series(x, name="x"))
    b = ma.multilevel(yi, vi, new_names[study], mods=pd.Series(x, name="x"))
    np.testing.assert_allclose(_key(a), _key(b), rtol=1e-6, atol=1e-9)
    assert b.coef_names == ("intrcpt", "x")
