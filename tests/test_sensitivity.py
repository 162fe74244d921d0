"""metaally.diagnostics.sensitivity and its plot: each scenario changes what its name says,
the default analysis is ``pool_by_component``'s, and the Markdown verdicts follow from the
table."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.diagnostics.sensitivity import (
    DEFAULT_GROUP,
    DEFAULT_NAME,
    SENSITIVITY_COLUMNS,
    Scenario,
    default_scenarios,
    level_verdict,
    scenario_effects,
    sensitivity_analysis,
    sensitivity_markdown,
)
from metaally.models.pooling import NOTE_INDEPENDENT, NOTE_SINGLE_STUDY, NOTE_SMALL_DF

ROOT = Path(__file__).resolve().parents[1]
POOLED = ["k_studies", "k_effects", "estimate", "se", "ci_low", "ci_high", "df", "pvalue"]
LEVELS = [*ally.COMPONENTS, "overall"]


@cache
def studies() -> pd.DataFrame:
    return ally.load_table2()


@cache
def table() -> pd.DataFrame:
    return sensitivity_analysis(studies(), ally.table2_scenarios(), levels=ally.COMPONENTS)


def rows(scenario: str) -> pd.DataFrame:
    out = table()[table()["scenario"] == scenario].set_index("component")
    assert list(out.index) == LEVELS
    return out


def pooled_reference(effects: pd.DataFrame, **fit) -> pd.DataFrame:
    """pool_by_component's component rows plus its overall row, indexed by component."""
    ref = ally.pool_by_component(effects, **fit)
    ref = ref[ref["grouping"].isin(["component", "overall"])]
    return ref.set_index("component")


def scenario(name: str) -> Scenario:
    return next(s for s in ally.table2_scenarios() if s.name == name)


# --- the scenario table -----------------------------------------------------------------


def test_columns_and_scenarios_of_issue_6():
    t = table()
    assert list(t.columns) == SENSITIVITY_COLUMNS
    names = list(dict.fromkeys(t["scenario"]))
    assert names[0] == DEFAULT_NAME
    assert len(names) == 16 and len(t) == 16 * len(LEVELS)
    rhos = {s.changes["rho"] for s in ally.table2_scenarios() if "rho" in s.changes}
    assert rhos | {ma.AnalysisSettings().rho} == {0.0, 0.2, 0.4, 0.6, 0.8, 0.95}
    changed = {(k, v) for s in ally.table2_scenarios() for k, v in s.changes.items()}
    assert {("range_policy", "midpoint"), ("range_policy", "low"), ("range_policy", "high"),
            ("model", "aggregate"), ("model", "univariate"), ("arms_policy", "two"),
            ("design_policy", "prepost")} <= changed
    assert {s.leave_out for s in ally.table2_scenarios() if s.leave_out} == {
        ("comparator", "active"), ("peer_reviewed", False), ("ref", 73)}
    assert list(dict.fromkeys(t["scenario_group"])) == [
        DEFAULT_GROUP, "Within-study correlation", "Reported ranges", "Studies left out",
        "Pooling model", "Per-arm n", "Design"]


def test_default_scenarios_leave_out_the_base_values():
    scenarios = default_scenarios(ma.AnalysisSettings(rho=0.4, model="aggregate"))
    rhos = [s.changes["rho"] for s in scenarios if "rho" in s.changes]
    models = [s.changes["model"] for s in scenarios if "model" in s.changes]
    assert 0.4 not in rhos and 0.6 in rhos
    assert models == ["che", "univariate"]


def test_default_analysis_is_pool_by_component_exactly():
    ref = pooled_reference(ma.compute_effects(studies()))
    got = rows(DEFAULT_NAME)
    pd.testing.assert_frame_equal(got[POOLED], ref.loc[LEVELS, POOLED], check_exact=True)
    assert list(got["note"].fillna("")) == list(ref.loc[LEVELS, "note"].fillna(""))


@pytest.mark.parametrize("rho", [0.0, 0.2, 0.4, 0.8, 0.95])
def test_rho_scenarios_refit_with_that_rho(rho):
    ref = pooled_reference(ma.compute_effects(studies()), rho=rho)
    got = rows(f"rho = {rho:g}")
    pd.testing.assert_frame_equal(got[POOLED], ref.loc[LEVELS, POOLED], check_exact=True)


@pytest.mark.parametrize("model", ["aggregate", "univariate"])
def test_model_scenarios_refit_with_that_model(model):
    name = next(s.name for s in ally.table2_scenarios() if s.changes.get("model") == model)
    ref = pooled_reference(ma.compute_effects(studies()), model=model)
    got = rows(name)
    pd.testing.assert_frame_equal(got[POOLED], ref.loc[LEVELS, POOLED], check_exact=True)
    if model == "univariate":
        assert got.loc["awareness", "note"] == NOTE_INDEPENDENT


