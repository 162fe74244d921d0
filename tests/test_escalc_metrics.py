"""The CSV metrics: every bad combination gets PATH:LINE: column and exit 2, and one
study of each metric appended to Table 2 gets metafor's yi and vi from compute_effects."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.cli import main
from metaally.data.reading import validate_file
from metaally.data.studies import CLUSTER_COLUMNS, METRIC_COLUMNS, METRICS

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "metrics"
REFERENCE = json.loads((ROOT / "tests" / "reference" / "escalc.json").read_text(encoding="utf-8"))
MESSAGE = re.compile(
    r"^(?P<path>.+):(?P<line>\d+): column '(?P<col>[^']+)': (?P<what>.+) \((?P<exp>.+)\)$"
)

# (fixture, column named, words of the message); the broken row is on line 3 of each file
BROKEN = [
    ("means_missing_sd2.csv", "sd2", "needed for metric 'means'"),
    ("means_sd_zero.csv", "sd1", "sd1 = 0 is not positive"),
    ("means_with_value.csv", "value", "not used by metric 'means'"),
    ("means_from_prepost_design.csv", "design", "metric means cannot come from a prepost design"),
    ("p_above_one.csv", "value", "p = 1.2 is out of range"),
    ("p_zero.csv", "value", "p = 0 is out of range"),
    ("f_negative.csv", "value", "F = -2 is out of range"),
    ("f_without_sign.csv", "sign", "needed for metric 'F'"),
    ("sign_unknown.csv", "sign", "unknown sign 'up'"),
    ("sign_on_d.csv", "sign", "not used by metric 'd'"),
    ("chi2_not_below_n.csv", "value", "chi2 = 150 is not below n = 100"),
    ("counts_events_exceed_n.csv", "events1", "events1 = 60 exceeds n1 = 50"),
    ("counts_events_negative.csv", "events1", "-1 is out of range"),
    ("counts_missing_events2.csv", "events2", "needed for metric 'counts'"),
    ("d_ci_excludes_value.csv", "ci_low", "does not contain the value 0.5"),
    ("d_ci_half.csv", "ci_high", "ci_low is given but ci_high is blank"),
    ("d_ci_and_se.csv", "se", "both a CI and an se"),
    ("g_se_not_positive.csv", "se", "se = 0 is not positive"),
    ("or_zero.csv", "value", "or = 0 is out of range"),
    ("or_ci_excludes_value.csv", "ci_low", "does not contain the value 2.5"),
    ("prepost_r_out_of_range.csv", "r_prepost", "r_prepost = 1 is out of range"),
    ("prepost_missing_sd_pre2.csv", "sd_pre2", "needed for metric 'prepost'"),
    ("prepost_arm_of_two.csv", "n1", "too small for a pre-post"),
    ("medians_arm_without_spread.csv", "q1_2", "needed for metric 'medians'"),
    ("medians_out_of_order.csv", "q1_1", "q1_1 = 15 exceeds median1 = 14"),
    ("medians_half_quartiles.csv", "q3_1", "q1_1 is given but q3_1 is blank"),
    ("mean_on_d_row.csv", "mean1", "not used by metric 'd'"),
    ("icc_without_cluster_size.csv", "cluster_size", "icc is given but cluster_size is blank"),
    ("icc_out_of_range.csv", "icc", "icc = 1.2 is out of range"),
    ("cluster_size_above_arm.csv", "cluster_size", "cluster_size = 60 is out of range"),
    # the rest of issue 13's list: a metric's column absent from the header, SD < 0 (and a
    # pre-test SD of 0), p at or below the ends of (0, 1), the other arm's events > n, ...
    ("means_header_without_sd2.csv", "sd2", "needed for metric 'means'"),
    ("means_sd_negative.csv", "sd2", "sd2 = -1.3 is not positive"),
    ("means_sd_not_a_number.csv", "sd1", "'1.1a' is not a number"),
    ("prepost_sd_pre_zero.csv", "sd_pre1", "sd_pre1 = 0 is not positive"),
    ("p_one.csv", "value", "p = 1 is out of range"),
    ("p_negative.csv", "value", "p = -0.01 is out of range"),
    ("chi2_negative.csv", "value", "chi2 = -3.1 is out of range"),
    ("counts_events2_exceed_n2.csv", "events2", "events2 = 51 exceeds n2 = 50"),
    ("counts_events_not_whole.csv", "events1", "'10.5' is not a whole number"),
    ("or_ci_low_zero.csv", "ci_low", "ci_low = 0 is not positive"),
    ("medians_q3_above_max.csv", "q3_1", "q3_1 = 19 exceeds max1 = 18"),
    ("f_from_prepost_design.csv", "design", "metric F cannot come from a prepost design"),
]


@pytest.mark.parametrize(("name", "column", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_metric_rule_names_line_and_column(name: str, column: str, words: str) -> None:
    path = FIXTURES / name
    problems = validate_file(path)
    assert len(problems) == 1, problems
    match = MESSAGE.match(problems[0])
    assert match, problems[0]
    assert (match["path"], match["line"], match["col"]) == (str(path), "3", column)
    assert words in match["what"]


def test_every_metric_fixture_is_in_the_rule_table() -> None:
    assert {p.name for p in FIXTURES.glob("*.csv")} == {b[0] for b in BROKEN}


def test_missing_column_message_reads_as_the_issue_words_it() -> None:
    path = FIXTURES / "means_missing_sd2.csv"
    assert validate_file(path)[0].startswith(f"{path}:3: column 'sd2': needed for metric 'means'")


@pytest.mark.parametrize(("name", "column", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_cli_exits_2_on_each_metric_rule(capsys: pytest.CaptureFixture[str], name: str,
                                         column: str, words: str) -> None:
    path = FIXTURES / name
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr()
    assert f"{path}:3: column '{column}': " in err.out + err.err
    assert words in err.out + err.err


def test_metric_columns_are_declared_optional_and_documented() -> None:
    codebook = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name in (*METRIC_COLUMNS, *CLUSTER_COLUMNS):
        assert f"`{name}`" in codebook, name
    for name, metric in METRICS.items():
        assert set(metric.columns) <= set(METRIC_COLUMNS) | {"n1", "n2"}, name


# --------------------------------------------------------------------------- appended studies

ROWS = REFERENCE["rows"]


def _appended(tmp_path: Path) -> Path:
    """data/table2.csv with one new study per reference row (and the columns they need)."""
    with (ROOT / "data" / "table2.csv").open(encoding="utf-8", newline="") as fh:
        table = list(csv.DictReader(fh))
    header = list(table[0])
    extra = sorted({k for r in ROWS for k in r["cells"]} - set(header) - {"direction"})
    extra = [c for c in (*METRIC_COLUMNS, *CLUSTER_COLUMNS) if c in extra]
    rows = [{**r, **{c: "" for c in extra}} for r in table]
    for i, ref in enumerate(ROWS, start=1):
        cells = {k: str(v) for k, v in ref["cells"].items()}
        n = float(cells["n1"]) + float(cells["n2"])
        rows.append({
            **{c: "" for c in header + extra},
            "study_id": f"newstudy_{i:02d}", "citation": f"New et al. ({2020 + i % 5})",
            "year": str(2020 + i % 5), "components": "all_inclusivity",
            "intervention": "A workshop",
            "technique": "video", "participants": "Employees", "n": f"{n:.0f}", "arms": "2",
            "comparison": "control", "comparator": "control", "design": "between",
            "outcome": "Inclusive behaviour", "direction": "higher",
            "outcome_component": "all_inclusivity", "outcome_domain": "intention_behaviour",
            "timepoint": "post", "role": "intervention_effect", "peer_reviewed": "true",
            **{k: (f"{float(v):.0f}" if k in ("n1", "n2") else v) for k, v in cells.items()},
        })
    path = tmp_path / "table2_plus.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header + extra, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_reference_rows_cover_every_new_metric() -> None:
    metrics = {r["cells"]["metric"] for r in ROWS}
    assert metrics == {"means", "g", "d", "F", "p", "chi2", "or", "counts", "prepost", "medians"}
    assert any("icc" in r["cells"] for r in ROWS)


@pytest.fixture(scope="module")
def appended_effects(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = _appended(tmp_path_factory.mktemp("plus"))
    assert validate_file(path) == []
    return ma.compute_effects(ma.load_studies(path))


def test_appended_studies_get_metafors_values(appended_effects: pd.DataFrame) -> None:
    new = appended_effects[appended_effects["study_id"].str.startswith("newstudy_")]
    assert len(new) == len(ROWS)
    yi_ref = np.array([r["yi"][0] for r in ROWS])
    vi_ref = np.array([r["vi"][0] for r in ROWS])
    rel = np.maximum(np.abs(new["yi"].to_numpy() / yi_ref - 1), np.abs(new["vi"] / vi_ref - 1))
    print(f"compute_effects vs metafor, {len(ROWS)} appended rows: max relative error "
          f"{rel.max():.3g}")
    np.testing.assert_allclose(new["yi"], yi_ref, rtol=1e-10, atol=0)
    np.testing.assert_allclose(new["vi"], vi_ref, rtol=1e-10, atol=0)
    assert new["included"].all()


def test_table2_rows_are_unchanged_by_the_new_columns(appended_effects: pd.DataFrame) -> None:
    old = ma.compute_effects(ally.load_table2())
    pd.testing.assert_frame_equal(appended_effects.iloc[: len(old)][["yi", "vi", "derivation"]],
                                  old[["yi", "vi", "derivation"]])


@pytest.mark.parametrize(
    ("metric", "words"),
    [("means", "SMD (escalc): exact J=c(97)"),
     ("g", "Hedges' g as reported (no second correction)"),
     ("d", "SE=(ci_high-ci_low)/(2*1.959964)"),
     ("F", "t=sign*sqrt(F)"),
     ("p", "t=sign*qt(1-p/2, n1+n2-2)"),
     ("chi2", "r=sign*sqrt(chi2/n)"),
     ("or", "SE(ln OR) from the 95% CI"),
     ("counts", "1/2 added to each cell (a zero cell)"),
     ("prepost", "r_prepost = 0.5 assumed"),
     ("medians", "SD: Shi et al. 2020"),
     ("means", "cluster-randomised (Hedges 2007): icc=0.1")],
)
def test_derivation_names_formula_and_assumptions(appended_effects: pd.DataFrame, metric: str,
                                                  words: str) -> None:
    rows = appended_effects[appended_effects["metric"] == metric]
    assert rows["derivation"].str.contains(words, regex=False).any(), rows["derivation"].tolist()


def test_means_with_direction_lower_are_reversed(appended_effects: pd.DataFrame) -> None:
    row = appended_effects[appended_effects["direction"].eq("lower")
                           & appended_effects["metric"].eq("means")].iloc[0]
    # mean1 < mean2 on an outcome where lower is the effect: a positive g
    assert row["yi"] > 0 and "sign reversed" in row["derivation"]


def test_blank_r_prepost_follows_prepost_r(tmp_path: Path, appended_effects: pd.DataFrame) -> None:
    """A blank r_prepost takes compute_effects' prepost_r (sensitivity); a given one is kept."""
    studies = ma.load_studies(_appended(tmp_path))
    other = ma.compute_effects(studies, prepost_r=0.3)
    rows = other[other["metric"] == "prepost"]
    base = appended_effects[appended_effects["metric"] == "prepost"]
    blank = base["derivation"].str.contains("assumed", regex=False).to_numpy()
    assert blank.tolist() == [False, True]
    assert rows["derivation"].iloc[1].endswith("r_prepost = 0.3 assumed")
    assert rows["vi"].iloc[0] == base["vi"].iloc[0]
    # vi = sum over arms of 2(1 - r)/n + g^2/(2n): a smaller r gives a larger variance
    assert rows["vi"].iloc[1] > base["vi"].iloc[1]
