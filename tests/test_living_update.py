"""A living update: declaring words, appending a study, and what the outputs then say.

The end-to-end test appends one new study to a temporary copy of data/table2.csv — it
targets all-inclusivity (no study did before), uses a newly declared technique and the
documentary technique (which makes the robust HTZ test of technique differences
undefined: its denominator df would be -1.56), has a blank ``table_group`` and reports a
d and a t — then runs the review's pipeline and checks every claim the issue lists.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.allyship import pipeline
from metaally.data.files import atomic_write
from metaally.data.reading import load_studies, validate_file
from metaally.data.studies import StudiesValidationError
from metaally.data.vocabulary import load_vocabulary
from metaally.models.pooling import UNGROUPED, differences_by, pool_by
from metaally.models.printing import fmt_count
from metaally.report.tables import write_csv

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
EFFECTS = pd.read_csv(ROOT / "results" / "effects.csv")
NEW_STUDY = "newman2025"


# --- atomic outputs ----------------------------------------------------------------------


def _no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.startswith(".") and
                p.name.endswith(".tmp")]


def test_atomic_write_killed_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out" / "table.csv"
    atomic_write(target, "old content\n")

    def killed(tmp: Path) -> None:
        tmp.write_text("half of the new con")
        raise KeyboardInterrupt  # the run is killed while the file is being written

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, killed)
    assert target.read_text() == "old content\n"
    assert _no_temp_files(target.parent)
    atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n" and _no_temp_files(target.parent)


def test_write_csv_and_save_figure_are_atomic(tmp_path, monkeypatch):
    path = write_csv(pd.DataFrame({"a": [1.0]}), tmp_path / "t.csv")
    before = path.read_bytes()

    def broken_to_csv(self, target, **kwargs):
        Path(target).write_text("a\n0.3")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError):
        write_csv(pd.DataFrame({"a": [2.0]}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and _no_temp_files(tmp_path)

    fig = ma.funnel_plot(EFFECTS.iloc[:5])
    png, svg, *_ = ma.save_figure(fig, tmp_path / "fig")
    old = png.read_bytes()
    original = matplotlib.figure.Figure.savefig

    def crash_on_png(self, target, **kwargs):
        if kwargs.get("format") == "png":
            Path(target).write_bytes(b"\x89PNG truncated")
            raise MemoryError
        return original(self, target, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", crash_on_png)
    with pytest.raises(MemoryError):
        ma.save_figure(fig, tmp_path / "fig")
    assert png.read_bytes() == old and svg.exists() and _no_temp_files(tmp_path)


# --- vocabularies ------------------------------------------------------------------------


def _copy_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("table2.csv", "vocabulary.csv"):
        shutil.copyfile(DATA / name, data / name)
    return data


def test_the_packaged_vocabulary_is_the_data_file():
    assert load_vocabulary(DATA / "vocabulary.csv").words == ally.review.PACKAGED_VOCABULARY.words
    assert ally.COMPONENTS == ("awareness", "authentic_motivation", "action_orientation",
                               "all_inclusivity")
    assert ally.LABELS["all_inclusivity"] == "All-inclusivity"
    assert ally.OUTCOME_COMPONENTS[-1] == "other"


def test_an_unknown_word_says_where_to_declare_it(tmp_path):
    data = _copy_data(tmp_path)
    with open(data / "table2.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    row = dict(rows[0], technique="workshop")
    with open(data / "table2.csv", "a", encoding="utf-8", newline="") as fh:
        csv.DictWriter(fh, header, lineterminator="\n").writerow(row)
    problems = validate_file(data / "table2.csv")
    assert len(problems) == 1
    assert re.match(rf"{re.escape(str(data / 'table2.csv'))}:\d+: column 'technique': "
                    r"unknown technique 'workshop' \(", problems[0])
    assert f"declare it in {data / 'vocabulary.csv'}" in problems[0]
    # declaring it is all it takes: the row validates and the word is a level of every table
    with open(data / "vocabulary.csv", "a", encoding="utf-8") as fh:
        fh.write("technique,workshop,Workshop,a facilitated group session\n")
    assert validate_file(data / "table2.csv") == []
    vocabulary = load_vocabulary(data / "vocabulary.csv")
    effects = ma.compute_effects(load_studies(data / "table2.csv"))
    table = pool_by(effects, "technique", levels=vocabulary.levels("technique"))
    assert table.loc[table["level"] == "workshop", "k_studies"].tolist() == [1]
    groups = ma.pool_groups(effects, "technique", levels=vocabulary.levels("technique"),
                            labels=vocabulary.labels())
    assert groups[-1].label == "Workshop"
    # a vocabulary given as an argument wins over the file beside the CSV
    other = tmp_path / "other.csv"
    shutil.copyfile(DATA / "vocabulary.csv", other)
    assert validate_file(data / "table2.csv", vocabulary=other)[0].count("workshop") == 1


def test_a_malformed_vocabulary_names_its_lines(tmp_path):
    path = tmp_path / "vocabulary.csv"
    path.write_text("column,word,label,description\n"
                    "technique,video,Video,x\n"
                    "techniques,podcast,,\n"
                    "technique,Video Clip,,\n"
                    "technique,video,Video,again\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_vocabulary(path)
    lines = str(err.value).splitlines()
    assert [line.split(": column ")[0] for line in lines] == [f"{path}:3", f"{path}:4",
                                                              f"{path}:5"]
    assert "unknown column 'techniques'" in lines[0]
    assert "declared again (first on line 2)" in lines[2]
    studies = tmp_path / "studies.csv"
    shutil.copyfile(DATA / "table2.csv", studies)
    with pytest.raises(StudiesValidationError):
        load_studies(studies)


def test_without_a_vocabulary_file_any_lower_case_word_is_taken(tmp_path):
    studies = tmp_path / "studies.csv"
    text = (DATA / "table2.csv").read_text(encoding="utf-8").replace("podcast", "audio_show")
    studies.write_text(text, encoding="utf-8")
    loaded = load_studies(studies)
    assert "audio_show" in set(loaded["technique"])
    studies.write_text(text.replace("audio_show", "Audio Show"), encoding="utf-8")
    problem = validate_file(studies)[0]
    assert "column 'technique': 'Audio Show' is not a valid word" in problem


# --- small results: counts, tests of differences, ungrouped rows ---------------------------


def test_count_grammar():
    assert [fmt_count(n, "study") for n in (0, 1, 2)] == ["0 studies", "1 study", "2 studies"]
    assert fmt_count(1, "effect size") == "1 effect size"
    assert fmt_count(3, "day") == "3 days"


def _with_new_study(technique: str, table_group: str | None = None) -> pd.DataFrame:
    new = EFFECTS.iloc[[0, 0]].copy()
    new["study_id"], new["es_id"] = NEW_STUDY, [f"{NEW_STUDY}_1", f"{NEW_STUDY}_2"]
    new["technique"], new["components"] = technique, "all_inclusivity"
    new["table_group"] = table_group
    new["yi"], new["vi"], new["included"] = [0.3, 0.5], [0.02, 0.03], True
    return pd.concat([EFFECTS, new], ignore_index=True)


def test_an_undefined_htz_test_falls_back_to_the_model_based_test():
    result = differences_by(_with_new_study("documentary"), "technique")
    frame = result.to_frame()
    test = frame[frame["row_type"] == "test"].iloc[0]
    assert result.inference == "model" and test["inference"] == "model"
    assert math.isnan(test["df2"]) and 0 < test["pvalue"] < 1
    assert "its denominator df is -1.56" in result.note
    assert test["k_studies"] == 7 and test["df1"] == 5
    assert set(frame.loc[frame["row_type"] == "left_out", "level"]) == set(result.left_out)
    assert (frame.loc[frame["row_type"] == "coefficient", "df"].isna()).all()


def test_a_blank_group_is_pooled_as_ungrouped():
    effects = _with_new_study("video", table_group=None)
    table = ally.pool_by_component(effects)
    groups = table[table["grouping"] == "table_group"]
    assert groups["component"].iloc[-1] == UNGROUPED
    assert groups["k_studies"].iloc[-1] == 1
    assert groups["k_effects"].sum() >= len(effects[effects["included"]])
    assert table.loc[table["component"] == "all_inclusivity", "k_studies"].item() == 1


# --- the whole update --------------------------------------------------------------------


@pytest.fixture(scope="module")
def updated(tmp_path_factory) -> Path:
    """The pipeline's tables after appending one study to a copy of the project."""
    root = tmp_path_factory.mktemp("project")
    data = _copy_data(root)
    shutil.copytree(ROOT / "results", root / "results")
    with open(data / "vocabulary.csv", "a", encoding="utf-8") as fh:
        fh.write("technique,workshop,Workshop,a facilitated group session\n")
    with open(data / "table2.csv", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    common = {
        "study_id": NEW_STUDY, "ref": "", "citation": "Newman et al. (2025)", "year": "2025",
        "table_group": "", "components": "all_inclusivity",
        "intervention": "A documentary and a workshop", "technique": "documentary;workshop",
        "participants": "Employees", "n": "120", "arms": "2", "comparison": "waitlist",
        "comparator": "control", "design": "between", "outcome": "Inclusive behaviour",
        "direction": "higher", "outcome_component": "all_inclusivity",
        "outcome_domain": "intention_behaviour", "timepoint": "post",
        "role": "intervention_effect", "value_low": "", "value_high": "",
        "peer_reviewed": "true", "notes": "",
    }
    rows = [dict(common, metric="d", value="0.42"),
            dict(common, metric="t", value="2.1", outcome="Inclusive climate")]
    with open(data / "table2.csv", "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, header, lineterminator="\n", extrasaction="ignore")
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in header})
    assert validate_file(data / "table2.csv") == []
    os.environ.setdefault("MPLBACKEND", "Agg")
    for step in ("effects_table", "pool_by_component", "pool_by_technique", "sensitivity",
                 "small_study", "influence", "summary_report", "changes"):
        pipeline.run(step, root)
    return root / "results"