@pytest.mark.parametrize("policy", ["midpoint", "low", "high"])
def test_range_scenarios_use_one_value_per_range(policy):
    sc = next(s for s in ally.table2_scenarios() if s.changes.get("range_policy") == policy)
    effects = scenario_effects(studies(), sc)
    n_ranges = int(studies()["value"].isna().sum())
    default = ma.compute_effects(studies())
    assert len(effects) == len(default) - n_ranges
    kinds = {"midpoint": "midpoint", "low": "low endpoint", "high": "high endpoint"}[policy]
    ranged = effects["derivation"].str.startswith("range")
    assert ranged.sum() == n_ranges
    assert effects.loc[ranged, "derivation"].str.contains(kinds).all()
    got, ref = rows(sc.name), rows(DEFAULT_NAME)
    # awareness has ranges (refs 163, 166, 167): fewer effects, a different estimate
    assert got.loc["awareness", "k_effects"] < ref.loc["awareness", "k_effects"]
    assert got.loc["awareness", "estimate"] != ref.loc["awareness", "estimate"]
    pd.testing.assert_frame_equal(got[POOLED], pooled_reference(effects).loc[LEVELS, POOLED],
                                  check_exact=True)


@pytest.mark.parametrize(
    ("name", "study_ids"),
    [
        ("without the preprint", {"pietri2021"}),
        ("without Bonam et al. (2019)", {"bonam2019"}),
        ("without active comparators", {"noland2024", "lowery2012", "dietze2020"}),
    ],
)
def test_leave_out_scenarios_drop_those_studies(name, study_ids):
    effects = scenario_effects(studies(), scenario(name))
    assert not set(effects["study_id"]) & study_ids
    assert set(effects["study_id"]) | study_ids == set(studies()["study_id"])
    got, ref = rows(name), rows(DEFAULT_NAME)
    targets = studies().drop_duplicates("study_id").set_index("study_id")["components"]
    for level in LEVELS:
        lost = sum(level == "overall" or level in targets[s].split(";") for s in study_ids)
        assert got.loc[level, "k_studies"] == ref.loc[level, "k_studies"] - lost, level
        if lost:
            assert "left out: " in got.loc[level, "note"]
        elif ref.loc[level, "k_studies"] > 0:
            assert got.loc[level, "estimate"] == ref.loc[level, "estimate"]
    pd.testing.assert_frame_equal(got[POOLED], pooled_reference(effects).loc[LEVELS, POOLED],
                                  check_exact=True)


def test_preprint_note_names_it_where_it_counted():
    got = rows("without the preprint")
    for level in ["awareness", "action_orientation", "overall"]:
        assert got.loc[level, "note"].endswith("left out: Pietri et al. (2021)")
    assert "left out" not in str(got.loc["authentic_motivation", "note"])


def test_arms_scenario_splits_total_n_in_two():
    sc = next(s for s in ally.table2_scenarios() if s.changes.get("arms_policy") == "two")
    effects = scenario_effects(studies(), sc)
    n = effects.merge(studies().drop_duplicates("study_id")[["study_id", "n"]], on="study_id")
    np.testing.assert_allclose(n["n1"], n["n"] / 2)
    stated = ma.compute_effects(studies())
    changed = set(stated.loc[~np.isclose(stated["vi"], effects["vi"], equal_nan=True),
                             "study_id"])
    assert changed == set(studies().loc[studies()["arms"] != 2, "study_id"])
    assert rows(sc.name).loc["awareness", "estimate"] != rows(DEFAULT_NAME).loc[
        "awareness", "estimate"]


def test_design_scenario_uses_prepost_variances_for_prepost_rows():
    sc = next(s for s in ally.table2_scenarios() if s.changes.get("design_policy") == "prepost")
    effects = scenario_effects(studies(), sc)
    prepost = (effects["design"] == "prepost").to_numpy()
    assert prepost.any()
    assert effects.loc[prepost, "derivation"].str.contains("pre-post").all()
    assert not effects.loc[~prepost, "derivation"].str.contains("pre-post").any()
    between = ma.compute_effects(studies())
    assert not np.isclose(effects["vi"], between["vi"])[prepost].any()
    np.testing.assert_array_equal(effects["vi"][~prepost], between["vi"][~prepost])


def test_no_studies_component_is_a_nan_row_in_every_scenario():
    empty = table()[table()["component"] == "all_inclusivity"]
    assert (empty["k_studies"] == 0).all() and empty["estimate"].isna().all()


