"""The one result protocol: every fitted model shares its fields and is accepted by every
plot and diagnostic (dat.assink2016 from tests/reference/clustered_influence.json)."""

from __future__ import annotations

import ast
import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import metaally as ma
from metaally.models.printing import COEF_COLUMNS
from metaally.models.protocol import ClusteredModel, FitResult, FittedModel

DATA = json.loads(
    (Path(__file__).parent / "reference" / "clustered_influence.json").read_text())["data"]
PACKAGE = Path(ma.__file__).parent


@cache
def fits() -> dict[str, FitResult]:
    yi, vi, study, esid = DATA["yi"], DATA["vi"], DATA["study"], DATA["esid"]
    m = ma.multilevel(yi, vi, study, es_id=esid)
    return {
        "random_effects": ma.random_effects(yi, vi),
        "random_effects_knha": ma.random_effects(yi, vi, test="knha"),
        "multilevel": m,
        "robust": m.robust(),
        "robust_cr1": m.robust(adjust="CR1"),
    }


pytestmark = pytest.mark.usefixtures("no_show_and_close")
FIT_IDS = ["random_effects", "random_effects_knha", "multilevel", "robust", "robust_cr1"]
CLUSTERED = ["multilevel", "robust", "robust_cr1"]


@pytest.mark.parametrize("fit_id", FIT_IDS)
def test_every_fitted_model_satisfies_the_protocol(fit_id):
    res = fits()[fit_id]
    assert isinstance(res, FitResult) and isinstance(res, FittedModel)
    assert isinstance(res, ClusteredModel) == (fit_id in CLUSTERED)
    for name in ("estimate", "se", "ci_low", "ci_high", "pvalue", "df"):
        assert isinstance(getattr(res, name), float), name
    assert res.k == 100
    assert res.ci_low < res.estimate < res.ci_high
    frame = res.to_frame()
    assert tuple(frame.columns[: len(COEF_COLUMNS)]) == COEF_COLUMNS
    assert frame.loc[0, "estimate"] == res.estimate and frame.loc[0, "df"] == res.df
    assert frame.loc[0, "k"] == 100
    if fit_id in CLUSTERED:
        assert res.n_clusters == 17 and frame.loc[0, "n_clusters"] == 17
    assert res.summary() == str(res)


@pytest.mark.parametrize("fit_id", FIT_IDS)
def test_df_is_infinite_exactly_for_z_tests(fit_id):
    res = fits()[fit_id]
    assert np.isinf(res.df) == (fit_id in ("random_effects", "multilevel"))


@pytest.mark.parametrize("fit_id", FIT_IDS)
def test_plots_accept_every_fitted_model(fit_id):
    res = fits()[fit_id]
    fig = ma.forest_plot(res)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    headers = 17 if fit_id in CLUSTERED else 0  # clustered: effects grouped under their study
    assert len(labels) == 100 + headers + 1
    assert isinstance(ma.funnel_plot(res), Figure)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Single-level factor")
        assert isinstance(ma.cumulative_plot(res), Figure)


def test_forest_plot_of_a_robust_result_names_its_adjustment():
    fig = ma.forest_plot(fits()["robust"])
    assert fig.axes[0].get_yticklabels()[-1].get_text() == "Pooled (CHE, CR2 robust)"


def test_egger_test_of_a_result_equals_the_array_form():
    yi, vi, study = DATA["yi"], DATA["vi"], DATA["study"]
    by_result = ma.egger_test(fits()["robust"])
    by_arrays = ma.egger_test(yi, vi, study=study)
    assert (by_result.stat, by_result.df, by_result.pvalue) == (
        by_arrays.stat, by_arrays.df, by_arrays.pvalue)
    assert ma.egger_test(fits()["multilevel"]).pvalue == by_arrays.pvalue
    assert ma.egger_test(fits()["robust_cr1"]).test == "CR1"
    plain = ma.egger_test(fits()["random_effects"])
    assert plain.pvalue == ma.egger_test(yi, vi).pvalue and plain.test == "z"
    knha = ma.egger_test(fits()["random_effects_knha"])
    assert knha.test == "knha" and knha.df == 100 - 2


