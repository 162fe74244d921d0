"""random_effects_batch: the same engine as random_effects, row by row."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import metaally as ma
import metaally.models.progress
from metaally.models.tau2 import METHODS

COLUMNS = ["estimate", "se", "ci_low", "ci_high", "pvalue", "tau2", "i2", "h2", "q", "q_pvalue",
           "pi_low", "pi_high", "qm", "qm_pvalue"]


def _simulate(n, k, seed=0):
    rng = np.random.default_rng(seed)
    V = rng.uniform(0.01, 0.5, (n, k))
    Y = rng.normal(0.2, np.sqrt(V + rng.choice([0.0, 0.05, 0.3], (n, 1))))
    return Y, V


def _assert_row_matches(row, res):
    for name in COLUMNS:
        assert row[name] == pytest.approx(getattr(res, name), rel=1e-10, abs=1e-12, nan_ok=True)
    assert row["k"] == res.k and row["df"] == res.df


@pytest.mark.parametrize("method", METHODS)
def test_stress_k10_finite_and_equal_to_single_fits(method):
    """A few thousand random k = 10 data sets: every estimator returns finite results and
    the batch rows equal single fits."""
    Y, V = _simulate(3000, 10, seed=METHODS.index(method))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback note, ~1% for ML/REML
        out = ma.random_effects_batch(Y, V, method=method, test="knha")
    assert out.shape[0] == 3000
    assert np.isfinite(out[["estimate", "se", "ci_low", "ci_high", "tau2", "i2", "q"]]).all().all()
    assert (out["tau2"] >= 0).all()
    rows = np.r_[np.flatnonzero(out["fallback"])[:5], np.arange(0, 3000, 300)]
    for i in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _assert_row_matches(out.iloc[i], ma.random_effects(Y[i], V[i], method, test="knha"))


@pytest.mark.parametrize("test", ["z", "knha", "adhoc"])
def test_unequal_k_by_nan_padding(test):
    Y, V = _simulate(6, 8, seed=3)
    for i, k in enumerate([8, 5, 2, 1, 7, 3]):
        Y[i, k:] = np.nan
    Y[4], V[4] = np.roll(Y[4], 1), np.roll(V[4], 1)
    out = ma.random_effects_batch(Y, V, method="REML", test=test)
    for i in range(6):
        present = ~np.isnan(Y[i])
        _assert_row_matches(out.iloc[i], ma.random_effects(Y[i, present], V[i, present], test=test))


def test_ragged_lists_are_padded():
    Y = [[0.1, 0.4, 0.3], [0.2, -0.1]]
    V = [[0.05, 0.02, 0.1], [0.04, 0.03]]
    out = ma.random_effects_batch(Y, V, method="DL")
    assert list(out["k"]) == [3, 2]
    assert out.loc[1, "estimate"] == pytest.approx(ma.random_effects(Y[1], V[1], "DL").estimate)


def test_shared_and_per_data_set_moderators():
    Y, V = _simulate(5, 12, seed=4)
    rng = np.random.default_rng(5)
    shared = rng.normal(size=12)
    out = ma.random_effects_batch(Y, V, mods=shared, test="knha")
    per_set = rng.normal(size=(5, 12, 2))
    out3 = ma.random_effects_batch(Y, V, mods=per_set, test="z")
    for i in range(5):
        _assert_row_matches(out.iloc[i], ma.random_effects(Y[i], V[i], mods=shared, test="knha"))
        _assert_row_matches(out3.iloc[i], ma.random_effects(Y[i], V[i], mods=per_set[i]))


def test_chunking_changes_nothing_and_warns_once(monkeypatch):
    Y, V = _simulate(500, 10, seed=6)
    with pytest.warns(RuntimeWarning, match="REML: the tau"):
        whole = ma.random_effects_batch(Y, V)
    monkeypatch.setattr(metaally.models.progress, "CHUNK_ELEMENTS", 300)  # 6 data sets per chunk
    with pytest.warns(RuntimeWarning) as record:
        chunked = ma.random_effects_batch(Y, V, progress=False)
    assert len(record) == 1 and f"for {whole['fallback'].sum()} of 500" in str(record[0].message)
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-12)


@pytest.mark.parametrize(
    ("Y", "V", "kwargs", "message"),
    [
        ([[0.1, 0.2]], [[0.1, 0.2, 0.3]], {}, "shape"),
        ([[0.1, np.inf]], [[0.1, 0.2]], {}, "finite"),
        ([[0.1, 0.2]], [[0.1, -0.2]], {}, "positive"),
        ([[0.1, 0.2], [np.nan, np.nan]], [[0.1, 0.2], [0.1, 0.2]], {}, "no effect sizes"),
        ([[0.1, 0.2]], [[0.1, 0.2]], {"mods": [1.0, 2.0, 3.0]}, "mods"),
        ([[0.1, 0.2]], [[0.1, 0.2]], {"method": "BAD"}, "method"),
    ],
)
def test_bad_input_raises_value_error(Y, V, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.random_effects_batch(Y, V, **kwargs)
