"""Univariate models on normand1999 against metafor 3.8 (tests/reference/univariate.json).

Normand (1999, Stat Med 18:321): 9 trials of specialist stroke care, mean differences in length
of hospital stay in days (metadat ``dat.normand1999``, escalc MD); moderator: log total sample
size.  Large-scale data (tau^2 ~ 800), so it also checks the scale-free convergence rules.
"""

from __future__ import annotations

import pytest
from univariate_cases import (
    GRID,
    assert_fit_matches,
    assert_qprofile_matches,
    case_id,
    fits,
    grid,
    qprofiles,
)

DATASET = "normand1999"
FITS = fits(DATASET)
QPROFILES = qprofiles(DATASET)


def test_reference_grid_is_complete():
    assert grid(DATASET) == GRID
    assert {(c["model"], c["method"]) for c in QPROFILES} == {
        (model, method) for model, method, _ in GRID if method != "FE"
    }


@pytest.mark.parametrize("case", FITS, ids=[case_id(c) for c in FITS])
def test_fit_matches_metafor(case):
    assert_fit_matches(case)


@pytest.mark.parametrize("case", QPROFILES, ids=[case_id(c) for c in QPROFILES])
def test_qprofile_ci_matches_metafor(case):
    assert_qprofile_matches(case)
