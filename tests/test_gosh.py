"""GOSH (``ma.gosh``) against metafor's ``gosh()`` on dat.bcg and against single fits.

Reference: tests/reference/scale.R → scale.json (metafor 3.8, all 8191 subsets of the
13 BCG trials, log risk ratios; FE, DL, REML with Fisher scoring run to convergence).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma
from metaally.diagnostics.subsets import GoshResult, all_subsets, random_subsets

REF = json.loads((Path(__file__).parent / "reference" / "scale.json").read_text())
YI, VI = np.array(REF["yi"]), np.array(REF["vi"])
METHODS = ["FE", "DL", "REML"]
QUANTITIES = {"k": "size", "QE": "q", "I2": "i2", "H2": "h2", "tau2": "tau2",
              "estimate": "estimate"}


@pytest.fixture(scope="module")
def fits() -> dict[str, GoshResult]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # REML fallbacks, tested below
        return {m: ma.gosh(YI, VI, method=m) for m in METHODS}


def _failed_rows(res: GoshResult, method: str) -> np.ndarray:
    """Rows of the subsets metafor could not fit (its REML did not converge)."""
    bad = np.zeros(res.n_subsets, dtype=bool)
    for studies in REF["gosh"][method]["failed"].values():
        target = np.isin(np.arange(res.k), np.atleast_1d(studies) - 1)
        bad |= (res.incl == target).all(axis=1)
    return bad


def test_reference_grid_is_complete():
    assert sorted(REF["gosh"]) == sorted(METHODS)
    for method in METHODS:
        case = REF["gosh"][method]
        assert case["n_subsets"] == 2**13 - 1
        assert len(case["subsets"]) > 90
        assert set(case["summary"]) == set(QUANTITIES)
        assert len(case["slow_subsets"]) == 5


@pytest.mark.parametrize("method", METHODS)
def test_subsets_are_all_subsets_in_metafor_order(fits, method):
    res = fits[method]
    assert res.exact and res.n_subsets == REF["gosh"][method]["n_subsets"]
    for sub in REF["gosh"][method]["subsets"]:
        expected = (np.atleast_1d(sub["studies"]) - 1).tolist()
        assert np.flatnonzero(res.incl[sub["row"] - 1]).tolist() == expected


@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
@pytest.mark.parametrize("method", METHODS)
def test_subset_fits_match_metafor(fits, method, quantity):
    _compare_subsets(fits[method], REF["gosh"][method]["subsets"], quantity)


def _compare_subsets(res: GoshResult, picked: list[dict], quantity: str) -> None:
    picked = [s for s in picked if s[quantity] is not None]
    ours = np.array([getattr(res, QUANTITIES[quantity])[s["row"] - 1] for s in picked])
    theirs = np.array([s[quantity] for s in picked], dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
@pytest.mark.parametrize("method", METHODS)
def test_slow_subsets_match_metafor(fits, method, quantity):
    _compare_subsets(fits[method], REF["gosh"][method]["slow_subsets"], quantity)


@pytest.mark.parametrize("studies", [[1, 3, 5, 13], [2, 7, 10, 12], [2, 5, 9, 11, 12]],
                         ids=["1-3-5-13", "2-7-10-12", "2-5-9-11-12"])
def test_single_reml_fit_takes_the_global_maximum(studies):
    ref = next(s for s in REF["gosh"]["REML"]["slow_subsets"]
               if np.atleast_1d(s["studies"]).tolist() == studies)
    rows = np.array(studies) - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        single = ma.random_effects(YI[rows], VI[rows], method="REML")
    np.testing.assert_allclose([single.tau2, single.estimate], [ref["tau2"], ref["estimate"]],
                               rtol=1e-6)


@pytest.mark.parametrize("quantity", sorted(QUANTITIES))
@pytest.mark.parametrize("method", METHODS)
def test_summary_statistics_match_metafor(fits, method, quantity):
    res = fits[method]
    x = getattr(res, QUANTITIES[quantity])[~_failed_rows(res, method)].astype(float)
    ref = REF["gosh"][method]["summary"][quantity]
    ours = [x.mean(), x.std(ddof=1), x.min(), x.max(),
            *np.quantile(x, [0.1, 0.25, 0.5, 0.75, 0.9])]
    theirs = [ref["mean"], ref["sd"], ref["min"], ref["max"], *ref["quantiles"]]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_fallback_subsets_equal_single_fits(fits):
    res = fits["REML"]
    assert np.all(np.isfinite(res.tau2))
    for row in np.flatnonzero(res.fallback):
        with pytest.warns(RuntimeWarning, match="did not converge"):
            single = ma.random_effects(YI[res.incl[row]], VI[res.incl[row]], method="REML")
        assert single.fallback
        np.testing.assert_allclose([res.tau2[row], res.estimate[row]],
                                   [single.tau2, single.estimate], rtol=1e-9)


def test_fallback_warns_once():
    with pytest.warns(RuntimeWarning, match="subsets") as caught:
        res = ma.gosh(YI, VI, method="REML")
    if not res.fallback.any():
        pytest.skip("no subset needed the fallback")
    assert len([w for w in caught if "did not converge" in str(w.message)]) == 1


def test_one_study_subsets_take_metafor_values(fits):
    for res in fits.values():
        single = res.size == 1
        assert single.sum() == 13
        assert np.all(res.q[single] == 0) and np.all(res.i2[single] == 0)
        assert np.all(res.h2[single] == 1) and np.all(res.tau2[single] == 0)
        np.testing.assert_allclose(res.estimate[single], YI[np.argmax(res.incl[single], axis=1)])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    k=st.integers(2, 7),
    method=st.sampled_from(["FE", "DL", "HE", "PM", "ML", "REML"]),
)
def test_every_subset_equals_a_single_random_effects_fit(data, k, method):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y = rng.normal(0.3, 0.4, k)
    v = rng.uniform(0.01, 0.3, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = ma.gosh(y, v, method=method)
        row = data.draw(st.integers(0, res.n_subsets - 1))
        sub = res.incl[row]
        if sub.sum() < 2:
            return
        single = ma.random_effects(y[sub], v[sub], method=method)
    assert res.size[row] == single.k
    h2 = single.q / (single.k - 1) if method == "DL" else single.h2
    np.testing.assert_allclose(
        [res.estimate[row], res.tau2[row], res.q[row], res.i2[row], res.h2[row]],
        [single.estimate, single.tau2, single.q, single.i2, h2],
        rtol=1e-9, atol=1e-12,
    )


def test_all_subsets_order_is_metafors():
    # expand.grid order (study 1 fastest), then sorted by size
    expected = [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]
    assert [np.flatnonzero(r).tolist() for r in all_subsets(3)] == expected


def test_exact_when_subsets_allows_all():
    y, v = YI[:5], VI[:5]
    assert ma.gosh(y, v, subsets=31).exact
    res = ma.gosh(y, v, subsets=30, seed=1)
    assert not res.exact and res.n_subsets == 30


def test_random_subsets_are_uniform_over_non_empty_subsets():
    rng = np.random.default_rng(7)
    incl = random_subsets(10, 40_000, rng)
    assert incl.any(axis=1).all()
    assert np.all(np.diff(incl.sum(axis=1)) >= 0)          # ordered by size
    np.testing.assert_allclose(incl.mean(axis=0), 0.5 * 1024 / 1023, atol=0.01)
    sizes = np.bincount(incl.sum(axis=1), minlength=11)[1:] / incl.shape[0]
    from scipy.special import comb
    np.testing.assert_allclose(sizes, comb(10, np.arange(1, 11)) / 1023, atol=0.01)


def test_large_k_samples_a_million_by_default_and_is_seeded():
    y = np.linspace(-0.5, 0.5, 21)
    v = np.full(21, 0.05)
    a = ma.gosh(y, v, subsets=2000, seed=3)
    b = ma.gosh(y, v, subsets=2000, seed=3)
    assert not a.exact and a.n_subsets == 2000
    np.testing.assert_array_equal(a.incl, b.incl)
    np.testing.assert_array_equal(a.estimate, b.estimate)


def test_chunking_does_not_change_results(monkeypatch, fits):
    monkeypatch.setattr(sys.modules["metaally.models.progress"], "CHUNK_ELEMENTS", 13 * 100)
    res = ma.gosh(YI, VI, method="DL")
    np.testing.assert_array_equal(res.estimate, fits["DL"].estimate)
    np.testing.assert_array_equal(res.h2, fits["DL"].h2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"subsets": 1}, "subsets must be at least 2"),
        ({"method": "XX"}, "method must be one of"),
    ],
    ids=["subsets-too-small", "unknown-method"],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.gosh(YI, VI, **kwargs)


def test_needs_two_studies():
    with pytest.raises(ValueError, match="at least two studies"):
        ma.gosh([0.1], [0.01])


def test_to_frame_and_summary(fits):
    res = fits["DL"]
    frame = res.to_frame()
    assert list(frame.columns) == ["k", "q", "i2", "h2", "tau2", "estimate", "fallback"]
    assert len(frame) == 8191
    wide = res.to_frame(studies=True)
    assert wide.shape == (8191, 7 + 13) and wide["Study 1"].dtype == bool
    text = res.summary()
    assert "GOSH diagnostics (k = 13; tau^2 estimator: DL)" in text
    assert "8191 (all possible subsets)" in text
    # metafor's print.gosh.rma: mean of I2 over all subsets
    assert f"{REF['gosh']['DL']['summary']['I2']['mean']:.4f}" in text
    assert "tau2" not in fits["FE"].summary()


def test_gosh_plot_draws_scatter_hexbin_and_out(fits):
    from matplotlib.figure import Figure

    fig = ma.gosh_plot(fits["REML"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    fig = ma.gosh_plot(fits["FE"], kind="hexbin", het="h2")
    assert fig.axes[0].get_ylabel() == "H²"
    fig = ma.gosh_plot(fits["DL"], out="Study 6")
    assert len(fig.axes[0].collections) >= 2
    import matplotlib.pyplot as plt

    fig2, ax = plt.subplots()
    assert ma.gosh_plot(fits["DL"], ax=ax, out=5) is fig2
    plt.close("all")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"het": "tau2"}, "no tau\\^2"), ({"het": "xx"}, "het must be"),
     ({"kind": "pie"}, "kind must be"), ({"out": 13}, "out must be"),
     ({"out": "Nobody"}, "no study labelled")],
    ids=["tau2-under-FE", "unknown-het", "unknown-kind", "out-of-range", "unknown-label"],
)
def test_gosh_plot_bad_arguments(fits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.gosh_plot(fits["FE"], **kwargs)


def test_gosh_gives_identical_results_in_local_processes() -> None:
    rng = np.random.default_rng(21)
    y, v = rng.normal(0.3, 0.3, 9), rng.uniform(0.02, 0.1, 9)
    here = ma.gosh(y, v, method="REML")
    spread = ma.gosh(y, v, method="REML", workers=2)
    for name in ("estimate", "tau2", "q", "i2", "h2"):
        np.testing.assert_array_equal(getattr(here, name), getattr(spread, name))
    np.testing.assert_array_equal(here.incl, spread.incl)