def test_univariate_diagnostics_of_a_result_equal_the_array_form():
    yi, vi = np.asarray(DATA["yi"][:30]), np.asarray(DATA["vi"][:30])
    res = ma.random_effects(yi, vi, method="DL")
    assert ma.rank_test(res) == ma.rank_test(yi, vi)
    a, b = ma.trim_and_fill(res), ma.trim_and_fill(yi, vi, method="DL")
    assert (a.k0, a.estimate, a.method) == (b.k0, b.estimate, "DL")
    assert ma.pet_peese(res).estimate == ma.pet_peese(yi, vi).estimate


@pytest.mark.parametrize("function", [ma.rank_test, ma.trim_and_fill, ma.pet_peese])
def test_diagnostics_for_independent_effects_reject_clustered_models(function):
    with pytest.raises(ValueError, match="independent effects"):
        function(fits()["robust"])


@pytest.mark.parametrize("function", [ma.egger_test, ma.rank_test, ma.trim_and_fill,
                                      ma.pet_peese, ma.leave_one_out, ma.influence])
def test_diagnostics_name_what_they_need(function):
    with pytest.raises(ValueError):
        function(pd.DataFrame({"yi": [0.1, 0.2, 0.3], "vi": [0.1, 0.1, 0.1]}))


def test_models_have_no_import_cycle():
    """Function-level imports included: robust.py never imports multilevel.py."""
    graph = {}
    for path in (PACKAGE / "models").glob("*.py"):
        tree = ast.parse(path.read_text())
        graph[path.stem] = {
            node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            and node.module.startswith("metaally.models.")
        }

    def reaches(start: str, target: str, seen: frozenset = frozenset()) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n}))
                   for n in graph.get(start, ()))

    assert not [m for m in graph if reaches(m, m)]
    assert "multilevel" not in graph["robust"]


# ---------------------------------------------------------------- one name, one default


@pytest.mark.parametrize("call", [
    lambda: ma.random_effects([0.1, 0.3, 0.2], [0.1, 0.1, 0.1], level=95),
    lambda: ma.multilevel([0.1, 0.3, 0.2, 0.4], [0.1] * 4, [1, 1, 2, 3], level=95),
    lambda: ma.random_effects_batch([[0.1, 0.3, 0.2]], [[0.1, 0.1, 0.1]], level=95),
    lambda: ma.pet_peese([0.1, 0.3, 0.2, 0.5], [0.1, 0.1, 0.1, 0.2], level=95),
    lambda: ma.random_effects([0.1, 0.3, 0.2], [0.1, 0.1, 0.1]).tau2_ci(level=95),
    lambda: ma.forest_plot(ma.random_effects([0.1, 0.3, 0.2], [0.1, 0.1, 0.1]), level=95),
])
def test_level_is_a_proportion_everywhere(call):
    with pytest.raises(ValueError, match="level must be a proportion .* not a percentage"):
        call()


def test_batch_has_the_defaults_of_random_effects():
    rng = np.random.default_rng(3)
    Y, V = rng.normal(size=(4, 9)), rng.uniform(0.05, 0.3, size=(4, 9))
    out = ma.random_effects_batch(Y, V)
    for i in range(4):
        one = ma.random_effects(Y[i], V[i])
        assert one.test == "z" and one.method == "REML" and np.isinf(out.loc[i, "df"])
        assert out.loc[i, "pvalue"] == pytest.approx(one.pvalue, rel=1e-10)


def _series(values, index):
    return pd.Series(values, index=index)


@pytest.mark.parametrize("call", [
    lambda a, b: ma.random_effects(a, b),
    lambda a, b: ma.random_effects(a, [0.1] * 4, mods=b),
    lambda a, b: ma.multilevel(a, [0.1] * 4, study=_series([1, 1, 2, 3], b.index)),
    lambda a, b: ma.aggregate(a, b, [1, 1, 2, 2]),
    lambda a, b: ma.egger_test(a, b),
    lambda a, b: ma.rank_test(a, b),
    lambda a, b: ma.random_effects_batch(a.to_frame().T, b.to_frame().T),  # columns differ
    lambda a, b: ma.random_effects_batch(pd.DataFrame([a.to_numpy()], index=["x"]),
                                         pd.DataFrame([b.to_numpy()], index=["y"])),
])
def test_series_with_different_indexes_are_never_paired_by_position(call):
    yi = _series([0.1, 0.3, 0.2, 0.5], [0, 1, 2, 3])
    other = _series([0.1, 0.2, 0.1, 0.2], [3, 2, 1, 0])
    with pytest.raises(ValueError, match="different indexes"):
        call(yi, other)


