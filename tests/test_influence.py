"""Leave-one-out, influence and cumulative meta-analysis against metafor 3.8.

Reference values: tests/reference/diagnostics.json, written by
tests/reference/diagnostics.R (leave1out, influence, cumul on dat.bcg,
dat.hackshaw1998 and dat.egger2001 with REML/DL/FE and z/knha tests, influence of
a meta-regression on absolute latitude; the CHE model on dat.assink2016 refitted
by study in R).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma

REF = json.loads((Path(__file__).parent / "reference" / "diagnostics.json").read_text())
FITS = [
    "bcg_REML_z",
    "hackshaw_REML_z",
    "egger_REML_z",
    "bcg_DL_knha",
    "hackshaw_FE_z",
    "bcg_REML_z_ablat",
]
INTERCEPT_ONLY = [f for f in FITS if not f.endswith("ablat")]
INFLUENCE_COLUMNS = ["rstudent", "dffits", "cooks", "cov_ratio", "tau2_del", "q_del", "hat",
                     "weight"]
LEAVE1OUT_COLUMNS = ["estimate", "se", "stat", "pvalue", "ci_low", "ci_high", "q", "q_pvalue",
                     "tau2", "i2", "h2"]
CUMUL_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "pvalue", "tau2", "i2"]
# with one study there is no heterogeneity information: metaally reports NaN, metafor 0
UNDEFINED_AT_K1 = {"i2"}
RTOL = 1e-6


@cache
def fitted(fit_id: str) -> ma.RandomEffectsResult:
    spec = REF["fits"][fit_id]
    d = REF["datasets"][spec["data"]]
    mods = np.array(d["ablat"], dtype=float) if spec.get("mods") else None
    return ma.random_effects(d["yi"], d["vi"], method=spec["method"], test=spec["test"], mods=mods)


@cache
def diagnostics(fit_id: str, what: str) -> pd.DataFrame:
    """influence / leave_one_out / cumulative (by year) of a reference fit, computed once."""
    res = fitted(fit_id)
    if what == "influence":
        return ma.influence(res)
    if what == "leave1out":
        return ma.leave_one_out(res)
    return ma.cumulative(res, order=REF["fits"][fit_id]["cumul"]["order"])


def assert_column(got, want, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=rtol, atol=1e-10)


def params(fit_ids, columns):
    return [pytest.param(f, c, id=f"{f}-{c}") for f in fit_ids for c in columns]


def test_reference_grid_is_complete():
    assert sorted(REF["fits"]) == sorted(FITS)
    for fit_id in FITS:
        entry = REF["fits"][fit_id]
        assert set(INFLUENCE_COLUMNS) <= set(entry["influence"])
        if fit_id in INTERCEPT_ONLY:
            assert set(entry["leave1out"]) == set(LEAVE1OUT_COLUMNS)
            assert set(entry["cumul"]) == set(CUMUL_COLUMNS) | {"order", "added"}
    ml = REF["multilevel"]
    assert set(ml["leave1out"]) >= {"omitted", "estimate", "sigma2_study", "sigma2_within"}
    assert set(ml["cumul"]) >= {"added", "estimate", "sigma2_study", "sigma2_within"}


def test_models_match_metafor():
    for fit_id in FITS:
        res, ref = fitted(fit_id), REF["fits"][fit_id]
        assert_column(res.coef["estimate"], ref["estimate"])
        assert_column(res.tau2, ref["tau2"])


# ---------------------------------------------------------------- influence


@pytest.mark.parametrize(("fit_id", "column"), params(FITS, INFLUENCE_COLUMNS))
def test_influence_matches_metafor(fit_id, column):
    got = diagnostics(fit_id, "influence")
    assert_column(got[column], REF["fits"][fit_id]["influence"][column])


@pytest.mark.parametrize("fit_id", FITS)
def test_influence_dfbetas_and_flags_match_metafor(fit_id):
    res = fitted(fit_id)
    ref = REF["fits"][fit_id]["influence"]
    got = ma.influence(res)
    names = ["dfbetas"] if res.p == 1 else [f"dfbetas_{n}" for n in res.coef_names]
    for name, want in zip(names, ref["dfbetas"].values(), strict=True):
        assert_column(got[name], want)
    assert list(got["influential"]) == ref["influential"]
    assert list(got["study"]) == list(res.slab)


def test_influence_flags_an_outlier():
    yi = np.array([0.1, 0.15, 0.2, 0.12, 0.18, 2.5])
    vi = np.full(6, 0.01)
    flags = ma.influence(ma.random_effects(yi, vi))["influential"]
    assert list(flags) == [False] * 5 + [True]


def test_influence_rejects_what_is_not_a_fitted_model():
    with pytest.raises(ValueError, match="needs a fitted model result"):
        ma.influence(pd.DataFrame({"yi": [0.1, 0.2], "vi": [0.1, 0.1]}))


# ---------------------------------------------------------------- leave one out


@pytest.mark.parametrize(("fit_id", "column"), params(INTERCEPT_ONLY, LEAVE1OUT_COLUMNS))
def test_leave_one_out_matches_metafor(fit_id, column):
    want = REF["fits"][fit_id]["leave1out"][column]
    got = diagnostics(fit_id, "leave1out")
    if not want:  # metafor drops tau2 for FE models; ours is 0
        assert (got[column] == 0).all()
        return
    assert_column(got[column], want)


def test_leave_one_out_labels_the_omitted_study():
    res = ma.random_effects([0.1, 0.3, 0.2, 0.5], [0.01, 0.02, 0.03, 0.04], slab=list("abcd"))
    frame = ma.leave_one_out(res)
    assert list(frame["omitted"]) == list("abcd")
    np.testing.assert_allclose(
        frame.loc[1, "estimate"], ma.random_effects([0.1, 0.2, 0.5], [0.01, 0.03, 0.04]).estimate
    )


def test_leave_one_out_needs_an_intercept_only_model():
    with pytest.raises(ValueError, match="without moderators"):
        ma.leave_one_out(fitted("bcg_REML_z_ablat"))


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=3, max_value=10), st.randoms(use_true_random=False))
def test_leave_one_out_rows_are_fits_without_that_study(k, rnd):
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    yi, vi = rng.normal(size=k), rng.uniform(0.05, 0.5, size=k)
    frame = ma.leave_one_out(ma.random_effects(yi, vi, method="DL"))
    assert len(frame) == k
    i = int(rng.integers(k))
    direct = ma.random_effects(np.delete(yi, i), np.delete(vi, i), method="DL")
    assert frame.loc[i, "estimate"] == pytest.approx(direct.estimate, rel=1e-12, abs=1e-14)


# ---------------------------------------------------------------- cumulative


@pytest.mark.parametrize(("fit_id", "column"), params(INTERCEPT_ONLY, CUMUL_COLUMNS))
def test_cumulative_matches_metafor(fit_id, column):
    ref = REF["fits"][fit_id]["cumul"]
    want = np.asarray(ref[column], dtype=float)
    got = diagnostics(fit_id, "cumul")
    assert list(got["added"]) == [f"Study {i}" for i in ref["added"]]
    if want.size == 0:  # metafor drops tau2 for FE models; ours is 0
        assert (got[column] == 0).all()
        return
    if column in UNDEFINED_AT_K1:
        assert np.isnan(got[column].iloc[0])
        got, want = got[column].iloc[1:], want[1:]
    else:
        got = got[column]
    assert_column(got, want)


def test_cumulative_last_row_is_the_full_fit_and_default_order_is_input_order():
    res = fitted("egger_REML_z")
    frame = ma.cumulative(res)
    assert list(frame["k"]) == list(range(1, res.k + 1))
    assert list(frame["added"]) == list(res.slab)
    assert frame["estimate"].iloc[-1] == pytest.approx(res.estimate, rel=1e-12)


def test_cumulative_order_is_a_stable_sort_of_keys():
    res = ma.random_effects([0.1, 0.3, 0.2, 0.5], [0.01, 0.02, 0.03, 0.04], slab=list("abcd"))
    frame = ma.cumulative(res, order=pd.Series([2001, 1999, 2001, 1999]))
    assert list(frame["added"]) == ["b", "d", "a", "c"]


def test_cumulative_rejects_wrong_length_order():
    with pytest.raises(ValueError, match="one sort key per effect size"):
        ma.cumulative(fitted("bcg_REML_z"), order=[1, 2, 3])


# ---------------------------------------------------------------- multilevel (CHE) refits


@cache
def multilevel_fit() -> ma.MultilevelResult:
    ml = REF["multilevel"]
    d = ml["data"]
    return ma.multilevel(d["yi"], d["vi"], d["study"], es_id=d["esid"], rho=ml["rho"])


ML_COLUMNS = ["estimate", "se", "stat", "pvalue", "ci_low", "ci_high", "sigma2_study",
              "sigma2_within"]


@cache
def multilevel_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leave-one-out, cumulative by year) of the CHE fit, computed once.  The first
    cumulative step holds one study, which rma.mv fits with a single-level warning."""
    fit = multilevel_fit()
    with pytest.warns(UserWarning, match="Single-level factor"):
        cumul = ma.cumulative(fit, order=REF["multilevel"]["data"]["year"])
    return ma.leave_one_out(fit), cumul


