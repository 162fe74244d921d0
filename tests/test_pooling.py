"""Pooling by component / any coding column against metafor + clubSandwich.

Reference: tests/reference/pooling.R (run on the committed results/effects.csv) ->
tests/reference/pooling.json.  Every pooled number of results/pooled_by_component.csv
(CHE + CR2) and of the two alternative models must match; plus the small-k rules.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.allyship.review import (
    COMPONENTS,
    OUTCOME_COMPONENTS,
    TECHNIQUES,
    component_differences,
    pool_by_component,
)
from metaally.models.aggregate import aggregate
from metaally.models.multilevel import multilevel
from metaally.models.pooling import (
    CELL_COLUMNS,
    NOTE_INDEPENDENT,
    NOTE_NO_STUDIES,
    NOTE_SINGLE_STUDY,
    NOTE_SMALL_DF,
    POOLED_COLUMNS,
    pool_by,
    pool_cells,
    pool_groups,
)
from metaally.models.univariate import random_effects

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests/reference/pooling.json").read_text())
EFFECTS = pd.read_csv(ROOT / "results/effects.csv")
MODELS = ["che", "aggregate", "univariate"]

# quantities -> (rtol, atol); variance components may sit on the boundary (~1e-12 in R)
TOLERANCE = {
    "estimate": (1e-5, 1e-7), "se": (1e-5, 1e-7), "ci_low": (1e-5, 1e-7),
    "ci_high": (1e-5, 1e-7), "df": (1e-5, 1e-7), "pvalue": (1e-5, 1e-9),
    "pi_low": (1e-5, 1e-6), "pi_high": (1e-5, 1e-6),
    "sigma2_study": (1e-4, 1e-6), "sigma2_within": (1e-4, 1e-6), "i2": (1e-4, 1e-3),
}


def _cases():
    for model in MODELS:
        for row in REFERENCE["pooled"][model]:
            yield pytest.param(model, row, id=f"{model}-{row['grouping']}-{row['level']}")


_TABLES: dict[str, pd.DataFrame] = {}


def _table(model: str) -> pd.DataFrame:
    if model not in _TABLES:
        _TABLES[model] = pool_by_component(EFFECTS, model=model)
    return _TABLES[model]


def _assert_row_matches(row: pd.Series, ref: dict) -> None:
    assert row["k_studies"] == ref["k_studies"]
    assert row["k_effects"] == ref["k_effects"]
    for name, (rtol, atol) in TOLERANCE.items():
        expected = math.nan if ref[name] is None else ref[name]
        assert np.isclose(row[name], expected, rtol=rtol, atol=atol, equal_nan=True), (
            name, row[name], expected)


@pytest.mark.parametrize(("model", "ref"), list(_cases()))
def test_matches_metafor(model, ref):
    table = _table(model)
    grouping = {"components": "component"}.get(ref["grouping"], ref["grouping"])
    row = table[(table["grouping"] == grouping) & (table["component"] == ref["level"])]
    assert len(row) == 1
    _assert_row_matches(row.iloc[0], ref)


def test_reference_grid_is_complete():
    """Every row of every model's table has a reference row, and vice versa."""
    for model in MODELS:
        table = _table(model)
        ours = set(zip(table["grouping"].replace({"component": "components"}),
                       table["component"], strict=True))
        theirs = {(r["grouping"], r["level"]) for r in REFERENCE["pooled"][model]}
        assert ours == theirs
    assert len(REFERENCE["pooled"]["che"]) == 4 + EFFECTS["table_group"].nunique() + 1