def test_custom_scenarios_and_bad_input():
    custom = [Scenario("base", DEFAULT_GROUP),
              Scenario("rho 0.3, no preprint", "mixed", {"rho": 0.3},
                       leave_out=("peer_reviewed", False))]
    t = sensitivity_analysis(studies(), custom, levels=["awareness"], overall=False)
    assert list(t["scenario"]) == ["base", "rho 0.3, no preprint"]
    assert list(t["component"]) == ["awareness", "awareness"]
    assert t["k_studies"].tolist() == [7, 6]
    with pytest.raises(ValueError, match="unique"):
        sensitivity_analysis(studies(), [custom[0], custom[0]])
    with pytest.raises(ValueError, match="unknown setting"):
        sensitivity_analysis(studies(), [Scenario("x", "g", {"tau": 1})])
    with pytest.raises(ValueError, match="do not have"):
        sensitivity_analysis(studies(), [Scenario("x", "g", leave_out=("nope", 1))])
    with pytest.raises(ValueError, match="empty"):
        sensitivity_analysis(studies(), [])
    with pytest.raises(ValueError, match="range_policy"):
        sensitivity_analysis(studies(), [Scenario("x", "g", {"range_policy": "mean"})])


def test_committed_results_are_current():
    committed = pd.read_csv(ROOT / "results" / "sensitivity.csv")
    fresh = table()
    assert list(committed.columns) == SENSITIVITY_COLUMNS
    for column in ["scenario", "scenario_group", "component", "k_studies", "k_effects"]:
        assert committed[column].tolist() == fresh[column].tolist()
    assert committed["note"].fillna("").tolist() == fresh["note"].tolist()
    numbers = ["estimate", "se", "ci_low", "ci_high", "df", "pvalue"]
    np.testing.assert_allclose(committed[numbers], fresh[numbers], rtol=1e-7, atol=1e-12)
    summary = (ROOT / "results" / "summary.md").read_text(encoding="utf-8")
    assert sensitivity_markdown(committed, labels=ally.LABELS) in summary


# --- the Markdown verdicts --------------------------------------------------------------


def paragraph(text: str, component: str) -> str:
    name = "All effects" if component == "overall" else ma.level_label(component, ally.LABELS)
    return next(p for p in text.split("\n\n") if p.startswith(f"**{name}**"))


@pytest.mark.parametrize("component", [c for c in LEVELS if c != "all_inclusivity"])
def test_markdown_statements_follow_from_the_table(component):
    t = table()
    text = paragraph(sensitivity_markdown(t, labels=ally.LABELS), component)
    r = t[t["component"] == component]
    n = len(r)
    excludes = (r["ci_low"] > 0) | (r["ci_high"] < 0)
    m = int(excludes.sum())
    if m == n:
        assert f"The 95% CI excludes 0 in all {n} analyses." in text
    else:
        failing = ", ".join(r.loc[~excludes, "scenario"])
        assert f"The 95% CI excludes 0 in {m} of {n} analyses; not in: {failing}." in text
    positive = int((r["estimate"] > 0).sum())
    assert (f"positive in all {n} analyses" in text) == (positive == n)
    lo, hi = r.loc[r["estimate"].idxmin()], r.loc[r["estimate"].idxmax()]
    assert (f"from {lo['estimate']:.2f} ({lo['scenario']}) to {hi['estimate']:.2f} "
            f"({hi['scenario']})") in text
    small = r.loc[(r["model"] == "che") & (r["df"] < 4), "scenario"].tolist()
    assert small == r.loc[r["note"].str.contains(NOTE_SMALL_DF, regex=False), "scenario"].tolist()
    if 0 < len(small) <= 3:
        assert f"unreliable, in: {', '.join(small)}." in text
    elif small:
        assert f"In {len(small)} of the {n} analyses the robust df are below 4" in text
    d = r[r["scenario"] == DEFAULT_NAME].iloc[0]
    assert f"default: g = {d['estimate']:.2f}, 95% CI [{d['ci_low']:.2f}" in text
    survives = "survives every choice examined" in text
    assert survives == (m == n)
    assert ("tentative" in text or "fragile" in text) == (r["k_studies"].max() < 5 or
                                                          2 * len(small) > n)


def test_markdown_on_table_2_in_words():
    text = sensitivity_markdown(table(), labels=ally.LABELS)
    assert text.startswith("## Sensitivity of the conclusions\n")
    assert "under 16 analyses" in text
    assert "**All-inclusivity**: no study targets it in any of the 16 analyses" in text
    assert "survives every choice examined." in paragraph(text, "overall")
    assert "fragile" in paragraph(text, "authentic_motivation")


