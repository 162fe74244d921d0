"""Summary of findings: every domain follows its stated rule, numbers from independent fits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import metaally as ma
from metaally.report.findings import (
    FINDINGS_COLUMNS,
    optimal_information_size,
    summary_of_findings,
)


def _frame(yi, vi, group=None, n=100):
    k = len(yi)
    return pd.DataFrame({
        "study_id": [f"s{i}" for i in range(k)], "es_id": range(k), "yi": yi, "vi": vi,
        "included": True,
        "citation": [f"Author {i}" for i in range(k)], "year": 2020,
        "grp": group if group is not None else ["a"] * k, "n1": n / 2, "n2": n / 2,
    })


def test_optimal_information_size_matches_cohens_table():
    # Cohen (1988) Table 2.4.1: d = 0.2, two-sided alpha .05, power .80 -> n = 393 per group
    assert optimal_information_size(0.2) == pytest.approx(2 * 393, rel=0.005)
    # d = 0.5 -> 64 per group
    assert optimal_information_size(0.5) == pytest.approx(2 * 64, rel=0.03)
    with pytest.raises(ValueError, match="smallest_effect"):
        optimal_information_size(0)


def test_columns_and_one_row_per_level_plus_overall():
    frame = _frame([0.2, 0.4, 0.1, 0.5], [0.02, 0.03, 0.02, 0.04], ["a", "a", "b", "a;b"])
    table = summary_of_findings(frame, "grp", model="univariate")
    assert list(table.columns) == FINDINGS_COLUMNS
    assert list(table["level"]) == ["a", "b", "overall"]
    assert list(table["k_studies"]) == [3, 2, 4]
    assert table.loc[0, "participants"] == 300  # n1 + n2 of three studies


def test_fragility_counts_leave_one_out_fits_done_independently():
    yi = np.array([0.35, 0.05, 0.30, 0.45, 0.12])
    vi = np.array([0.02, 0.03, 0.015, 0.04, 0.02])
    table = summary_of_findings(_frame(yi, vi), None, model="univariate")
    expected = 0
    for i in range(len(yi)):
        keep = np.arange(len(yi)) != i
        fit = ma.random_effects(yi[keep], vi[keep], method="REML", test="knha")
        expected += fit.ci_low <= 0 <= fit.ci_high
    assert table.loc[0, "loo_ci_includes_0"] == expected
    full = ma.random_effects(yi, vi, method="REML", test="knha")
    assert table.loc[0, "estimate"] == pytest.approx(full.estimate, rel=1e-10)


def test_inconsistency_rule():
    homogeneous = summary_of_findings(
        _frame([0.30, 0.31, 0.29, 0.30], [0.01] * 4), None, model="univariate").iloc[0]
    assert homogeneous["i2"] < 50 and homogeneous["inconsistency_concern"] == "no"
    spread = summary_of_findings(
        _frame([0.9, -0.2, 0.6, 0.1, 1.2], [0.01] * 5), None, model="univariate").iloc[0]
    assert spread["i2"] >= 50 and spread["inconsistency_concern"] == "yes"
    assert "I² >= 50%" in spread["inconsistency"]
    single = summary_of_findings(_frame([0.3], [0.01]), None, model="univariate").iloc[0]
    assert single["inconsistency_concern"] == "not assessable"


def test_imprecision_rule():
    wide = summary_of_findings(_frame([0.1, 0.05, 0.2], [0.05] * 3), None,
                               model="univariate").iloc[0]
    assert wide["ci_low"] < 0 and wide["imprecision_concern"] == "yes"
    assert "CI includes 0" in wide["imprecision"]
    small = summary_of_findings(_frame([0.5, 0.52, 0.49], [0.001] * 3, n=100), None,
                                model="univariate").iloc[0]
    assert small["ci_low"] > 0 and small["participants"] == 300
    assert "participants below the OIS" in small["imprecision"]
    assert "df < 4" in small["imprecision"]  # Knapp-Hartung: k - 1 = 2 df
    big = summary_of_findings(_frame([0.5, 0.52, 0.49, 0.5, 0.51], [0.001] * 5, n=400), None,
                              model="univariate").iloc[0]
    assert big["df"] == 4 and big["imprecision_concern"] == "no"


def test_publication_bias_needs_ten_studies_then_reports_eggers_sandwich():
    rng = np.random.default_rng(1)
    yi, vi = rng.normal(0.3, 0.2, 10), rng.uniform(0.01, 0.05, 10)
    nine = summary_of_findings(_frame(yi[:9], vi[:9]), None, model="univariate").iloc[0]
    assert nine["publication_bias_concern"] == "not assessable"
    ten = summary_of_findings(_frame(yi, vi), None, model="univariate").iloc[0]
    test = ma.egger_test(yi, vi, study=[f"s{i}" for i in range(10)], rho=0.6)
    assert f"p = {test.pvalue:.3f}" in ten["publication_bias"]
    assert ten["publication_bias_concern"] == ("yes" if test.pvalue < 0.10 else "no")


def test_risk_of_bias_is_not_assessed_without_a_file_and_counted_with_one():
    frame = _frame([0.2, 0.4, 0.3], [0.02, 0.02, 0.04])
    assert summary_of_findings(frame, None).loc[0, "risk_of_bias"] == "not assessed"
    rob = pd.DataFrame({"study_id": ["s0", "s1"], "risk_of_bias": ["High", "low"]})
    text = summary_of_findings(frame, None, model="univariate", risk_of_bias=rob).loc[
        0, "risk_of_bias"]
    assert text.startswith("1 low, 1 high, 1 not appraised")
    with pytest.raises(ValueError, match="unknown judgement"):
        summary_of_findings(frame, None, risk_of_bias=rob.assign(risk_of_bias="bad"))
    with pytest.raises(ValueError, match="participants is missing"):
        summary_of_findings(frame, None, participants=pd.DataFrame({"study_id": ["s0"]}))


def test_no_judgement_is_invented():
    table = summary_of_findings(_frame([0.2, 0.4, 0.3], [0.02, 0.02, 0.04]), None)
    assert table["certainty"].str.startswith("not rated").all()
    assert table["indirectness"].str.startswith("not assessed").all()
    assert not math.isnan(table.loc[0, "estimate"])