def test_update_pools_the_new_study_everywhere(updated):
    effects = pd.read_csv(updated / "effects.csv")
    assert (effects["study_id"] == NEW_STUDY).sum() == 2
    pooled = pd.read_csv(updated / "pooled_by_component.csv")
    row = pooled[pooled["component"] == "all_inclusivity"].iloc[0]
    assert row["k_studies"] == 1 and row["k_effects"] == 2 and np.isfinite(row["estimate"])
    groups = pooled[pooled["grouping"] == "table_group"]
    assert groups["component"].tolist()[-1] == UNGROUPED
    techniques = pd.read_csv(updated / "pooled_by_technique.csv")
    assert techniques.loc[techniques["level"] == "workshop", "k_studies"].item() == 1
    summary = (updated / "summary.md").read_text(encoding="utf-8")
    assert "| Workshop | 1 | 2 |" in summary and "| Ungrouped | 1 | 2 |" in summary
    assert "| All-inclusivity | 1 | 2 |" in summary


def test_update_reports_no_negative_df_blank_p_or_unsupported_claim(updated):
    for name in ("component_differences.csv", "technique_differences.csv"):
        frame = pd.read_csv(updated / name)
        test = frame[frame["row_type"] == "test"]
        assert not (test["df2"] <= 0).any() and not (test["df1"] <= 0).any(), name
        assert not (test["statistic"].notna() & test["pvalue"].isna()).any(), name
    technique = pd.read_csv(updated / "technique_differences.csv")
    test = technique[technique["row_type"] == "test"].iloc[0]
    assert test["inference"] == "model" and test["pvalue"] < 0.05  # model-based, p < 0.05
    summary = (updated / "summary.md").read_text(encoding="utf-8")
    assert "evidence that at least one technique differs" not in summary
    assert "so this is not reliable evidence that the techniques differ" in summary
    assert not re.search(r"F\(\d+, -", summary) and "nan" not in summary
    assert not re.search(r"\b1 studies\b|\bat most 1 studies\b|\b1 effects\b", summary)