def test_a_missing_moderator_drops_its_row_in_every_model():
    yi = np.array([0.1, 0.3, 0.2, 0.5, 0.4, 0.6, 0.2])
    vi = np.full(7, 0.05)
    study = [1, 1, 2, 3, 4, 5, 6]
    x = np.array([0.0, 1.0, np.nan, 2.0, 1.0, 3.0, 0.5])
    with pytest.warns(UserWarning, match="1 of 7 rows had missing values"):
        uni = ma.random_effects(yi, vi, mods=x)
    with pytest.warns(UserWarning, match="1 of 7 rows had missing values"):
        ml = ma.multilevel(yi, vi, study, mods=x)
    keep = ~np.isnan(x)
    assert uni.coef.equals(ma.random_effects(yi[keep], vi[keep], mods=x[keep]).coef)
    direct = ma.multilevel(yi[keep], vi[keep], np.asarray(study)[keep], mods=x[keep])
    assert ml.coef.equals(direct.coef) and ml.k == 6


def test_aggregate_with_the_model_within_variance_gives_the_che_weights():
    """With sigma2_within of a fitted CHE model, the composites weighted by
    1/(vi_j + sigma2_study) average to the model's estimate (Sherman-Morrison)."""
    yi, vi, study = DATA["yi"], DATA["vi"], DATA["study"]
    m = fits()["multilevel"]
    agg = ma.aggregate(yi, vi, study, rho=0.6, sigma2_within=m.sigma2_within)
    w = 1.0 / (agg["vi"] + m.sigma2_study)
    assert float(np.sum(w * agg["yi"]) / np.sum(w)) == pytest.approx(m.estimate, rel=1e-10)
    assert float(np.sqrt(1.0 / np.sum(w))) == pytest.approx(m.se, rel=1e-10)


def test_gosh_of_a_result_uses_its_data_labels_and_estimator():
    yi, vi = np.asarray(DATA["yi"][:8]), np.asarray(DATA["vi"][:8])
    res = ma.random_effects(yi, vi, method="DL", slab=list("abcdefgh"))
    a, b = ma.gosh(res), ma.gosh(yi, vi, method="DL", slab=list("abcdefgh"))
    assert a.method == "DL" and a.slab == b.slab == tuple("abcdefgh")
    np.testing.assert_array_equal(a.estimate, b.estimate)
    with pytest.raises(ValueError, match="intercept-only univariate"):
        ma.gosh(fits()["robust"])


OWN_MODULES = [*sorted((PACKAGE / "models").glob("*.py")),
               *(PACKAGE / "diagnostics" / f"{m}.py"
                 for m in ("bias", "influence", "subsets", "permutation")),
               *(PACKAGE / "plots" / f"{m}.py" for m in ("forest", "funnel", "cumulative", "gosh"))]


@pytest.mark.parametrize("path", [p for p in OWN_MODULES
                                  if p.name not in ("__init__.py", "pooling.py")],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_modules_declare_their_public_names(path):
    """__all__ lists exactly the public top-level definitions of the module."""
    tree = ast.parse(path.read_text())
    declared = next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets))
    defined = {node.name for node in tree.body
               if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    defined |= {t.id for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    defined |= {node.target.id for node in tree.body
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    assert set(declared) == {n for n in defined if not n.startswith("_")}


def test_gosh_plot_of_a_fitted_model_draws_its_gosh_analysis():
    yi, vi = np.asarray(DATA["yi"][:6]), np.asarray(DATA["vi"][:6])
    fig = ma.gosh_plot(ma.random_effects(yi, vi, method="DL"))
    n_points = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert n_points == 2**6 - 1
