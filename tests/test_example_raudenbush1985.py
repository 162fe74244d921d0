"""Univariate models on raudenbush1985 against metafor 3.8 (tests/reference/univariate.json).

Raudenbush (1984, J Educ Psychol 76:85): 19 studies of teacher expectancy on pupil IQ,
standardised mean differences (metadat ``dat.raudenbush1985``); moderator: weeks of prior
teacher-pupil contact, which takes tau^2 to its bound 0 for most estimators.
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

DATASET = "raudenbush1985"
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