@pytest.mark.parametrize("column", ML_COLUMNS)
def test_multilevel_leave_one_out_matches_rma_mv(column):
    ref = REF["multilevel"]["leave1out"]
    got = multilevel_frames()[0]
    assert list(got["omitted"]) == ref["omitted"]
    assert_column(got[column], ref[column])


@pytest.mark.parametrize("column", [c for c in ML_COLUMNS if c != "stat"])
def test_multilevel_cumulative_matches_rma_mv(column):
    ref = REF["multilevel"]["cumul"]
    got = multilevel_frames()[1]
    assert list(got["added"]) == ref["added"]
    assert_column(got[column], ref[column])


def test_multilevel_cumulative_first_row_single_study():
    """One study: rma.mv fixes sigma2_study at 0 (single-level factor) and says so."""
    ref = REF["multilevel"]["cumul"]
    d = REF["multilevel"]["data"]
    rows = np.flatnonzero(np.asarray(d["study"]) == ref["added"][0])
    with pytest.warns(UserWarning, match="Single-level factor"):
        fit = ma.multilevel(np.asarray(d["yi"])[rows], np.asarray(d["vi"])[rows],
                            np.asarray(d["study"])[rows], rho=REF["multilevel"]["rho"])
    assert fit.sigma2_study == 0.0 == ref["sigma2_study"][0]
    for column in ["estimate", "se", "sigma2_within"]:
        assert_column(pd.Series([getattr(fit, column)]), ref[column][:1])


