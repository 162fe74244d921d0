"""The review's techniques as a network: comparator_technique data rules, the parts of Table 2's
network, an added head-to-head study updating the results, the figures and the sentences."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from network_reference import fit

import metaally as ma
from metaally.allyship.network_text import (
    NetworkFacts,
    analyse,
    network_facts,
    network_sentences,
    node_label,
    technique_network,
)
from metaally.data.reading import validate_file

# the parts of Table 2 without control have one contrast per comparison: tau2 is set to 0
pytestmark = pytest.mark.filterwarnings("ignore:tau2 is not identified:RuntimeWarning")

ROOT = Path(__file__).resolve().parents[1]
TABLE2 = ROOT / "data" / "table2.csv"


def _table2() -> tuple[pd.DataFrame, pd.DataFrame]:
    studies = ma.load_studies(TABLE2)
    return studies, ma.compute_effects(studies)


# ------------------------------------------------------------------ the column


def _write_variant(tmp_path: Path, line: int, value: str, column: str = "comparator_technique"
                   ) -> Path:
    rows = list(csv.reader(TABLE2.open(newline="", encoding="utf-8")))
    rows[line - 1][rows[0].index(column)] = value
    path = tmp_path / "variant.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    shutil.copy(TABLE2.parent / "vocabulary.csv", tmp_path / "vocabulary.csv")
    return path


@pytest.mark.parametrize(
    ("line", "value", "message"),
    [
        (2, "podcast", "is 'podcast' but comparator is control (control)"),
        (31, "control", "is control but comparator is active"),
        (31, "", "is blank for an active comparator"),
        (2, "cinema", "unknown comparator_technique 'cinema'"),
    ],
    ids=["control_row_names_a_technique", "active_row_says_control", "blank_active",
         "unknown_word"],
)
def test_comparator_technique_rules(tmp_path: Path, line: int, value: str, message: str) -> None:
    problems = validate_file(_write_variant(tmp_path, line, value))
    assert len(problems) == 1
    assert f":{line}: column 'comparator_technique': " in problems[0]
    assert message in problems[0]


def test_blank_means_control_for_a_control_row(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, 2, "")
    assert validate_file(path) == []
    studies = ma.load_studies(path)
    network = technique_network(studies, ma.compute_effects(studies))
    first = studies.iloc[0]
    row = network.frame[network.frame["es_id"].str.startswith(first["study_id"])].iloc[0]
    assert row["treat2"] == "control"


def test_association_row_may_leave_it_blank() -> None:
    studies = ma.load_studies(TABLE2)
    association = studies[studies["role"] == "association"]
    assert (association["comparator_technique"].fillna("") == "").all()
    assert validate_file(TABLE2) == []


def test_active_comparators_are_coded_from_table2() -> None:
    studies = ma.load_studies(TABLE2)
    active = studies[studies["comparator"] == "active"]
    coded = dict(zip(active["study_id"], active["comparator_technique"], strict=False))
    assert coded == {"noland2024": "stereotype_confrontation",
                     "lowery2012": "reading_disadvantage", "dietze2020": "infographic"}
    contrasts = studies[(studies["comparator"] == "control")
                        & (studies["role"] == "intervention_effect")]
    assert set(contrasts["comparator_technique"]) == {"control"}


# ------------------------------------------------------------------ the network


def test_table2_network_has_three_named_parts() -> None:
    net = technique_network(*_table2())
    fits = analyse(net, "all outcomes")
    assert [f.nodes for f in fits][1:] == [
        ["reading_disadvantage", "reading_privilege", "stereotype_confrontation"],
        ["infographic"]]
    assert "control" in fits[0].nodes and fits[0].result is not None
    assert fits[2].result is None and "compared only with itself" in fits[2].reason
    # every included contrast of Table 2 is in the network, once
    studies, effects = _table2()
    assert len(net.frame) == int(effects["included"].sum())


def test_multi_arm_rows_share_their_control_arm() -> None:
    """Ref 161 (four arms, one control): its Story and Expert rows at one time point share the
    control arm (Gleser & Olkin covariance > 0), and are not treated as independent."""
    net = technique_network(*_table2())
    f = net.frame
    moss = np.flatnonzero((f["study_id"] == "mossracusin2018").to_numpy())
    story = [i for i in moss if f.loc[i, "treat1"] == "story_video"]
    expert = [i for i in moss if f.loc[i, "treat1"] == "expert_video"]
    n_control = f.loc[story[0], "n2"]
    assert net.V[story[0], expert[0]] >= 1.0 / n_control
    others = np.setdiff1d(np.arange(len(f)), moss)
    assert np.all(net.V[np.ix_(moss, others)] == 0.0)


def test_adding_a_head_to_head_study_updates_the_network() -> None:
    """A new study comparing podcast with documentary head to head closes a loop: the
    podcast-documentary contrast moves, inconsistency can now be tested and split."""
    studies, effects = _table2()
    before = analyse(technique_network(studies, effects), "all")[0].result
    new = studies[studies["study_id"] == "bonam2019"].iloc[[0]].copy()
    new = new.assign(study_id="newstudy2025", ref=pd.NA, citation="New et al. (2025)",
                     year=2025, comparator="active", comparator_technique="documentary",
                     value=-0.3, source_line=999)
    studies2 = pd.concat([studies, new], ignore_index=True)
    after = analyse(technique_network(studies2, ma.compute_effects(studies2)), "all")[0].result
    pair = ("podcast", "documentary")
    old = before.league_table().set_index(["treat1", "treat2"]).loc[pair, "estimate"]
    changed = after.league_table().set_index(["treat1", "treat2"]).loc[pair, "estimate"]
    assert changed < old - 0.05
    assert before.design_by_treatment().df == 0 and after.design_by_treatment().df >= 1
    assert before.node_split().empty and not after.node_split().empty


# ------------------------------------------------------------------ text and figures


def test_sentences_say_what_the_facts_say() -> None:
    facts = NetworkFacts(
        parts=[["control", "podcast", "story_video"], ["infographic"]],
        main_nodes=["control", "podcast", "story_video"], k=7, n_studies=3, tau2=0.01,
        q=50.0, q_df=5, q_pvalue=1e-6, best="podcast", best_pscore=0.91,
        best_estimate=0.7, best_ci=(0.5, 0.9), ranking=[("podcast", 0.91)],
        single_study_nodes=["podcast"], inconsistency_df=0, inconsistency_stat=np.nan,
        inconsistency_pvalue=np.nan,
        separate_parts=[(["infographic"], "a single node, compared only with itself")],
        domain_best=[("attitude_bias", "story_video", 0.8, 2)])
    text = network_sentences(facts)
    assert "2 parts that are not connected" in text
    assert "Podcast ranks first (P-score 0.91; g = 0.70 vs control, 95% CI 0.50 to 0.90)" in text
    assert "1 of 2 techniques were tested in a single study each (Podcast)" in text
    assert "consistency cannot be checked" in text
    assert "QE = 50.0, df = 5, p < .001" in text
    assert "Not connected to control: Infographic" in text
    assert "Outcome domain attitude bias: Story video ranks first" in text


def test_facts_of_table2() -> None:
    studies, effects = _table2()
    net = technique_network(studies, effects)
    fits = analyse(net, "all")
    facts = network_facts(fits, {}, net)
    p = fits[0].result.pscores().drop("control")
    assert facts.best == p.idxmax()
    assert facts.best_pscore == pytest.approx(p.max())
    assert len(facts.parts) == 3
    assert node_label("expert_video;story_video") == "Expert video + story video"


@pytest.mark.parametrize("draw", ["network_graph", "league_heatmap", "network_forest",
                                  "ranking_plot"])
def test_figures_return_figures_and_accept_an_axes(draw: str) -> None:
    import matplotlib.pyplot as plt

    res = fit("hasselblad1998")
    args = (res.study, res.treat1, res.treat2) if draw == "network_graph" else (res,)
    fig = getattr(ma, draw)(*args)
    assert isinstance(fig, Figure)
    own, ax = plt.subplots()
    assert getattr(ma, draw)(*args, ax=ax) is own
    plt.close("all")


def test_network_graph_counts_studies_per_edge() -> None:
    from metaally.plots.network import network_edges

    res = fit("hasselblad1998")
    edges = network_edges(res.study, res.treat1, res.treat2).set_index(["treat_a", "treat_b"])
    three_arm = network_edges(["s1", "s1", "s2"], ["a", "b", "a"], ["control", "control", "b"])
    assert three_arm.values.tolist() == [["a", "b", 2], ["a", "control", 1],
                                         ["b", "control", 1]]
    assert edges["n_studies"].sum() == sum(
        len(s) * (len(s) - 1) // 2 for s in pd.DataFrame(
            {"s": res.study, "a": res.treat1, "b": res.treat2}).groupby("s").apply(
            lambda g: set(g["a"]) | set(g["b"]), include_groups=False))
    with pytest.raises(ValueError, match="center 'x' is not a node"):
        ma.network_graph(res.study, res.treat1, res.treat2, center="x")


def test_unspecified_comparator_is_a_node_of_its_own_per_study() -> None:
    """Two studies whose comparison arms are not described are never linked through them."""
    studies, _ = _table2()
    studies = studies.copy()
    for sid in ("birnbaum2024", "lyubkyk2024"):
        rows = (studies["study_id"] == sid) & (studies["role"] == "intervention_effect")
        studies.loc[rows, ["comparator", "comparator_technique"]] = ["active", "unspecified"]
    net = technique_network(studies, ma.compute_effects(studies))
    nodes = set(net.frame["treat2"])
    assert {"unspecified (birnbaum2024)", "unspecified (lyubkyk2024)"} <= nodes
    parts = ma.network_components(net.frame["treat1"], net.frame["treat2"])
    assert ["testimonials", "unspecified (birnbaum2024)"] in parts
    assert ["leader_story", "unspecified (lyubkyk2024)"] in parts
