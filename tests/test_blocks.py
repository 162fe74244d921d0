"""The per-cluster inverse of the CHE marginal covariance (Woodbury form) against LAPACK.

``marginal_inverse`` never forms Sigma_j^-1 where the compound-symmetric structure allows;
every quantity the likelihood and the sandwich read from it (Sigma^-1 b, traces, Frobenius
norms, log-determinants) is checked here against ``np.linalg.inv``/``slogdet`` of the dense
Sigma_j, including the dense fallback (rho near 1 with sigma2_within = 0)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaally.models.blocks import (
    che_blocks,
    cluster_blocks,
    marginal_covariance,
    marginal_inverse,
)


def _blocks(seed: int, sizes: list[int], rho: float, p: int = 2):
    rng = np.random.default_rng(seed)
    study = np.repeat(np.arange(len(sizes)), sizes)
    k = study.size
    vi = rng.uniform(0.005, 0.3, k)
    yi = rng.normal(0.2, 0.4, k)
    X = np.column_stack([np.ones(k), rng.normal(size=(k, p - 1))])
    return che_blocks(yi, vi, X, cluster_blocks(study), rho)


def _check(block, s2s: float, s2w: float) -> None:
    sigma = marginal_covariance(block, s2s, s2w)
    dense = np.linalg.inv(sigma)
    inv = marginal_inverse(block, s2s, s2w)
    scale = np.abs(dense).max()
    np.testing.assert_allclose(inv.dense(), dense, rtol=1e-9, atol=1e-11 * scale)
    np.testing.assert_allclose(inv.apply(block.y), np.einsum("cab,cb->ca", dense, block.y),
                               rtol=1e-9, atol=1e-11 * scale)
    np.testing.assert_allclose(inv.apply(block.X), dense @ block.X, rtol=1e-9,
                               atol=1e-11 * scale)
    assert inv.trace() == pytest.approx(np.einsum("caa->", dense), rel=1e-10)
    assert inv.frobenius2() == pytest.approx(np.sum(dense**2), rel=1e-9)
    assert inv.logdet == pytest.approx(np.linalg.slogdet(sigma)[1].sum(), rel=1e-10, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=12),
    rho=st.floats(-0.15, 0.95),  # > -1/(m - 1) for m <= 7: V positive definite
    s2s=st.one_of(st.just(0.0), st.floats(1e-6, 2.0)),
    s2w=st.one_of(st.just(0.0), st.floats(1e-6, 2.0)),
)
def test_woodbury_inverse_equals_lapack(seed, sizes, rho, s2s, s2w):
    for block in _blocks(seed, sizes, rho):
        _check(block, s2s, s2w)


def test_the_woodbury_form_is_taken_and_the_dense_fallback_agrees():
    """rho = 0.6: the rank-2 form (no dense matrix held).  A block whose V is not marked
    compound-symmetric (rho NaN), or whose A = diag(sigma2_within + (1 - rho) v) is near
    singular, takes the dense path, which must give the same quantities."""
    (block,) = _blocks(3, [4] * 6, 0.6)
    assert marginal_inverse(block, 0.1, 0.02).dense_inverse is None
    _check(block, 0.1, 0.02)
    dense_block = replace(block, rho=float("nan"))
    assert marginal_inverse(dense_block, 0.1, 0.02).dense_inverse is not None
    _check(dense_block, 0.1, 0.02)
    (near_one,) = _blocks(4, [3] * 5, 1.0 - 1e-9)
    assert marginal_inverse(near_one, 0.1, 0.0).dense_inverse is not None
