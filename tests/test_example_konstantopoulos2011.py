"""CHE model, CR2/CR1 robust inference on konstantopoulos2011 against metafor + clubSandwich.

Konstantopoulos (2011), Research Synthesis Methods 2:61-76: 56 studies of
modified school calendars in 11 districts (metadat ``dat.konstantopoulos2011``); moderator: year,
centred.  Clusters = districts, es_id = school.
"""

from __future__ import annotations

import pytest
from multilevel_cases import (
    EXTRA_ML,
    GRID,
    assert_model_matches,
    assert_robust_matches,
    cases,
    grid,
)

DATASET = "konstantopoulos2011"
CASES = cases(DATASET)
IDS = [c["id"] for c in CASES]


def test_reference_grid_is_complete():
    assert grid(DATASET) == GRID | {EXTRA_ML[DATASET]}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_model_matches_metafor(case):
    assert_model_matches(case)


@pytest.mark.parametrize("adjust", ["CR2", "CR1"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_robust_matches_clubsandwich(case, adjust):
    assert_robust_matches(case, adjust)