def test_update_single_study_sensitivity_paragraph_is_short(updated):
    summary = (updated / "summary.md").read_text(encoding="utf-8")
    paragraph = next(p for p in summary.split("\n\n") if p.startswith("**All-inclusivity**"))
    assert "In all 16 analyses only one study is left" in paragraph
    assert "Only one study is left in:" not in paragraph
    assert "rho = 0.2, rho = 0.4" not in paragraph
    pooled = pd.read_csv(updated / "pooled_by_component.csv")
    g = pooled.loc[pooled["component"] == "all_inclusivity", "estimate"].item()
    assert f"It is {g:.2f} in every analysis with a study." in paragraph
    assert "rests on a single study; read it as tentative." in paragraph


def test_update_changes_md_lists_what_changed(updated):
    text = (updated / "changes.md").read_text(encoding="utf-8")
    assert "compared with the previous run (its copy in results/.previous/)" in text
    assert f"- Added: Newman et al. (2025) (`{NEW_STUDY}`), 2 effects (a new study)" in text
    assert "after: 12 studies, 51 effects (50 pooled)" in text
    pooled = pd.read_csv(updated / "pooled_by_component.csv")
    before = pd.read_csv(ROOT / "results" / "pooled_by_component.csv")
    overall = [frame[frame["grouping"] == "overall"].iloc[0] for frame in (before, pooled)]
    assert (f"| pooled_by_component.csv | All effects | {overall[0]['k_studies']} → "
            f"{overall[1]['k_studies']} | {overall[0]['estimate']:.2f} → "
            f"{overall[1]['estimate']:.2f} |") in text
    assert "- All-inclusivity (`pooled_by_component.csv`): first estimate, from 1 study" in text
    assert "| pooled_by_technique.csv | Workshop | — → 1 |" in text


def test_a_declared_component_appears_in_the_figures(tmp_path, monkeypatch):
    """A component declared in vocabulary.csv (no study yet) gets its own forest plot, a
    panel of the component forest plot, a row of the gap map and a row of the pooled table."""
    data = _copy_data(tmp_path)
    with open(data / "vocabulary.csv", "a", encoding="utf-8") as fh:
        fh.write("components,self_reflection,Self-reflection,reflecting on one's privilege\n")
    shutil.copytree(ROOT / "results", tmp_path / "results")
    saved: dict[str, matplotlib.figure.Figure] = {}
    monkeypatch.setattr(pipeline.Review, "save",
                        lambda self, fig, stem: saved.__setitem__(stem, fig))
    review = pipeline.Review(tmp_path)
    assert review.components[-1] == "self_reflection"
    for step in (pipeline.forest_plots, pipeline.evidence_gap_map):
        step(review)
    assert "forest_self_reflection" in saved
    panels = [ax.get_title(loc="left") for ax in saved["forest_by_component"].axes]
    assert "Self-reflection" in panels
    rows = [t.get_text() for t in saved["evidence_gap_map"].axes[0].get_yticklabels()]
    assert rows[-1].replace("\n", " ") == "Self-reflection"
    table = pd.read_csv(tmp_path / "results" / "effects.csv")
    pooled = ally.pool_by_component(table, components=review.components)
    assert pooled.loc[pooled["component"] == "self_reflection", "note"].item() == "no studies yet"
