"""tau^2 estimators: the vectorised O(k p^2) algebra against the textbook k x k definitions
(Viechtbauer 2005; metafor's rma.uni), masking/padding, batch shapes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from metaally.tau2 import METHODS, estimate_tau2


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
