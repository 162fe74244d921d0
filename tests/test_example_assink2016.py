"""CHE model, CR2/CR1 robust inference on assink2016 against metafor + clubSandwich.

Assink & Wibbelink (2016), The Quantitative Methods for Psychology 12:154-174:
100 effects of 17 studies on delinquency (metadat ``dat.assink2016``); moderator: deltype
(3 levels, treatment-coded).  Clusters = studies, es_id = esid.
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

DATASET = "assink2016"
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
