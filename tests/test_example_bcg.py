"""Univariate models on bcg against metafor 3.8 (tests/reference/univariate.json).

BCG vaccine trials (Colditz et al. 1994, JAMA 271:698; metadat ``dat.bcg``): 13 trials,
log risk ratios of tuberculosis (escalc RR); moderator: absolute latitude (``ablat``).
Reproduces Viechtbauer (2010, J Stat Softw 36(3)) sections 3-4 with every estimator and test.
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

DATASET = "bcg"
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
