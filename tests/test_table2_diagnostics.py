"""Table 2 small-study and influence results (results/small_study.csv,
results/leave_one_out.csv) against metafor 3.8 / clubSandwich, and current with the code.

Reference values: tests/reference/table2_diagnostics.json, written by
tests/reference/table2_diagnostics.R from results/effects.csv (regtest, ranktest, trimfill
and lm on the aggregated studies; Egger's sandwich by rma.mv + coef_test; leave-one-out
CHE refits with robust(clubSandwich = TRUE)).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.allyship.pipeline import (
    LEAVE_ONE_OUT_COLUMNS,
    SMALL_STUDY_COLUMNS,
    leave_one_out_rows,
    small_study_rows,
)
from metaally.allyship.review import table2_analyses

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
REF = json.loads((ROOT / "tests" / "reference" / "table2_diagnostics.json").read_text())
SMALL = pd.read_csv(RESULTS / "small_study.csv")
LOO = pd.read_csv(RESULTS / "leave_one_out.csv")
EFFECTS = pd.read_csv(RESULTS / "effects.csv")
ROBUST = {"egger_sandwich"}   # clubSandwich's optimiser-level agreement
RTOL, RTOL_ROBUST = 1e-6, 1e-4
SETTINGS = ma.AnalysisSettings()
TESTS = ["egger_sandwich", "random_effects", "egger", "rank", "trim_and_fill", "pet", "peese"]


def test_reference_grid_is_complete():
    assert list(REF["analyses"]) == list(SMALL["analysis"].unique())
    assert list(REF["leave_one_out"]) == list(LOO["analysis"].unique())
    for name, entry in REF["analyses"].items():
        assert set(TESTS) <= set(entry)
        assert list(SMALL.loc[SMALL["analysis"] == name, "test"]) == TESTS
        omitted = [row["omitted"] for row in REF["leave_one_out"][name]]
        assert list(LOO.loc[LOO["analysis"] == name, "omitted"]) == omitted
    assert REF["analyses"]["overall"]["trim_and_fill"]["k0"] > 0


@pytest.mark.parametrize(("analysis", "test"),
                         [(a, t) for a in REF["analyses"] for t in TESTS],
                         ids=[f"{a}-{t}" for a in REF["analyses"] for t in TESTS])
def test_small_study_row_matches_metafor(analysis, test):
    want = REF["analyses"][analysis][test]
    row = SMALL[(SMALL["analysis"] == analysis) & (SMALL["test"] == test)].iloc[0]
    assert row["k_studies"] == REF["analyses"][analysis]["k_studies"]
    assert row["k_effects"] == REF["analyses"][analysis]["k_effects"]
    rtol = RTOL_ROBUST if test in ROBUST else RTOL
    for column in ["stat", "df", "pvalue", "estimate", "ci_low", "ci_high"]:
        if column in want:
            np.testing.assert_allclose(row[column], want[column], rtol=rtol, atol=1e-10,
                                       err_msg=column)
    if test == "trim_and_fill":
        assert (row["k0"], row["side"]) == (want["k0"], want["side"])


@pytest.mark.parametrize("analysis", list(REF["leave_one_out"]))
def test_leave_one_out_matches_metafor(analysis):
    want = pd.DataFrame(REF["leave_one_out"][analysis])
    got = LOO[LOO["analysis"] == analysis].reset_index(drop=True)
    assert list(got["k_studies"]) == list(want["k_studies"])
    assert list(got["k_effects"]) == list(want["k_effects"])
    for column in ["estimate", "se", "ci_low", "ci_high", "df", "pvalue"]:
        np.testing.assert_allclose(got[column], want[column], rtol=RTOL_ROBUST, atol=1e-8,
                                   err_msg=column)
    # variance components (and I², in percent) sit at the zero boundary in some refits
    for column, atol in [("sigma2_study", 1e-7), ("sigma2_within", 1e-7), ("i2", 1e-5)]:
        np.testing.assert_allclose(got[column], want[column], rtol=RTOL_ROBUST, atol=atol,
                                   err_msg=column)
    full = got["estimate"].iloc[0]
    np.testing.assert_allclose(got["change"], got["estimate"] - full, atol=1e-7)


def test_leave_one_out_estimates_are_those_of_leave_one_out():
    """The script's refits agree with ma.leave_one_out on the CHE model (point estimates)."""
    included = EFFECTS[EFFECTS["included"]]
    fit = ma.multilevel(included["yi"], included["vi"], included["study_id"],
                        es_id=included["es_id"])
    api = ma.leave_one_out(fit).set_index("omitted")
    rows = LOO[(LOO["analysis"] == "overall") & (LOO["omitted"] != "(none)")]
    np.testing.assert_allclose(rows["estimate"], api.loc[rows["omitted"], "estimate"],
                               rtol=1e-6)
    np.testing.assert_allclose(rows["sigma2_within"], api.loc[rows["omitted"], "sigma2_within"],
                               rtol=1e-5, atol=1e-9)