def synthetic(estimates, lows, highs, k=(6,), notes=("",)) -> pd.DataFrame:
    n = len(estimates)
    return pd.DataFrame({
        "scenario": [DEFAULT_NAME] + [f"alt {i}" for i in range(1, n)],
        "scenario_group": [DEFAULT_GROUP] + ["alternatives"] * (n - 1),
        "component": "awareness", "k_studies": list(k) * (n // len(k)),
        "k_effects": 10, "estimate": estimates, "se": 0.1, "ci_low": lows, "ci_high": highs,
        "df": 10.0, "pvalue": 0.01, "note": list(notes) * (n // len(notes)),
    })


def test_verdicts_on_constructed_tables():
    robust = synthetic([0.5, 0.4, 0.6], [0.2, 0.1, 0.3], [0.8, 0.7, 0.9])
    text = level_verdict("awareness", robust)
    assert "The 95% CI excludes 0 in all 3 analyses." in text
    assert text.endswith("(a positive effect whose 95% CI excludes 0) survives every choice "
                         "examined.")
    few = synthetic([0.5, 0.4, 0.6], [0.2, 0.1, 0.3], [0.8, 0.7, 0.9], k=(3,))
    assert "at most 3 studies; read it as tentative." in level_verdict("awareness", few)
    flaky = synthetic([0.5, 0.1, 0.6], [0.2, -0.2, 0.3], [0.8, 0.4, 0.9])
    text = level_verdict("awareness", flaky)
    assert "in 2 of 3 analyses; not in: alt 1." in text
    assert "The direction (positive) is stable" in text
    flips = synthetic([0.5, -0.1, 0.6], [0.2, -0.4, 0.3], [0.8, 0.2, 0.9])
    assert "Neither the direction" in level_verdict("awareness", flips)
    negative = synthetic([-0.5, -0.4], [-0.8, -0.7], [-0.2, -0.1])
    assert "a negative effect" in level_verdict("awareness", negative)


def test_verdict_names_empty_and_single_study_analyses():
    frame = synthetic([0.5, 0.45, np.nan], [0.2, 0.1, np.nan], [0.8, 0.8, np.nan],
                      k=(6,), notes=("",))
    frame["k_studies"] = [6, 1, 0]
    frame.loc[1, "note"] = NOTE_SINGLE_STUDY
    text = level_verdict("awareness", frame)
    assert "No study is left in: alt 2." in text
    assert "Only one study is left in: alt 1;" in text
    assert "The 95% CI excludes 0 in 2 of 3 analyses." in text
    assert "survives every choice examined" in text
    with pytest.raises(ValueError, match="missing column"):
        sensitivity_markdown(frame.drop(columns="note"))


# --- the plot ---------------------------------------------------------------------------


def test_sensitivity_plot_panels_rows_and_reference_lines():
    from matplotlib.figure import Figure

    fig = ma.sensitivity_plot(table())
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == len(LEVELS)
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    groups = list(dict.fromkeys(g for g in table()["scenario_group"] if g != DEFAULT_GROUP))
    assert labels[0] == DEFAULT_NAME.capitalize()
    assert len(labels) == 16 + len(groups)
    assert [lab for lab in labels if lab in groups] == groups
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "Awareness\n(k = 7 studies)" and titles[-1].startswith("All effects")
    empty = axes[LEVELS.index("all_inclusivity")]
    assert any("no studies" in t.get_text() for t in empty.texts)
    default = rows(DEFAULT_NAME)
    aware = axes[0]
    xs = [line.get_xdata()[0] for line in aware.get_lines()]
    assert 0.0 in xs and default.loc["awareness", "estimate"] in xs
    dashed = [ln for ln in aware.get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_xdata()[0] for ln in dashed] == [0.0]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_sensitivity_plot_into_given_axes_and_bad_input():

    import matplotlib.pyplot as plt

    one = table()[table()["component"] == "overall"]
    fig, ax = plt.subplots()
    assert ma.sensitivity_plot(one, ax=ax) is fig
    with pytest.raises(ValueError, match="one Axes per component"):
        ma.sensitivity_plot(table(), ax=ax)
    with pytest.raises(ValueError, match="missing column"):
        ma.sensitivity_plot(one.drop(columns="estimate"))
    with pytest.raises(ValueError, match="no rows"):
        ma.sensitivity_plot(one.iloc[:0])
    plt.close("all")



def test_leave_out_labels_name_the_study_by_its_authors():
    """A reader of the sensitivity plot sees who was left out, not a reference number;
    the name is the data's own citation for ref 73 (so it follows a corrected CSV)."""
    names = [s.name for s in ally.table2_scenarios()]
    assert not [n for n in names if "ref " in n]
    bonam = studies()[studies()["ref"] == 73].iloc[0]
    assert bonam["citation"] == "Bonam et al. (2019)"  # the year is part of the citation
    expected = f"without {bonam['citation']}"
    assert expected in names
    sc = scenario(expected)
    assert sc.leave_out == ("ref", 73)