def test_component_differences_match_clubsandwich():
    ref = REFERENCE["differences"]
    result = component_differences(EFFECTS)
    coefs = result.coefficients
    assert list(coefs["level"]) == ref["levels"]
    assert list(coefs["k_studies"]) == ref["k_studies"]
    for name in ["estimate", "se", "df", "ci_low", "ci_high", "pvalue"]:
        np.testing.assert_allclose(coefs[name], ref[name], rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(
        [result.stat, result.df1, result.df2, result.pvalue],
        [ref["test"]["stat"], ref["test"]["df1"], ref["test"]["df2"], ref["test"]["pvalue"]],
        rtol=1e-5,
    )
    np.testing.assert_allclose([result.sigma2_study, result.sigma2_within],
                               [ref["sigma2_study"], ref["sigma2_within"]], rtol=1e-4)
    frame = result.to_frame()
    assert list(frame["row_type"]) == ["coefficient"] * len(ref["levels"]) + ["test"]
    assert "HTZ" in str(result)


def test_table_shape_and_columns():
    table = pool_by_component(EFFECTS)
    assert list(table.columns) == ["grouping", "component", *POOLED_COLUMNS[2:]]
    assert list(table.loc[table["grouping"] == "component", "component"]) == list(COMPONENTS)
    assert list(table["grouping"].unique()) == ["component", "table_group", "overall"]
    empty = table[table["component"] == "all_inclusivity"].iloc[0]
    assert empty["k_studies"] == 0 and math.isnan(empty["estimate"])
    assert empty["note"] == NOTE_NO_STUDIES


def test_pool_by_components_equals_pool_by_component():
    generic = pool_by(EFFECTS, "components", levels=COMPONENTS)
    specific = pool_by_component(EFFECTS)
    keep = specific["grouping"].isin(["component", "overall"])
    expected = specific[keep].reset_index(drop=True)
    got = generic.rename(columns={"level": "component"})
    got["grouping"] = got["grouping"].replace({"components": "component"})
    pd.testing.assert_frame_equal(got, expected)


def test_public_api_exports():
    assert ma.pool_by is pool_by
    assert ally.pool_by_component is pool_by_component


def test_study_counts_toward_every_component_it_targets():
    table = pool_by_component(EFFECTS)
    included = EFFECTS[EFFECTS["included"]]
    for comp in COMPONENTS:
        mask = included["components"].str.split(";").apply(lambda parts, c=comp: c in parts)
        row = table[(table["grouping"] == "component") & (table["component"] == comp)].iloc[0]
        assert row["k_studies"] == included.loc[mask, "study_id"].nunique()
        assert row["k_effects"] == mask.sum()


def test_excluded_rows_are_not_pooled():
    overall = pool_by(EFFECTS, "components").iloc[-1]
    assert overall["k_effects"] == int(EFFECTS["included"].sum())


# --- small-k rules on synthetic data ---------------------------------------------------


def _synthetic(spec: dict[str, tuple[str, list[float]]]) -> pd.DataFrame:
    rows = []
    for study, (components, ys) in spec.items():
        for j, y in enumerate(ys):
            rows.append({"study_id": study, "es_id": f"{study}-{j}", "yi": y,
                         "vi": 0.02 + 0.005 * j, "components": components,
                         "citation": f"{study.title()} et al. (2020)", "year": 2020,
                         "included": True})
    return pd.DataFrame(rows)


def test_single_study_reports_its_own_composite_effect():
    data = _synthetic({"a": ("awareness", [0.3, 0.5, 0.4])})
    agg = aggregate(data["yi"], data["vi"], data["study_id"], rho=0.6)
    with pytest.warns(UserWarning, match="[Ss]ingle-level"):
        within = multilevel(data["yi"], data["vi"], data["study_id"], rho=0.6).sigma2_within
    indep = random_effects(data["yi"], data["vi"])
    w_indep = 1 / (data["vi"] + indep.tau2)
    expected = {  # model -> (estimate, se) of the study's composite under that model
        "aggregate": (agg["yi"].iloc[0], math.sqrt(agg["vi"].iloc[0])),
        "univariate": (np.sum(w_indep * data["yi"]) / w_indep.sum(), math.sqrt(1 / w_indep.sum())),
    }
    if within == 0:  # the CHE composite reduces to the aggregate when omega^2 = 0
        expected["che"] = expected["aggregate"]
    for model in MODELS:
        row = pool_by(data, "components", model=model, overall=False).iloc[0]
        assert row["k_studies"] == 1 and row["k_effects"] == 3
        if model in expected:
            assert row["estimate"] == pytest.approx(expected[model][0])
            assert row["se"] == pytest.approx(expected[model][1])
        assert row["ci_low"] == pytest.approx(row["estimate"] - 1.959963985 * row["se"])
        assert all(math.isnan(row[c]) for c in ["sigma2_study", "i2", "pi_low", "df"])
        assert row["note"] == NOTE_SINGLE_STUDY


def test_single_study_che_accounts_for_within_study_heterogeneity():
    # very different effects in one study: the CHE composite uses V + omega^2 I, so it
    # stays inside the range of the effects and its SE exceeds the aggregate's
    data = _synthetic({"a": ("awareness", [0.2, 2.9, 1.4, 1.3])})
    agg = aggregate(data["yi"], data["vi"], data["study_id"], rho=0.6)
    row = pool_by(data, "components", model="che", overall=False).iloc[0]
    assert row["sigma2_within"] > 0
    assert 0.2 < row["estimate"] < 2.9
    assert row["se"] > math.sqrt(agg["vi"].iloc[0])


@pytest.mark.parametrize("model", MODELS)
def test_pooled_estimate_is_weighted_mean_of_study_rows(model):
    data = _synthetic({"a": ("x", [0.3, 0.9, 0.4]), "b": ("x", [0.1, 0.2]),
                       "c": ("x", [0.8]), "d": ("x", [0.5, -0.1, 0.6, 0.2])})
    group = pool_groups(data, "components", model=model)[0]
    rows = group.studies
    assert rows["weight"].sum() == pytest.approx(100.0)
    assert np.average(rows["yi"], weights=rows["weight"]) == pytest.approx(group.estimate)


def test_no_studies_gives_nan_row_not_crash():
    data = _synthetic({"a": ("awareness", [0.3]), "b": ("awareness", [0.2, 0.1])})
    table = pool_by(data, "components", levels=COMPONENTS, overall=False)
    assert len(table) == 4
    for _, row in table.iloc[1:].iterrows():
        assert row["k_studies"] == 0 and row["k_effects"] == 0
        assert math.isnan(row["estimate"]) and row["note"] == NOTE_NO_STUDIES


def test_excluded_only_level_has_no_studies():
    data = _synthetic({"a": ("awareness", [0.3, 0.4]), "b": ("awareness", [0.2]),
                       "c": ("all_inclusivity", [0.9])})
    data.loc[data["study_id"] == "c", "included"] = False
    table = pool_by(data, "components", overall=False)
    assert list(table["level"]) == ["awareness", "all_inclusivity"]
    assert table.iloc[1]["note"] == NOTE_NO_STUDIES


def test_few_clusters_flag_unreliable_robust_ci():
    data = _synthetic({"a": ("x", [0.3, 0.5]), "b": ("x", [0.1, 0.2, 0.0])})
    row = pool_by(data, "components", overall=False).iloc[0]
    assert row["df"] < 4
    assert NOTE_SMALL_DF in row["note"]


def test_univariate_notes_independence():
    data = _synthetic({"a": ("x", [0.3, 0.5]), "b": ("x", [0.1, 0.2, 0.0])})
    row = pool_by(data, "components", model="univariate", overall=False).iloc[0]
    assert NOTE_INDEPENDENT in row["note"]
    assert row["df"] == 4  # Knapp-Hartung: k effects - 1


def test_multi_valued_cells_count_in_each_level():
    data = _synthetic({"a": ("x;y", [0.3, 0.5]), "b": ("x", [0.1]), "c": ("y", [0.4])})
    groups = pool_groups(data, "components")
    assert [(g.level, g.k_studies, g.k_effects) for g in groups] == [("x", 2, 3), ("y", 2, 3)]
    weights = groups[0].studies["weight"]
    assert weights.sum() == pytest.approx(100.0)


def test_study_weights_reduce_to_inverse_variance_for_independent_effects():
    data = _synthetic({"a": ("x", [0.3]), "b": ("x", [0.1]), "c": ("x", [0.6])})
    data["vi"] = [0.01, 0.04, 0.02]
    group = pool_groups(data, "components", model="univariate")[0]
    tau2 = group.sigma2_study
    w = 1 / (data["vi"].to_numpy() + tau2)
    np.testing.assert_allclose(group.studies["weight"], 100 * w / w.sum())


def test_differences_leave_out_single_study_levels():
    data = _synthetic({"a": ("x", [0.3, 0.5]), "b": ("x", [0.1, 0.2]), "c": ("y", [0.4, 0.6]),
                       "d": ("y", [0.2]), "e": ("z;x", [0.9, 0.8])})
    result = ma.differences_by(data, "components")
    assert list(result.coefficients["level"]) == ["x", "y"]
    assert "left out (one study only): z" in result.note
    assert np.isfinite(result.pvalue)


def test_bad_input_messages():
    with pytest.raises(ValueError, match="model must be one of"):
        pool_by(EFFECTS, "components", model="fixed")
    with pytest.raises(ValueError, match="missing column"):
        pool_by(EFFECTS.drop(columns="included"), "components")
    with pytest.raises(ValueError, match="missing column"):
        pool_by(EFFECTS, "no_such_column")
    one_level = _synthetic({"a": ("x", [0.3, 0.5]), "b": ("x", [0.1])})
    with pytest.raises(ValueError, match="fewer than two levels with two or more studies"):
        ma.differences_by(one_level, "components")


def test_summary_reads_like_a_printout():
    group = pool_groups(EFFECTS, "components", levels=["awareness"])[0]
    text = str(group)
    assert "components = awareness" in text and f"k = {group.k_studies} studies" in text
    assert "CR2" in text


# --- by technique / outcome component, gap-map cells, technique test ----------

BY_COLUMN_LEVELS = {"technique": TECHNIQUES, "outcome_component": OUTCOME_COMPONENTS}


_BY_TABLES: dict[tuple[str, str], pd.DataFrame] = {}


def _by_table(column: str, model: str) -> pd.DataFrame:
    if (column, model) not in _BY_TABLES:
        _BY_TABLES[column, model] = pool_by(EFFECTS, column, model=model,
                                            levels=BY_COLUMN_LEVELS[column], overall=False)
    return _BY_TABLES[column, model]


def _by_column_cases():
    for column, models in REFERENCE["by_column"].items():
        for model, rows in models.items():
            for ref in rows:
                yield pytest.param(column, model, ref, id=f"{column}-{model}-{ref['level']}")


@pytest.mark.parametrize(("column", "model", "ref"), list(_by_column_cases()))
def test_pool_by_coding_column_matches_metafor(column, model, ref):
    table = _by_table(column, model)
    row = table[table["level"] == ref["level"]]
    assert len(row) == 1
    _assert_row_matches(row.iloc[0], ref)


def test_by_column_reference_grid_is_complete():
    assert set(REFERENCE["by_column"]) == set(BY_COLUMN_LEVELS)
    for column, levels in BY_COLUMN_LEVELS.items():
        for model in MODELS:
            assert [r["level"] for r in REFERENCE["by_column"][column][model]] == list(levels)
            assert list(_by_table(column, model)["level"]) == list(levels)


_CELLS = pool_cells(EFFECTS, "components", "outcome_component", row_levels=COMPONENTS,
                    column_levels=OUTCOME_COMPONENTS)


@pytest.mark.parametrize("ref", REFERENCE["cells"], ids=lambda r: f"{r['row']}-{r['level']}")
def test_gap_map_cells_match_metafor(ref):
    row = _CELLS[(_CELLS["row"] == ref["row"]) & (_CELLS["column"] == ref["level"])]
    assert len(row) == 1
    _assert_row_matches(row.iloc[0], ref)


def test_gap_map_cell_grid_is_complete():
    assert list(_CELLS.columns) == CELL_COLUMNS
    grid = [(r, c) for r in COMPONENTS for c in OUTCOME_COMPONENTS]
    assert list(zip(_CELLS["row"], _CELLS["column"], strict=True)) == grid
    assert [(r["row"], r["level"]) for r in REFERENCE["cells"]] == grid


def test_technique_differences_match_metafor():
    ref = REFERENCE["technique_differences"]
    result = ma.differences_by(EFFECTS, "technique", levels=TECHNIQUES)
    assert result.inference == ref["test"]["inference"]
    coefs = result.coefficients
    assert list(coefs["level"]) == ref["levels"]
    assert list(coefs["k_studies"]) == ref["k_studies"]
    for name in ["estimate", "se", "df", "ci_low", "ci_high", "pvalue"]:
        expected = np.array([np.nan if v is None else v for v in ref[name]], dtype=float)
        np.testing.assert_allclose(coefs[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)
    test = ref["test"]
    np.testing.assert_allclose(
        [result.stat, result.df1, result.pvalue], [test["stat"], test["df1"], test["pvalue"]],
        rtol=1e-5)
    assert (test["df2"] is None) == math.isnan(result.df2)
    np.testing.assert_allclose([result.sigma2_study, result.sigma2_within],
                               [ref["sigma2_study"], ref["sigma2_within"]], rtol=1e-4)
    if result.inference == "model":
        assert "model-based" in result.note and "chi^2" in str(result)
        assert result.to_frame()["level"].iloc[-1] == "all equal (model-based Wald)"


def test_cells_partition_the_level_when_columns_are_single_valued():
    """Every included effect has one outcome component, so a row's cells add up to it."""
    for comp in COMPONENTS:
        cells = _CELLS[_CELLS["row"] == comp]
        level = pool_by(EFFECTS, "components", levels=[comp], overall=False).iloc[0]
        assert cells["k_effects"].sum() == level["k_effects"]


def test_pool_cells_counts_multi_valued_cells_in_each_cell():
    data = _synthetic({"a": ("x;y", [0.3, 0.5]), "b": ("x", [0.1]), "c": ("y", [0.4])})
    data["outcome"] = ["p", "q", "p", "p;q"]
    cells = pool_cells(data, "components", "outcome")
    got = [(r.row, r.column, r.k_studies, r.k_effects) for r in cells.itertuples()]
    assert got == [("x", "p", 2, 2), ("x", "q", 1, 1), ("y", "p", 2, 2), ("y", "q", 2, 2)]
    single = cells[(cells["row"] == "x") & (cells["column"] == "q")].iloc[0]
    assert single["note"] == NOTE_SINGLE_STUDY


def test_pool_cells_empty_row_is_all_no_studies():
    data = _synthetic({"a": ("x", [0.3, 0.5]), "b": ("x", [0.1])})
    data["outcome"] = "p"
    cells = pool_cells(data, "components", "outcome", row_levels=["x", "z"])
    empty = cells[cells["row"] == "z"]
    assert len(empty) == 1 and empty["k_studies"].iloc[0] == 0
    assert empty["note"].iloc[0] == NOTE_NO_STUDIES


def test_pool_cells_bad_column():
    with pytest.raises(ValueError, match="missing column"):
        pool_cells(EFFECTS, "components", "no_such_column")


def test_differences_fall_back_to_model_based_when_clusters_run_out():
    data = _synthetic({"a": ("x;y", [0.3, 0.5, 0.2]), "b": ("x;z", [0.1, 0.2]),
                       "c": ("y;z", [0.4, 0.6])})  # 3 studies for 3 coefficients
    result = ma.differences_by(data, "components")
    assert result.inference == "model"
    assert math.isnan(result.df2) and np.isfinite(result.pvalue)
    assert result.coefficients["df"].isna().all()


def test_pool_by_level_and_test_reach_the_fit():
    """``level`` and ``test`` are those of the underlying fits (not fixed at 95% / knha)."""
    included = EFFECTS[EFFECTS["included"].astype(bool)]
    rows = included[included["components"].str.contains("awareness")]
    agg = aggregate(rows["yi"], rows["vi"], rows["study_id"], rho=0.6)
    for test in ("z", "knha"):
        ref = random_effects(agg["yi"], agg["vi"], test=test, level=0.9)
        got = pool_by(EFFECTS, "components", levels=["awareness"], model="aggregate",
                      test=test, level=0.9, overall=False).iloc[0]
        np.testing.assert_allclose([got["ci_low"], got["ci_high"], got["pvalue"]],
                                   [ref.ci_low, ref.ci_high, ref.pvalue], rtol=1e-12)
    che = multilevel(rows["yi"], rows["vi"], rows["study_id"], es_id=rows["es_id"], rho=0.6,
                     level=0.8).robust()
    got = pool_by(EFFECTS, "components", levels=["awareness"], level=0.8, overall=False).iloc[0]
    np.testing.assert_allclose([got["ci_low"], got["ci_high"]], [che.ci_low, che.ci_high],
                               rtol=1e-12)
    wide = pool_by(EFFECTS, "components", levels=["awareness"], level=0.99, overall=False)
    assert wide["ci_low"].iloc[0] < got["ci_low"]
    with pytest.raises(ValueError, match="test must be one of"):
        pool_by(EFFECTS, "components", test="t")


def test_blank_cells_are_pooled_as_ungrouped_by_default():
    data = EFFECTS.copy()
    data.loc[data["study_id"] == data["study_id"].iloc[0], "technique"] = ""
    table = pool_by(data, "technique", overall=False)
    assert table["level"].iloc[-1] == "ungrouped"
    assert table["k_studies"].iloc[-1] == 1
    assert "ungrouped" not in set(pool_by(EFFECTS, "technique", overall=False)["level"])