# ---------------------------------------------------------------- cumulative forest plot


def test_cumulative_plot_draws_one_row_per_step():
    from matplotlib.figure import Figure

    res = fitted("bcg_REML_z")
    frame = ma.cumulative(res, order=REF["fits"]["bcg_REML_z"]["cumul"]["order"])
    fig = ma.cumulative_plot(frame)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"+ {a}" for a in frame["added"]]
    right = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert right[-1].startswith(f"{frame['estimate'].iloc[-1]:.2f}")


def test_cumulative_plot_from_a_result_into_given_axes():

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    with pytest.warns(UserWarning, match="Single-level factor"):  # the one-study first step
        out = ma.cumulative_plot(multilevel_fit(), ax=ax, order=REF["multilevel"]["data"]["year"])
    assert out is fig
    assert len(ax.get_yticks()) == len(REF["multilevel"]["cumul"]["added"])
    plt.close(fig)


def test_cumulative_plot_rejects_other_frames():
    with pytest.raises(ValueError, match="added"):
        ma.cumulative_plot(pd.DataFrame({"estimate": [0.1]}))


# ---------------------------------------------------------------- clustered models, robust
# Reference: tests/reference/clustered_influence.json (clustered_influence.R): the CHE model
# on dat.assink2016 refitted without each study, then clubSandwich CR2/CR1 robust inference.

CLUSTERED = json.loads(
    (Path(__file__).parent / "reference" / "clustered_influence.json").read_text())
ROBUST_COLUMNS = ["k", "n_clusters", "estimate", "se", "stat", "df", "pvalue", "ci_low",
                  "ci_high", "sigma2_study", "sigma2_within"]
RTOL_ROBUST = 1e-6  # REML/ML optimum (metafor optim reltol 1e-15 vs our Newton 1e-11)
# optim works on log(sigma2) and stops ~1e-8 short of a zero bound that Newton reaches exactly
ATOL_SIGMA2 = 1e-7


def clustered_fit(method: str = "REML") -> ma.MultilevelResult:
    d = CLUSTERED["data"]
    return ma.multilevel(d["yi"], d["vi"], d["study"], es_id=d["esid"], rho=CLUSTERED["rho"],
                         method=method)


