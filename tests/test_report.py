"""results/ writers: CSV format, summary.md content, the methods paragraph follows the settings."""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.allyship.report import methods_paragraph, summary_markdown
from metaally.diagnostics.sensitivity import AnalysisSettings
from metaally.report.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
EFFECTS = pd.read_csv(RESULTS / "effects.csv")


@pytest.fixture(scope="module")
def tables():
    pooled = ally.pool_by_component(EFFECTS)
    differences = ally.component_differences(EFFECTS).to_frame()
    return pooled, differences


def test_settings_defaults_are_the_package_defaults():
    settings = AnalysisSettings()
    effects_defaults = inspect.signature(ma.compute_effects).parameters
    pooling_defaults = inspect.signature(ally.pool_by_component).parameters
    for name in ["range_policy", "arms_policy", "design_policy", "prepost_r"]:
        assert getattr(settings, name) == effects_defaults[name].default
    for name in ["model", "rho", "method"]:
        assert getattr(settings, name) == pooling_defaults[name].default


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({}, "rho = 0.6"),
        ({}, "cluster-robust (CR2)"),
        ({}, "both of its endpoints"),
        ({"rho": 0.8}, "rho = 0.8"),
        ({"method": "ML"}, "estimated by ML"),
        ({"range_policy": "midpoint"}, "its midpoint only"),
        ({"arms_policy": "two"}, "divided evenly over two groups"),
        ({"design_policy": "prepost", "prepost_r": 0.7}, "r = 0.7"),
        ({"model": "aggregate"}, "Knapp-Hartung"),
        ({"model": "univariate"}, "ignores the dependence"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else v[:20],
)
def test_methods_paragraph_follows_the_settings(change, phrase):
    text = methods_paragraph(replace(AnalysisSettings(), **change), EFFECTS)
    assert phrase in text


def test_methods_paragraph_names_exclusions():
    text = methods_paragraph(AnalysisSettings(), EFFECTS)
    for citation in EFFECTS.loc[~EFFECTS["included"], "citation"].unique():
        assert citation in text
    everything = EFFECTS.assign(included=True)
    assert "No effect size was excluded" in methods_paragraph(AnalysisSettings(), everything)


def test_summary_has_every_table_and_caveat(tables):
    pooled, differences = tables
    text = summary_markdown(pooled, differences, EFFECTS, AnalysisSettings())
    for heading in ["## Pooled effect by targeted component", "## Pooled effect by Table 2 group",
                    "## All effects together", "## Do the components differ?", "## Model details"]:
        assert heading in text
    for label in ["Awareness", "Authentic motivation", "Action orientation", "All-inclusivity"]:
        assert f"| {label} |" in text
    assert "no studies yet" in text
    assert "HTZ Wald" in text
    awareness = pooled[pooled["component"] == "awareness"].iloc[0]
    assert f"| {awareness['estimate']:.2f} | [{awareness['ci_low']:.2f}, " in text
    if (pooled["df"] < 4).any():
        assert "robust CI unreliable (df < 4)" in text


def test_committed_results_are_current(tables):
    """results/ holds what the code produces from results/effects.csv (run `make figures`)."""
    pooled, differences = tables
    committed = pd.read_csv(RESULTS / "pooled_by_component.csv")
    assert list(committed.columns) == list(pooled.columns)
    numeric = pooled.select_dtypes("number").columns
    np.testing.assert_allclose(committed[numeric], pooled[numeric], rtol=1e-6, atol=1e-9)
    committed_diff = pd.read_csv(RESULTS / "component_differences.csv")
    np.testing.assert_allclose(committed_diff["pvalue"], differences["pvalue"], rtol=1e-6)
    summary = (RESULTS / "summary.md").read_text(encoding="utf-8")
    assert summary == summary_markdown(committed, committed_diff, EFFECTS, AnalysisSettings(),
                                       extra_sections=_committed_extra_sections())


def _committed_extra_sections() -> list[str]:
    """The sections analyses/summary_report.py adds, from the committed results tables."""
    from metaally.allyship.pipeline import Review, summary_sections

    return summary_sections(Review(ROOT))


@pytest.fixture(scope="module")
def technique_tables():
    by_technique = ma.pool_by(EFFECTS, "technique", levels=ally.TECHNIQUES)
    by_outcome = ma.pool_by(EFFECTS, "outcome_component", levels=ally.OUTCOME_COMPONENTS)
    differences = ma.differences_by(EFFECTS, "technique", levels=ally.TECHNIQUES).to_frame()
    return by_technique, by_outcome, differences


def test_committed_technique_tables_are_current(technique_tables):
    names = ["pooled_by_technique", "pooled_by_outcome_component", "technique_differences"]
    for name, table in zip(names, technique_tables, strict=True):
        committed = pd.read_csv(RESULTS / f"{name}.csv")
        assert list(committed.columns) == list(table.columns), name
        numeric = table.select_dtypes("number").columns
        np.testing.assert_allclose(committed[numeric], table[numeric], rtol=1e-6, atol=1e-9,
                                   err_msg=name)


def test_what_works_section_is_careful_with_small_k(technique_tables):
    by_technique, by_outcome, differences = technique_tables
    text = ally.what_works_section(by_technique, by_outcome, differences)
    assert text.startswith("## What works best?\n")
    techniques = by_technique[by_technique["grouping"] == "technique"]
    for r in techniques.itertuples():  # every technique in the table, in vocabulary order
        assert f"| {ma.level_label(r.level)} | {r.k_studies} | {r.k_effects} |" in text
    single = techniques[techniques["k_studies"] == 1]
    for r in single.itertuples():
        assert f"{ma.level_label(r.level).lower()} (one study, g = {r.estimate:.2f})" in text
    assert "not ranked" in text and "is not evidence that the technique works better" in text
    assert "not evidence that the techniques work equally well" in text
    assert "No study measured all-inclusivity outcomes." in text
    for word in ["most effective", "best technique", "outperform"]:
        assert word not in text


def test_what_works_section_names_the_test_used(technique_tables):
    by_technique, by_outcome, differences = technique_tables
    text = ally.what_works_section(by_technique, by_outcome, differences)
    test = differences[differences["row_type"] == "test"].iloc[0]
    assert ("model-based" in test["level"]) == (test["inference"] == "model")
    if test["inference"] == "model":
        assert f"model-based Wald χ²({test['df1']:g})" in text
        assert "cluster-robust (CR2) test cannot be computed" in text
    robust = differences.copy()
    robust.loc[robust["row_type"] == "test", ["level", "df2", "inference"]] = [
        "all equal (HTZ Wald)", 6.5, "CR2"]
    text = ally.what_works_section(by_technique, by_outcome, robust)
    assert "HTZ Wald F(" in text and "cannot be computed" not in text


def test_write_csv_is_stable(tmp_path):
    frame = pd.DataFrame({"a": [1.0 / 3.0, 2e-7], "b": ["x", "y"]})
    path = ma.write_csv(frame, tmp_path / "sub" / "t.csv")
    assert path.read_bytes() == b"a,b\n0.33333333,x\n2e-07,y\n"


def test_markdown_table():
    frame = pd.DataFrame({"A": ["1", "x|y"], "B": ["2", "3"]})
    assert markdown_table(frame) == "| A | B |\n|---|---|\n| 1 | 2 |\n| x\\|y | 3 |"


def test_write_summary(tmp_path, tables):
    pooled, differences = tables
    path = ally.write_summary(tmp_path / "summary.md", pooled, differences, EFFECTS,
                            AnalysisSettings())
    assert path.read_text(encoding="utf-8").startswith("# metaally results")
