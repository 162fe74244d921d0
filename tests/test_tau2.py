"""tau^2 estimators: the vectorised O(k p^2) algebra against the textbook k x k definitions
(Viechtbauer 2005; metafor's rma.uni), masking/padding, batch shapes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import metaally as ma
from metaally.models.tau2 import METHODS, estimate_tau2


def _p_matrix(v, X, tau2):
    W = np.diag(1 / (v + tau2))
    return W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W


def _dense(y, v, X, method):
    """Each estimator written out with k x k matrices, untruncated root searches by brentq."""
    k, p = X.shape
    y = y - y.mean()
    P0 = _p_matrix(v, X, 0.0)
    if method == "FE":
        return 0.0
    if method == "DL":
        return (y @ P0 @ y - (k - p)) / np.trace(P0)
    if method == "HS":
        return (y @ P0 @ y - k) / np.sum(1 / v)
    if method == "HE":
        M = np.eye(k) - X @ np.linalg.inv(X.T @ X) @ X.T
        return (y @ M @ y - np.trace(M @ np.diag(v))) / (k - p)
    if method == "SJ":
        t0 = np.mean(y**2)
        return t0 * (y @ _p_matrix(v, X, t0) @ y) / (k - p)
    if method in ("PM", "EB"):
        f = lambda t: y @ _p_matrix(v, X, t) @ y - (k - p)  # noqa: E731
    elif method == "ML":
        f = lambda t: y @ _p_matrix(v, X, t) @ _p_matrix(v, X, t) @ y - np.sum(1 / (v + t))  # noqa: E731
    else:  # REML
        def f(t):
            P = _p_matrix(v, X, t)
            return y @ P @ P @ y - np.trace(P)
    if f(0.0) <= 0:
        return 0.0
    return brentq(f, 0.0, 1e3, xtol=1e-15, rtol=1e-14)


def _data(seed, k=12, p=2):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.02, 0.3, k)
    X = np.column_stack([np.ones(k), rng.normal(size=(k, p - 1))])
    y = X @ rng.normal(size=p) + rng.normal(0, np.sqrt(v + 0.15))
    return y, v, X


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(4))
def test_vectorised_equals_dense_definition(method, seed):
    y, v, X = _data(seed, p=1 + seed % 3)
    expected = max(0.0, _dense(y, v, X, method))
    assert estimate_tau2(y, v, X, method).tau2 == pytest.approx(expected, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_mask_and_padding_change_nothing(method):
    y, v, X = _data(7, k=9, p=1)
    single = estimate_tau2(y, v, X[:, :1], method).tau2
    Y = np.full((3, 12), np.nan)
    V = np.full((3, 12), np.nan)
    Y[:, :9], V[:, :9] = y, v
    Y[1], V[1] = np.roll(Y[1], 3), np.roll(V[1], 3)  # padding first
    Y[2, 9:] = 5.0  # present y but absent v: masked
    batch = estimate_tau2(Y, V, np.ones((12, 1)), method)
    np.testing.assert_allclose(batch.tau2, single, rtol=1e-10, atol=1e-14)


def test_per_data_set_designs():
    fits = [_data(s, k=10, p=2) for s in range(3)]
    Y = np.array([f[0] for f in fits])
    V = np.array([f[1] for f in fits])
    X = np.array([f[2] for f in fits])
    batch = estimate_tau2(Y, V, X, "REML").tau2
    single = [estimate_tau2(*f, "REML").tau2 for f in fits]
    np.testing.assert_allclose(batch, single, rtol=1e-12)


def test_too_few_studies_give_zero():
    assert estimate_tau2(np.array([0.3]), np.array([0.1]), np.ones((1, 1)), "REML").tau2 == 0.0
    assert estimate_tau2(np.array([0.3, 1.0]), np.array([0.1, 0.2]), np.eye(2), "DL").tau2 == 0.0


# ---- ML/REML: the likelihood maximum Fisher scoring heads for, and the bound 0 ----------
# Reference: tests/reference/tau2_multimodal.R → tau2_multimodal.json (metafor 3.8, Fisher
# scoring run to convergence).  On these dat.bcg subsets the REML likelihood has a local
# maximum at tau^2 = 0 and a higher one inside, which Fisher scoring from the HE start
# approaches too slowly to reach in 100 steps.

MULTIMODAL = json.loads((Path(__file__).parent / "reference" / "tau2_multimodal.json").read_text())
SUBSETS = [case["studies"] for case in MULTIMODAL["cases"]]
LIKELIHOOD_METHODS = ["REML", "ML"]


def test_multimodal_reference_grid_is_complete():
    assert SUBSETS == [[1, 3, 5, 13], [2, 7, 10, 12], [2, 5, 9, 11, 12]]
    for case in MULTIMODAL["cases"]:
        for method in LIKELIHOOD_METHODS:
            assert set(case[method]) == {"tau2", "estimate", "se", "loglik"}
    assert [c["method"] for c in MULTIMODAL["local_maxima"]] == ["REML", "ML"]


@pytest.mark.parametrize("method", LIKELIHOOD_METHODS)
@pytest.mark.parametrize("case", MULTIMODAL["cases"], ids=["-".join(map(str, s)) for s in SUBSETS])
def test_bcg_subsets_reach_the_interior_maximum_as_metafor(case, method):
    rows = np.array(case["studies"]) - 1
    y, v = np.array(MULTIMODAL["yi"])[rows], np.array(MULTIMODAL["vi"])[rows]
    ref = case[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # fallback flag, tested elsewhere
        tau2 = estimate_tau2(y, v, np.ones((rows.size, 1)), method).tau2
        fit = ma.random_effects(y, v, method=method)
    # metafor's ML values are ~1e-13 (its iteration creeping to the bound), ours exactly 0
    np.testing.assert_allclose([tau2, fit.tau2], ref["tau2"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([fit.estimate, fit.se, fit.loglik],
                               [ref["estimate"], ref["se"], ref["loglik"]], rtol=1e-6)


@pytest.mark.parametrize("case", MULTIMODAL["local_maxima"], ids=lambda c: c["method"])
def test_follows_metafor_where_a_higher_maximum_lies_elsewhere(case):
    """metafor's rule, kept for parity: the maximum Fisher scoring reaches from the HE start,
    or tau^2 = 0 if that is more likely; not a global search of the likelihood."""
    y, v, method = np.array(case["yi"]), np.array(case["vi"]), case["method"]
    fit = ma.random_effects(y, v, method=method)
    assert fit.tau2 == case["tau2"] == 0.0
    np.testing.assert_allclose([fit.estimate, fit.loglik], [case["estimate"], case["loglik"]],
                               rtol=1e-8)
    grid = np.linspace(0.0, 0.05, 5001)
    _, ll = _score_loglik(y, v, grid, method == "REML")
    assert ll.max() > ll[0] + 1e-3   # the documented exception to global maximisation


def _score_loglik(y, v, tau2, restricted):
    """Score (×2) and (restricted) log-likelihood of the intercept-only model, up to a
    constant, at each τ² of ``tau2``, written out directly (Viechtbauer 2005, eqs. 7, 8)."""
    w = 1 / (v[None, :] + tau2[:, None])
    sw = w.sum(axis=1)
    e = y[None, :] - (w @ y / sw)[:, None]
    ll = -0.5 * np.log(v[None, :] + tau2[:, None]).sum(axis=1) - 0.5 * (w * e * e).sum(axis=1)
    score = (w * w * e * e).sum(axis=1) - sw
    if restricted:
        ll -= 0.5 * np.log(sw)
        score += (w * w).sum(axis=1) / sw
    return score, ll


def _ascent_path(y, v, start, restricted):
    """τ² from ``start`` in the direction the likelihood rises, on a fine grid, up to just
    past the first maximum (score crossing + to −) or down to 0."""
    if _score_loglik(y, v, np.array([start]), restricted)[0][0] > 0:
        grid = start + np.linspace(0.0, 2 * np.max((y - y.mean()) ** 2) + v.mean(), 4001)
    else:
        grid = np.linspace(start, 0.0, 4001)
    score, _ = _score_loglik(y, v, grid, restricted)
    change = np.flatnonzero(np.sign(score[1:]) != np.sign(score[:-1]))
    return grid[: change[0] + 2] if change.size else grid


@st.composite
def datasets(draw):
    """k = 3-10 effects in [-3, 3] with sampling variances in [0.001, 1]."""
    k = draw(st.integers(3, 10))
    y = draw(st.lists(st.floats(-3, 3), min_size=k, max_size=k))
    v = draw(st.lists(st.floats(1e-3, 1.0), min_size=k, max_size=k))
    return np.array(y), np.array(v)


def _bcg(studies):
    rows = np.array(studies) - 1
    return np.array(MULTIMODAL["yi"])[rows], np.array(MULTIMODAL["vi"])[rows]


@settings(max_examples=100, deadline=None)
@given(dataset=datasets(), method=st.sampled_from(LIKELIHOOD_METHODS))
@example(dataset=_bcg(SUBSETS[0]), method="REML")
@example(dataset=_bcg(SUBSETS[1]), method="REML")
def test_likelihood_estimate_is_a_maximiser(dataset, method):
    y, v = dataset
    restricted = method == "REML"
    X = np.ones((y.size, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tau2 = estimate_tau2(y, v, X, method).tau2
    start = max(0.0, estimate_tau2(y, v, X, "HE").tau2)
    # an interior estimate is a local maximum; 0 may be chosen (as metafor) for being more
    # likely than the maximum reached, without being a maximum itself
    near = tau2 + 1e-3 * (tau2 + v.mean()) * np.array([-1.0, 1.0]) if tau2 > 0 else []
    near = np.clip(near, 0.0, None)
    grid = np.concatenate([[0.0], _ascent_path(y, v, start, restricted), near])
    _, ll_grid = _score_loglik(y, v, grid, restricted)
    _, ll_hat = _score_loglik(y, v, np.array([tau2]), restricted)
    # at least as likely as tau^2 = 0 and as every tau^2 between the start and the first
    # maximum the iteration heads for
    assert ll_hat[0] >= ll_grid.max() - 1e-9 * (1 + abs(ll_hat[0]))


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    k=st.integers(3, 40),
    tau2_true=st.sampled_from([0.0, 0.01, 0.2, 2.0]),
    start_factor=st.sampled_from([0.0, 1e-6, 0.5, 0.999, 1.001, 3.0, 100.0]),
    method=st.sampled_from(["REML", "ML"]),
)
def test_a_warm_start_reaches_the_same_estimate(seed, k, tau2_true, start_factor, method):
    """``start`` (used by trim-and-fill's refits of nearly the same data) changes only the
    path: from any start, near or far, above or below, the estimate is the one the default
    iteration from HE finds, to its tolerance, including a root at the bound 0."""
    from metaally.models.tau2 import estimate, make_problem
    from metaally.models.wls import Design

    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, k)
    y = rng.normal(0.1, np.sqrt(v + tau2_true))
    pb = make_problem(y[None], v[None], Design(np.ones((k, 1))))
    default = estimate(pb, method)
    start = np.array([(default.tau2[0] + 0.01) * start_factor])
    warm = estimate(pb, method, start)
    assert warm.tau2[0] == pytest.approx(default.tau2[0], rel=1e-9, abs=1e-11 * v.mean())
    assert warm.fallback[0] <= default.fallback[0]


@pytest.mark.parametrize("start", [0.0, 0.23, 7.7])
def test_a_warm_start_does_not_step_over_an_interior_maximum(start):
    """An ML likelihood that falls from τ² = 0 and then rises to a higher maximum at
    τ² ≈ 0.077: a search from a start at or above it, which walks down past the rise to 0,
    must not stop at the bound (found by a random property run)."""
    from metaally.models.tau2 import _score_ml, estimate, make_problem
    from metaally.models.wls import Design

    rng = np.random.default_rng(154)
    k = int(rng.integers(3, 41))
    v = rng.uniform(0.01, 0.5, k)
    y = rng.normal(0.1, np.sqrt(v + 0.2))
    pb = make_problem(y[None], v[None], Design(np.ones((k, 1))))
    score = [_score_ml(pb.fit(np.array([t])), pb)[0][0] for t in (0.0, 0.01, 0.2)]
    assert score[0] < 0 < score[1] and score[2] < 0  # the shape this test is about
    default = estimate(pb, "ML")
    assert default.tau2[0] > 0.05
    warm = estimate(pb, "ML", np.array([start]))
    assert warm.tau2[0] == pytest.approx(default.tau2[0], rel=1e-9)


def test_a_start_is_refused_where_no_iteration_takes_it():
    from metaally.models.tau2 import estimate, make_problem
    from metaally.models.wls import Design

    pb = make_problem(np.array([[0.1, 0.3, 0.5]]), np.array([[0.1, 0.1, 0.2]]),
                      Design(np.ones((3, 1))))
    with pytest.raises(ValueError, match="start applies to the ML and REML"):
        estimate(pb, "DL", np.array([0.1]))