@cache
def robust_leave_one_out(case_id: str) -> tuple[ma.RobustResult, pd.DataFrame]:
    case = next(c for c in CLUSTERED["cases"] if c["id"] == case_id)
    res = clustered_fit(case["method"]).robust(adjust=case["adjust"])
    return res, ma.leave_one_out(res)


def test_clustered_reference_grid_is_complete():
    ids = {c["id"] for c in CLUSTERED["cases"]}
    assert ids == {f"{m}-{a}" for m in ("REML", "ML") for a in ("CR2", "CR1")}
    for case in CLUSTERED["cases"]:
        assert len(case["leave1out"]["omitted"]) == 17
        assert set(ROBUST_COLUMNS) <= set(case["leave1out"])


@pytest.mark.parametrize(
    ("case_id", "column"),
    [pytest.param(c["id"], col, id=f"{c['id']}-{col}")
     for c in CLUSTERED["cases"] for col in ROBUST_COLUMNS])
def test_robust_leave_one_out_matches_clubsandwich(case_id, column):
    case = next(c for c in CLUSTERED["cases"] if c["id"] == case_id)
    res, frame = robust_leave_one_out(case_id)
    assert list(frame["omitted"]) == case["leave1out"]["omitted"]
    if column.startswith("sigma2"):
        np.testing.assert_allclose(frame[column], case["leave1out"][column], rtol=RTOL_ROBUST,
                                   atol=ATOL_SIGMA2)
    else:
        assert_column(frame[column], case["leave1out"][column], rtol=RTOL_ROBUST)
    full = res.to_frame().iloc[0]
    got_full = res.k if column == "k" else getattr(res, column, full.get(column))
    assert_column([got_full], [case["full"][column]], rtol=RTOL_ROBUST)


@pytest.mark.parametrize("adjust", ["CR2", "CR1"])
def test_robust_leave_one_out_row_is_the_same_model_refitted_without_the_study(adjust):
    d = CLUSTERED["data"]
    res, frame = robust_leave_one_out(f"REML-{adjust}")
    study = np.asarray(d["study"])
    for i, s in enumerate(frame["omitted"]):
        keep = study != s
        direct = ma.multilevel(np.asarray(d["yi"])[keep], np.asarray(d["vi"])[keep], study[keep],
                               es_id=np.asarray(d["esid"])[keep], rho=CLUSTERED["rho"]).robust(
            adjust=adjust)
        row = frame.iloc[i]
        for name in ("estimate", "se", "df", "pvalue", "ci_low", "ci_high", "sigma2_study",
                     "sigma2_within"):
            assert row[name] == getattr(direct, name), (s, name)
        assert row["k"] == direct.k and row["n_clusters"] == direct.n_clusters


def test_multilevel_influence_matches_rma_mv():
    ref = CLUSTERED["influence"]
    got = ma.influence(clustered_fit())
    assert list(got["study"]) == ref["study"]
    assert_column(got["cooks"], ref["cooks"], rtol=RTOL_ROBUST)
    assert_column(got["dfbetas"], ref["dfbetas"], rtol=RTOL_ROBUST)


def test_robust_influence_deletes_whole_studies_and_uses_the_robust_covariance():
    res, loo = robust_leave_one_out("REML-CR2")
    got = ma.influence(res)
    assert list(got["study"]) == list(loo["omitted"])
    diff = res.estimate - loo["estimate"].to_numpy()
    np.testing.assert_allclose(got["cooks"], diff**2 / res.se**2, rtol=1e-12)
    np.testing.assert_allclose(got["dfbetas"], diff / loo["se"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["cov_ratio"], loo["se"].to_numpy() ** 2 / res.se**2,
                               rtol=1e-12)
    assert (got["k_del"] == loo["k"]).all()


def test_robust_cumulative_steps_refit_the_robust_model():
    d = CLUSTERED["data"]
    res = clustered_fit().robust()
    with pytest.warns(UserWarning, match="Single-level factor"):
        steps = ma.cumulative(res)
    # one study: no cluster-robust inference (a row of NaN); the last step is the full fit
    assert np.isnan(steps["estimate"].iloc[0]) and steps["k"].iloc[0] == d["study"].count(
        d["study"][0])
    last = steps.iloc[-1]
    for name in ("estimate", "se", "df", "ci_low", "ci_high"):
        assert last[name] == getattr(res, name)
