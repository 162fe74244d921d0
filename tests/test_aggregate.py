"""metaally.models.aggregate against metafor's aggregate.escalc(struct = "CS")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multilevel_cases import REFERENCE

import metaally as ma

AGGREGATES = REFERENCE["aggregate"]
IDS = [f"{a['dataset']}-rho{a['rho']}" for a in AGGREGATES]


def test_reference_grid_is_complete():
    got = {(a["dataset"], float(a["rho"])) for a in AGGREGATES}
    assert got == {(d, r) for d in ("konstantopoulos2011", "assink2016") for r in (0.0, 0.6)}


@pytest.mark.parametrize("ref", AGGREGATES, ids=IDS)
def test_matches_metafor(ref):
    data = REFERENCE["data"][ref["dataset"]]
    out = ma.aggregate(data["yi"], data["vi"], data["cluster"], rho=ref["rho"])
    assert out.columns.tolist() == ["study", "yi", "vi", "k"]
    assert out["study"].tolist() == ref["cluster"]
    np.testing.assert_allclose(out["yi"], ref["yi"], rtol=1e-10)
    np.testing.assert_allclose(out["vi"], ref["vi"], rtol=1e-10)
    counts = pd.Series(data["cluster"]).value_counts()
    assert out["k"].tolist() == [counts[c] for c in ref["cluster"]]


def test_rho_zero_is_inverse_variance_weighting_and_order_is_first_appearance():
    yi, vi = np.array([0.1, 0.5, 0.3, 0.9]), np.array([0.1, 0.2, 0.05, 0.4])
    out = ma.aggregate(yi, vi, ["b", "a", "b", "b"], rho=0.0)
    w = 1.0 / vi[[0, 2, 3]]
    assert out["study"].tolist() == ["b", "a"]
    np.testing.assert_allclose(out["yi"], [np.sum(w * yi[[0, 2, 3]]) / w.sum(), 0.5])
    np.testing.assert_allclose(out["vi"], [1.0 / w.sum(), 0.2])
    assert out["k"].tolist() == [3, 1]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="rho must be"):
        ma.aggregate([0.1, 0.2], [0.1, 0.1], [1, 1], rho=1.0)
    with pytest.raises(ValueError, match="same length"):
        ma.aggregate([0.1, 0.2], [0.1, 0.1], [1])


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.3, 0.8]))
def test_invariant_to_row_order(seed, rho):
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 6, 20)
    yi, vi = rng.normal(size=20), rng.uniform(0.01, 0.3, 20)
    perm = rng.permutation(20)
    a = ma.aggregate(yi, vi, cluster, rho).set_index("study").sort_index()
    b = ma.aggregate(yi[perm], vi[perm], cluster[perm], rho).set_index("study").sort_index()
    np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), rtol=1e-10)
