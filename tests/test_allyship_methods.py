"""The review's Methods text and PRISMA checklist: every number comes from the tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.allyship.methods import (
    fragility_text,
    methods_markdown,
    prisma_checklist,
    small_df_text,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    studies = ally.load_table2()
    effects = ma.compute_effects(studies)
    pooled = ally.pool_by_component(effects)
    findings = ma.summary_of_findings(effects, "components", levels=ally.COMPONENTS,
                                      participants=studies, overall=False)
    return studies, effects, pooled, findings


def test_fragility_sentence_per_component_counts_independent_refits(tables):
    _, effects, _, findings = tables
    text = fragility_text(findings)
    for component in ("authentic_motivation", "action_orientation"):
        group = ma.pool_groups(effects, "components", levels=[component])[0]
        count = 0
        for study in group.studies["study_id"]:
            rest = effects[effects["study_id"] != study]
            refit = ma.pool_groups(rest, "components", levels=[component])[0]
            count += refit.ci_low <= 0 <= refit.ci_high
        name = ma.level_label(component)
        assert (f"{name}: the CI includes 0 after leaving out any one of {count} of its "
                f"{group.k_studies} studies.") in text
    # the reading of Table 2: 3 of 4 and 2 of 4
    assert "any one of 3 of its 4" in text and "any one of 2 of its 4" in text


def test_small_df_rows_listed_from_every_table(tables):
    _, effects, pooled, _ = tables
    by_technique = ma.pool_by(effects, "technique", overall=False)
    text = small_df_text({"component": pooled[pooled["grouping"] == "component"],
                          "technique": by_technique})
    flagged = by_technique[(by_technique["df"] < 4) & (by_technique["k_studies"] >= 2)]
    assert len(flagged) > 0
    for level, df in zip(flagged["level"], flagged["df"], strict=True):
        assert f"technique {ma.level_label(level).lower()} (df = {df:.1f})" in text
    clean = small_df_text({"x": pd.DataFrame({"level": ["a"], "df": [9.0], "k_studies": [5]})})
    assert "No pooled row" in clean


def test_methods_states_source_inclusion_and_defaults(tables):
    studies, effects, pooled, findings = tables
    text = methods_markdown(studies, effects, pooled, findings)
    included = effects[effects["included"]]
    assert text.startswith("## Methods")
    assert "No systematic search was run" in text
    assert f"{len(included)} effects from {included['study_id'].nunique()} studies" in text
    active = sorted({int(r) for r in included.loc[included["comparator"] == "active", "ref"]})
    assert "refs " + ", ".join(map(str, active)) in text
    assert "ρ = 0.6" in text and "PET one-sided p =" in text
    assert "Every prediction interval includes 0." not in text  # authentic motivation's PI > 0


def test_prisma_items_complete_and_pointed(tables):
    checklist = prisma_checklist(*tables)
    assert list(checklist["item"]) == ["13a", "13b", "13c", "13d", "13e", "13f", "14", "15",
                                       "20a", "20b", "20c", "20d", "22"]
    assert checklist["where"].str.len().gt(0).all() and checklist["answer"].str.len().gt(0).all()
    row = checklist.set_index("item").loc["20b", "answer"]
    assert row.startswith("3 components pooled (k >= 2), 1 with no study")
