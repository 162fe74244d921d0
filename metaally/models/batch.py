"""Many independent univariate meta-analyses at once, on the engine of ``random_effects``.

Each row of ``Y``/``V`` is one data set (NaN-padded to a common width), fitted
by :func:`metaally.models.univariate.fit_arrays`, the same vectorised code that
``random_effects`` runs with one row, so the results agree row by row.  Rows
are processed in chunks so that memory stays bounded (about 100 MB of
temporaries per chunk) whatever the number of data sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metaally.models.inputs import check_aligned, design_matrix
from metaally.models.progress import chunks
from metaally.models.tau2 import warn_fallback
from metaally.models.univariate import FitArrays, check_options, fit_arrays
from metaally.models.wls import Design

__all__ = ["random_effects_batch"]


def random_effects_batch(
    Y: Any,
    V: Any,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    mods: Any = None,
    intercept: bool = True,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Fit ``random_effects`` to every row of ``Y``/``V`` (shape (B, k), NaN-padded).

    Parameters
    ----------
    Y, V : effect sizes and sampling variances, one data set per row; a NaN in
        either marks an absent entry (data sets may have unequal k).
    method, test, level, intercept : as in :func:`metaally.random_effects` (the same
        defaults: REML, z test, 0.95).
    mods : moderators shared by all data sets, shape (k,) or (k, q), or one
        set per data set, shape (B, k, q).
    progress : progress bar policy of :mod:`metaally.models.progress`.

    Returns
    -------
    DataFrame with one row per data set: k, estimate, se, stat, df, pvalue,
    ci_low, ci_high (first coefficient, the intercept if any), tau2, tau, i2,
    h2, q, q_df, q_pvalue, pi_low, pi_high (NaN with moderators), qm, qm_df1,
    qm_df2, qm_pvalue, loglik, fallback.
    """
    method, test, level = check_options(method, test, level)
    check_aligned(Y=Y, V=V)
    if hasattr(Y, "columns") and hasattr(V, "columns"):  # DataFrames: columns are paired too
        check_aligned(Y=Y.T, V=V.T)
    y, v = _batch_array(Y, "Y"), _batch_array(V, "V")
    if y.shape != v.shape:
        raise ValueError(f"Y has shape {y.shape} but V has shape {v.shape}; they must match")
    mask = ~np.isnan(y) & ~np.isnan(v)
    if np.any(np.isinf(y[mask])):
        raise ValueError("Y must be finite numbers (NaN marks absent entries); found infinity")
    if np.any(~np.isfinite(v[mask]) | (v[mask] <= 0)):
        raise ValueError("V must be positive finite sampling variances (NaN marks absent entries)")
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(f"data set {empty[0]} (row index) has no effect sizes")
    X = _design(mods, y.shape, intercept, mask)
    n, k = y.shape
    p = X.shape[-1]
    frames = []
    # entries per data set: k times a design factor (the p x p Gram products)
    for rows in chunks(n, k * (p * p + 4), "meta-analyses", "data sets", progress):
        design = Design(X if X.ndim == 2 else X[rows])
        fit = fit_arrays(y[rows], v[rows], design, method, test, level,
                         intercept=intercept, mask=mask[rows], warn=False)
        frames.append(_frame(fit))
    out = pd.concat(frames, ignore_index=True)
    warn_fallback(out["fallback"].to_numpy(), method, stacklevel=2)
    return out


def _frame(fit: FitArrays) -> pd.DataFrame:
    return pd.DataFrame({
        "k": fit.k,
        "estimate": fit.beta[:, 0],
        "se": fit.se[:, 0],
        "stat": fit.stat[:, 0],
        "df": fit.df,
        "pvalue": fit.pvalue[:, 0],
        "ci_low": fit.ci_low[:, 0],
        "ci_high": fit.ci_high[:, 0],
        "tau2": fit.tau2,
        "tau": np.sqrt(fit.tau2),
        "i2": fit.i2,
        "h2": fit.h2,
        "q": fit.q,
        "q_df": fit.q_df,
        "q_pvalue": fit.q_pvalue,
        "pi_low": fit.pi_low,
        "pi_high": fit.pi_high,
        "qm": fit.qm,
        "qm_df1": fit.qm_df1,
        "qm_df2": fit.qm_df2,
        "qm_pvalue": fit.qm_pvalue,
        "loglik": fit.loglik,
        "fallback": fit.fallback,
    })


def _batch_array(values: Any, label: str) -> np.ndarray:
    """A (B, k) float array; a list of unequal-length rows is NaN-padded."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        rows = [np.asarray(r, dtype=float).ravel() for r in values]
        arr = np.full((len(rows), max((r.size for r in rows), default=0)), np.nan)
        for i, r in enumerate(rows):
            arr[i, : r.size] = r
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{label} must be a non-empty 2-D array (data sets × studies)")
    return arr


def _design(mods: Any, shape: tuple[int, int], intercept: bool, mask: np.ndarray) -> np.ndarray:
    """Shared (k, p) or per-data-set (B, k, p) design; absent entries get zeros."""
    n, k = shape
    arr = None if mods is None else np.asarray(mods, dtype=float)
    if arr is None or arr.ndim <= 2:  # shared by every data set: the one design builder
        if arr is not None and arr.shape[0] != k:
            raise ValueError(f"mods has {arr.shape[0]} rows but the data sets have {k} columns")
        return design_matrix(arr, k, intercept)[0]
    if arr.ndim != 3 or arr.shape[:2] != (n, k):
        raise ValueError(f"per-data-set mods must have shape ({n}, {k}, q); got {arr.shape}")
    arr = np.where(mask[:, :, None], arr, 0.0)
    if not np.all(np.isfinite(arr)):
        raise ValueError("mods must be finite numbers where effect sizes are present")
    return np.concatenate([np.ones((n, k, 1)), arr], axis=2) if intercept else arr
