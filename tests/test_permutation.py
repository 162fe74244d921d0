"""Permutation tests (``ma.permutation_test``) against metafor's ``permutest()`` and refits.

Reference: tests/reference/scale.R → scale.json (metafor 3.8, dat.bcg log risk ratios).
Exact tests (every sign flip / every distinct arrangement) must reproduce metafor's
p-values exactly; random ones differ from R's draws, so they are compared statistically
and their observed statistics exactly.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma
from metaally.diagnostics.permutation import distinct_permutations

REF = json.loads((Path(__file__).parent / "reference" / "scale.json").read_text())
YI, VI = np.array(REF["yi"]), np.array(REF["vi"])
CASES = REF["permutation"]

# how each reference model was fitted in scale.R, and the permutations asked for
MODELS = {
    "intercept_exact_reml": ({"method": "REML"}, 10000),
    "intercept_exact_dl_knha": ({"method": "DL", "test": "knha"}, 10000),
    "intercept_random_reml": ({"method": "REML"}, 2000),
    "binary_exact_reml_knha": (
        {"method": "REML", "test": "knha",
         "mods": pd.Series(REF["random_alloc"], name="random_alloc")}, 2000),
    "ablat_random_reml": ({"method": "REML", "mods": pd.Series(REF["ablat"], name="ablat")}, 2000),
}


def _run(name: str, seed: int = 2024):
    kwargs, n_perm = MODELS[name]
    res = ma.random_effects(YI, VI, **kwargs)
    return res, ma.permutation_test(res, n_perm=n_perm, seed=seed)


@pytest.fixture(scope="module")
def runs():
    return {name: _run(name) for name in MODELS}


def test_reference_grid_is_complete():
    assert set(CASES) == set(MODELS)
    assert {c["exact"] for c in CASES.values()} == {True, False}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_observed_statistics_match_metafor(runs, name):
    _, perm = runs[name]
    ref = CASES[name]
    np.testing.assert_allclose(perm.coef["estimate"], np.atleast_1d(ref["estimate"]), rtol=1e-6)
    np.testing.assert_allclose(perm.coef["stat"], np.atleast_1d(ref["stat"]), rtol=1e-6)
    np.testing.assert_allclose(perm.qm, ref["qm"], rtol=1e-6)
    assert list(perm.coef.index) == list(np.atleast_1d(ref["names"]))


@pytest.mark.parametrize("name", sorted(n for n in MODELS if CASES[n]["exact"]))
def test_exact_pvalues_equal_metafor(runs, name):
    _, perm = runs[name]
    ref = CASES[name]
    assert perm.exact and perm.n_perm == ref["n_perm"] == ref["exact_iter"]
    np.testing.assert_allclose(perm.coef["pvalue_perm"], np.atleast_1d(ref["pvalue_perm"]),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(perm.qm_pvalue_perm, ref["qm_pvalue_perm"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in MODELS if not CASES[n]["exact"]))
def test_random_pvalues_agree_with_metafor_statistically(runs, name):
    _, perm = runs[name]
    ref = CASES[name]
    assert not perm.exact and perm.n_perm == ref["n_perm"]
    n = perm.n_perm
    for ours, theirs in [*zip(perm.coef["pvalue_perm"], np.atleast_1d(ref["pvalue_perm"]),
                              strict=True), (perm.qm_pvalue_perm, ref["qm_pvalue_perm"])]:
        p = max((ours + theirs) / 2, 3 / n)
        assert abs(ours - theirs) <= 5 * math.sqrt(2 * p * (1 - p) / n)
    # the spread of the permutation distribution agrees too
    np.testing.assert_allclose(perm.stat_perm.std(axis=0, ddof=1),
                               np.atleast_1d(ref["stat_perm_sd"]), rtol=0.1)


def test_sign_flip_statistics_equal_refits():
    y, v = YI[:5], VI[:5]
    res = ma.random_effects(y, v, method="REML", test="knha")
    perm = ma.permutation_test(res, n_perm=100)
    assert perm.exact and perm.n_perm == 32
    for row in range(32):
        # row i flips study j when bit j of i is set (metafor's expand.grid order)
        flips = np.array([(row >> j) & 1 for j in range(5)])
        refit = ma.random_effects((1 - 2 * flips) * y, v, method="REML", test="knha")
        np.testing.assert_allclose(perm.stat_perm[row, 0], refit.stat, rtol=1e-9)
        np.testing.assert_allclose(perm.qm_perm[row], refit.qm, rtol=1e-9)


def test_moderator_arrangements_equal_refits_with_permuted_rows():
    rng = np.random.default_rng(11)
    y, v = rng.normal(0.2, 0.3, 7), rng.uniform(0.02, 0.2, 7)
    x = np.array([0.0, 1, 0, 2, 1, 0, 2])        # 7! / (3! 2! 2!) = 210 arrangements
    res = ma.random_effects(y, v, mods=x, method="ML")
    perm = ma.permutation_test(res, n_perm=500)
    assert perm.exact and perm.n_perm == 210
    expected = sorted(
        tuple(np.round(ma.random_effects(y, v, mods=np.array(order), method="ML").coef["stat"], 8))
        for order in set(itertools.permutations(x))
    )
    ours = sorted(tuple(row) for row in np.round(perm.stat_perm, 8))
    np.testing.assert_allclose(np.array(ours), np.array(expected), atol=2e-8)


def test_random_permutations_start_with_the_observed_data():
    kwargs, _ = MODELS["ablat_random_reml"]
    res = ma.random_effects(YI, VI, **kwargs)
    perm = ma.permutation_test(res, n_perm=50, seed=1)
    np.testing.assert_allclose(perm.stat_perm[0], res.coef["stat"], rtol=1e-9)
    np.testing.assert_allclose(perm.qm_perm[0], res.qm, rtol=1e-9)
    assert perm.coef["pvalue_perm"].min() >= 1 / 50


@pytest.mark.parametrize(
    "n_perm, exact", [(1024, True), (1023, False)], ids=["2^k-perms-exact", "fewer-random"]
)
def test_sign_flips_are_exact_when_2_to_the_k_fit(n_perm, exact):
    res = ma.random_effects(YI[:10], VI[:10], method="DL")
    perm = ma.permutation_test(res, n_perm=n_perm, seed=5)
    assert perm.exact is exact and perm.n_perm == n_perm


@pytest.mark.parametrize("n_perm, exact", [(720, True), (719, False)], ids=["6!-exact", "random"])
def test_moderator_permutations_are_exact_when_all_distinct_fit(n_perm, exact):
    res = ma.random_effects(YI[1:7], VI[1:7], mods=np.array(REF["ablat"][1:7]), method="FE")
    perm = ma.permutation_test(res, n_perm=n_perm, seed=5)
    assert perm.exact is exact and perm.n_perm == n_perm


def test_seeded_runs_repeat_and_chunking_does_not_change_them(monkeypatch):
    kwargs, _ = MODELS["ablat_random_reml"]
    res = ma.random_effects(YI, VI, **kwargs)
    a = ma.permutation_test(res, n_perm=300, seed=9)
    b = ma.permutation_test(res, n_perm=300, seed=9)
    np.testing.assert_array_equal(a.stat_perm, b.stat_perm)
    exact = ma.permutation_test(ma.random_effects(YI[:8], VI[:8]), n_perm=300)
    monkeypatch.setattr(sys.modules["metaally.models.progress"], "CHUNK_ELEMENTS", 8 * 37)
    again = ma.permutation_test(ma.random_effects(YI[:8], VI[:8]), n_perm=300)
    np.testing.assert_allclose(again.stat_perm, exact.stat_perm, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=8))
def test_distinct_permutations_are_all_the_distinct_orderings(labels):
    labels = np.array(labels)
    relabelled = np.unique(labels, return_inverse=True)[1]
    got = distinct_permutations(relabelled)
    expected = set(itertools.permutations(relabelled.tolist()))
    assert got.shape == (len(expected), labels.size)
    assert {tuple(r) for r in got.tolist()} == expected


def test_fixed_tau2_is_kept_in_the_refits():
    res = ma.random_effects(YI[:6], VI[:6], tau2=0.1)
    perm = ma.permutation_test(res, n_perm=100)
    flips = np.array([(33 >> j) & 1 for j in range(6)])
    refit = ma.random_effects((1 - 2 * flips) * YI[:6], VI[:6], tau2=0.1)
    np.testing.assert_allclose(perm.stat_perm[33, 0], refit.stat, rtol=1e-9)


@pytest.mark.parametrize(
    "args, message",
    [(("not a model",), "fitted model"), ((None, 1), "at least 2")],
    ids=["not-a-result", "too-few-permutations"],
)
def test_bad_arguments(args, message):
    if args[0] is None:
        args = (ma.random_effects(YI, VI), *args[1:])
    with pytest.raises(ValueError, match=message):
        ma.permutation_test(*args)


def test_summary_and_to_frame(runs):
    _, perm = runs["ablat_random_reml"]
    text = perm.summary()
    assert "Permutation test (approximate: 2000 permutations of the moderators" in text
    qm = CASES["ablat_random_reml"]["qm"]
    assert f"Test of Moderators: QM(df = 1) = {qm:.4f}, p-val* =" in text
    assert "* p-values based on permutation testing" in text
    frame = perm.to_frame()
    assert list(frame["term"]) == ["intrcpt", "ablat"]
    assert {"estimate", "stat", "pvalue_perm", "qm", "qm_pvalue_perm", "n_perm",
            "exact"} <= set(frame.columns)
    _, knha = runs["binary_exact_reml_knha"]
    assert "F(df1 = 1, df2 = 11)" in knha.summary() and "tval" in knha.summary()
    _, single = runs["intercept_exact_reml"]
    assert "exact: 8192 sign flips" in single.summary()
    assert "Test of Moderators" not in single.summary()


def test_permutation_test_on_a_dask_cluster_equals_the_in_process_test() -> None:
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(31)
    x = rng.normal(size=14)
    y = 0.2 + 0.3 * x + rng.normal(0, 0.2, 14)
    res = ma.random_effects(y, rng.uniform(0.02, 0.08, 14), mods=x)
    here = ma.permutation_test(res, n_perm=300, seed=5)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = ma.permutation_test(res, n_perm=300, seed=5, client=client)
    np.testing.assert_array_equal(here.stat_perm, remote.stat_perm)
    np.testing.assert_array_equal(here.qm_perm, remote.qm_perm)
    assert here.qm_pvalue_perm == remote.qm_pvalue_perm
