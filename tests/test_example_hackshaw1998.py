"""Univariate models on hackshaw1998 against metafor 3.8 (tests/reference/univariate.json).

Hackshaw et al. (1997, BMJ 315:980): 37 studies of lung cancer and environmental tobacco smoke,
log odds ratios (metadat ``dat.hackshaw1998``); moderator: publication year.
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

DATASET = "hackshaw1998"
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