def _assert_frames_equal(committed: pd.DataFrame, fresh: pd.DataFrame) -> None:
    assert list(committed.columns) == list(fresh.columns)
    numeric = fresh.select_dtypes("number").columns
    np.testing.assert_allclose(committed[numeric].astype(float), fresh[numeric].astype(float),
                               rtol=1e-6, atol=1e-9)
    text = [c for c in fresh.columns if c not in numeric]
    pd.testing.assert_frame_equal(committed[text].fillna(""), fresh[text].fillna(""),
                                  check_dtype=False)


def test_committed_small_study_table_is_current():
    """results/small_study.csv is what analyses/small_study.py makes now (`make figures`)."""
    subsets = table2_analyses(EFFECTS)
    fresh = pd.DataFrame([row for name, data in subsets.items()
                          for row in small_study_rows(name, data, SETTINGS)]
                         ).reindex(columns=SMALL_STUDY_COLUMNS)
    _assert_frames_equal(SMALL, fresh)


def test_committed_leave_one_out_table_is_current():
    subsets = table2_analyses(EFFECTS)
    fresh = pd.DataFrame([row for name, data in subsets.items()
                          for row in leave_one_out_rows(name, data, SETTINGS)],
                         columns=LEAVE_ONE_OUT_COLUMNS)
    _assert_frames_equal(LOO, fresh)


# ------------------------------------------------------------------- the summary.md section


def section(small: pd.DataFrame = SMALL, loo: pd.DataFrame = LOO) -> str:
    return ally.small_study_section(small, loo, EFFECTS)


def test_section_is_careful():
    text = section()
    assert text.startswith("## Small-study effects and influence\n")
    assert "little power (Sterne et al. 2011 recommend at least 10 studies)" in text
    assert "need not mean publication bias" in text
    assert "not as corrected effects" in text
    for phrase in ["no publication bias", "publication bias was", "corrected estimate"]:
        assert phrase not in text


def test_section_names_the_most_influential_study_per_analysis():
    text = section()
    for name, rows in LOO.groupby("analysis", sort=False):
        others = rows[rows["omitted"] != "(none)"]
        top = others.loc[others["change"].abs().idxmax()]
        ref = int(EFFECTS.loc[EFFECTS["study_id"] == top["omitted"], "ref"].iloc[0])
        label = "All effects" if name == "overall" else ma.level_label(name, ally.LABELS)
        line = next(line for line in text.splitlines() if line.startswith(f"- {label} ("))
        assert f"without {top['citation']} (ref {ref}, {top['omitted']};" in line
        assert f"g = {top['estimate']:.2f} [{top['ci_low']:.2f}, {top['ci_high']:.2f}]" in line


def test_section_calls_a_significant_test_on_few_df_unreliable():
    small = SMALL.copy()
    row = (small["analysis"] == "overall") & (small["test"] == "egger_sandwich")
    small.loc[row, ["pvalue", "df"]] = [0.01, 2.5]
    text = section(small)
    assert "1 of the three tests finds funnel-plot asymmetry at p < 0.05" in text
    assert "t(2.5)" in text and "(unreliable: fewer than 4 robust df)" in text
    assert "None of the three tests" in section()  # the committed data: no p < 0.05 overall
