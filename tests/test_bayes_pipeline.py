"""Bayesian estimates by coding column (bayes_by), the shrinkage forest plot, the report facts.

bayes_by must group effects exactly as pool_by does and equal direct fits of each group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.allyship.bayes_text import bayes_facts, bayes_sensitivity_table, bayes_sentences

ROOT = Path(__file__).resolve().parents[1]
EFFECTS = pd.read_csv(ROOT / "results" / "effects.csv")

pytestmark = pytest.mark.usefixtures("no_show_and_close")


@pytest.fixture(scope="module")
def by_component() -> pd.DataFrame:
    return ma.bayes_by(EFFECTS, "components", ally.COMPONENTS)


def test_groups_as_pool_by(by_component) -> None:
    pooled = ma.pool_by(EFFECTS, "components", levels=ally.COMPONENTS, overall=False)
    assert list(by_component["level"]) == list(pooled["level"])
    assert list(by_component["k_studies"]) == list(pooled["k_studies"])
    assert list(by_component["k_effects"]) == list(pooled["k_effects"])
    empty = by_component.set_index("level").loc["all_inclusivity"]
    assert empty["note"] == "no studies yet" and np.isnan(empty["estimate"])


def test_rows_equal_direct_fits(by_component) -> None:
    row = by_component.set_index("level").loc["authentic_motivation"]
    data = EFFECTS[EFFECTS["included"] & EFFECTS["components"].str.contains("authentic_motivation")]
    fit = ma.bayes_multilevel(data["yi"], data["vi"], data["study_id"], mu_prior=ma.SMD_MU_PRIOR)
    bma = ma.bayes_model_average(data["yi"], data["vi"], data["study_id"])
    assert row["model"] == "che"
    assert row["estimate"] == pytest.approx(fit.estimate, rel=1e-12)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx([fit.ci_low, fit.ci_high], rel=1e-12)
    assert row["p_gt_0.2"] == pytest.approx(fit.prob_greater(0.2), rel=1e-12)
    assert row["bf_effect"] == pytest.approx(bma.bf_effect, rel=1e-12)
    assert row["bf_heterogeneity"] == pytest.approx(bma.bf_heterogeneity, rel=1e-12)


def test_single_effect_studies_use_the_univariate_model() -> None:
    data = pd.DataFrame({"study_id": ["a", "b", "c"], "es_id": [1, 1, 1],
                         "yi": [0.2, 0.4, 0.1], "vi": [0.02, 0.03, 0.04], "included": True,
                         "technique": "x"})
    row = ma.bayes_by(data, "technique").iloc[0]
    fit = ma.bayes_random_effects(data["yi"], data["vi"], mu_prior=ma.SMD_MU_PRIOR)
    assert row["model"] == "univariate"
    assert row["estimate"] == pytest.approx(fit.estimate, rel=1e-12)


def test_shrinkage_panels_draw_every_study() -> None:
    data = EFFECTS[EFFECTS["included"] & EFFECTS["components"].str.contains("action")]
    fit = ma.bayes_fit(data)
    fig = ma.shrinkage_panels([fit, fit], ["A", "B"])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[: fit.n_clusters] == [str(s) for s in fit.study]
    assert any("P(μ > 0)" in ax.get_title(loc="left") for ax in fig.axes)
    single = ma.shrinkage_plot(fit, labels={s: s.upper() for s in fit.study})
    assert [t.get_text() for t in single.axes[0].get_yticklabels()][0] == fit.study[0].upper()
    with pytest.raises(ValueError, match="titles"):
        ma.shrinkage_panels([fit], ["A", "B"])


def test_report_facts_and_sentences(by_component) -> None:
    sensitivity = pd.DataFrame({
        "grouping": "component", "level": "awareness", "p_gt_0": [0.97, 0.99, 0.98],
        "estimate": [0.4, 0.5, 0.45],
    })
    facts = bayes_facts(by_component.assign(grouping="component"), sensitivity)
    aware = next(f for f in facts if f.level == "awareness")
    row = by_component.set_index("level").loc["awareness"]
    assert aware.median == row["estimate"] and aware.p_gt_0 == row["p_gt_0"]
    assert (aware.sens_p_gt_0_low, aware.sens_p_gt_0_high) == (0.97, 0.99)
    text = bayes_sentences(facts)
    assert "Awareness" in text and "All-inclusivity" in text and "no studies yet" in text
    assert f"{row['estimate']:.2f}" in text


def test_sensitivity_table_markdown() -> None:
    data = EFFECTS[EFFECTS["included"] & EFFECTS["components"].str.contains("authentic")]
    sens = ma.bayes_prior_sensitivity(data["yi"], data["vi"], data["study_id"]).assign(
        grouping="component", level="authentic_motivation")
    lines = bayes_sensitivity_table(sens).splitlines()
    assert len(lines) == 2 + len(sens)
    first = sens.iloc[0]
    assert f"{first['estimate']:.2f} ({first['ci_low']:.2f} to {first['ci_high']:.2f})" in lines[2]
    assert lines[3].endswith("| — |")  # flat mu prior: no Bayes factor
