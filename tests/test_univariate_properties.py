"""Invariances every random-effects fit must have (hypothesis): order of studies, location
shift of yi, and scale change of (yi, vi)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma
from metaally.models.tau2 import METHODS

REL = 1e-7

# Random data sometimes make Fisher scoring oscillate; the bracketing fallback (and its
# warning) is then part of what must satisfy the invariances.
pytestmark = pytest.mark.filterwarnings("ignore:.*iteration did not converge:RuntimeWarning")


@st.composite
def data_sets(draw):
    k = draw(st.integers(min_value=2, max_value=15))
    yi = draw(st.lists(st.floats(-3, 3), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(0.01, 2.0), min_size=k, max_size=k))
    method = draw(st.sampled_from(METHODS))
    test = draw(st.sampled_from(["z", "knha", "adhoc"]))
    return np.array(yi), np.array(vi), method, test


def _approx(value, unit):
    return pytest.approx(value, rel=REL, abs=1e-9 * unit)


@settings(max_examples=75, deadline=None)
@given(data_sets(), st.randoms(use_true_random=False))
def test_order_of_studies_does_not_matter(data, random):
    yi, vi, method, test = data
    order = list(range(yi.size))
    random.shuffle(order)
    a = ma.random_effects(yi, vi, method=method, test=test)
    b = ma.random_effects(yi[order], vi[order], method=method, test=test)
    unit = vi.mean()
    assert b.tau2 == _approx(a.tau2, unit)
    assert b.estimate == _approx(a.estimate, np.sqrt(unit))
    assert b.se == _approx(a.se, np.sqrt(unit))
    assert b.q == _approx(a.q, 1.0)
    assert b.i2 == _approx(a.i2, 1.0)
    np.testing.assert_allclose(b.weights, a.weights[order], rtol=REL, atol=1e-9)


@settings(max_examples=75, deadline=None)
@given(data_sets(), st.floats(-50, 50))
def test_shift_moves_estimate_and_ci_only(data, c):
    yi, vi, method, test = data
    a = ma.random_effects(yi, vi, method=method, test=test)
    b = ma.random_effects(yi + c, vi, method=method, test=test)
    unit = vi.mean()
    assert b.tau2 == _approx(a.tau2, unit)
    assert b.q == _approx(a.q, 1.0)
    assert b.i2 == _approx(a.i2, 1.0)
    for name in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        assert getattr(b, name) == pytest.approx(getattr(a, name) + c, rel=REL, abs=1e-7)
    assert b.se == _approx(a.se, np.sqrt(unit))


@settings(max_examples=75, deadline=None)
@given(data_sets(), st.floats(0.01, 100))
def test_scale_change(data, s):
    yi, vi, method, test = data
    a = ma.random_effects(yi, vi, method=method, test=test)
    b = ma.random_effects(yi * s, vi * s**2, method=method, test=test)
    unit = vi.mean()
    assert b.tau2 == _approx(a.tau2 * s**2, unit * s**2)
    assert b.estimate == _approx(a.estimate * s, np.sqrt(unit) * s)
    assert b.se == _approx(a.se * s, np.sqrt(unit) * s)
    assert b.i2 == _approx(a.i2, 1.0)
    assert b.q == _approx(a.q, 1.0)
