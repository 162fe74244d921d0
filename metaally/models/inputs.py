"""Checking and coercing what users pass to the model functions.

Every model entry point (``random_effects``, ``multilevel``, ``aggregate``, the
diagnostics) accepts lists, numpy arrays or pandas Series and goes through these
functions, so that bad input gets the same plain message everywhere and missing
values are handled the same way everywhere: a row with a missing ``yi``, ``vi``,
moderator or study label is dropped with one warning (metafor's ``na.action =
"na.omit"``); anything else that is not a number (±inf, a non-positive ``vi``) is a
``ValueError`` naming the argument.  pandas objects are never paired by position:
two with different indexes are a ``ValueError`` (:func:`check_aligned`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_aligned",
    "check_level",
    "column_scale",
    "design_matrix",
    "effect_arrays",
    "frame_yi_sei",
    "mod_columns",
    "take_rows",
    "variance_scale",
]


def check_level(level: Any, name: str = "level") -> float:
    """A confidence level as a proportion, 0 < level < 1 (e.g. 0.95).

    One convention everywhere: a percentage (95) is rejected with a message saying
    so, rather than silently divided by 100 in some functions and not in others.
    """
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number between 0 and 1 (e.g. 0.95); "
                         f"got {level!r}") from None
    if 1 <= value < 100:
        raise ValueError(f"{name} must be a proportion between 0 and 1 (e.g. 0.95), not a "
                         f"percentage; got {level!r}")
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1 (e.g. 0.95); got {level!r}")
    return value


def check_aligned(**named: Any) -> None:
    """Raise if two of the ``named`` pandas objects (Series/DataFrame) have different indexes.

    Arrays and lists are paired by position; pandas objects carry an index, and two
    different ones would be paired by position silently, so they must be aligned first
    (e.g. ``.reset_index(drop=True)`` or ``.loc[common]``).
    """
    indexed = [(name, value.index) for name, value in named.items()
               if value is not None and hasattr(value, "index") and hasattr(value, "iloc")]
    for name, index in indexed[1:]:
        first, first_index = indexed[0]
        if not index.equals(first_index):
            raise ValueError(
                f"{first} and {name} are pandas objects with different indexes; align them "
                "(e.g. .reset_index(drop=True)): they are never paired by position"
            )


def effect_arrays(
    yi: Any, vi: Any, *others: Any, names: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Coerce ``yi``, ``vi`` (and row-aligned ``others``) to arrays and check them.

    Rows where ``yi``, ``vi`` or a numeric ``other`` is NaN are dropped with one
    warning naming how many (metafor's ``na.action = "na.omit"``).  Raises
    ``ValueError`` for mismatched lengths, no rows left, a non-finite ``yi``
    (±inf), or a ``vi`` that is not a positive finite number.

    Returns ``(yi, vi, others, kept)`` where ``kept`` is the boolean mask of the
    original rows that were kept.  pandas arguments must share one index.
    """
    labels = list(names) + [f"argument {i + 3}" for i in range(len(names), len(others))]
    check_aligned(yi=yi, vi=vi, **dict(zip(labels, others, strict=True)))
    y = _as_float(yi, "yi")
    v = _as_float(vi, "vi")
    extra = [np.asarray(o) for o in others]
    for arr, label in zip([v, *extra], ["vi", *labels], strict=True):
        if arr.ndim != 1 or arr.shape[0] != y.shape[0]:
            raise ValueError(
                f"yi has {y.shape[0]} values but {label} has "
                f"{arr.shape[0] if arr.ndim == 1 else arr.shape}; they must have the same length"
            )
    missing = np.isnan(y) | np.isnan(v)
    for arr in extra:
        if arr.dtype.kind == "f":
            missing |= np.isnan(arr)
        elif arr.dtype.kind == "O":  # None or a float NaN (NaN != NaN), in one C-level pass
            missing |= np.equal(arr, None) | (arr != arr)
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} of {y.shape[0]} rows had missing values and were dropped",
            stacklevel=3,
        )
    kept = ~missing
    if missing.any():
        y, v = y[kept], v[kept]
        extra = [arr[kept] for arr in extra]
    else:  # copies all the same (the result must not share the caller's arrays)
        y, v = y.copy(), v.copy()
        extra = [arr.copy() for arr in extra]
    if y.shape[0] == 0:
        if kept.size == 0:
            raise ValueError("yi is empty: there are no effect sizes to analyse")
        missing_in = ", ".join(["yi", "vi", *labels[: len(extra)]])
        raise ValueError(
            f"no effect sizes left to analyse: every row has a missing value in {missing_in}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("yi must be finite numbers; found an infinite value")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        bad = int(np.sum(~np.isfinite(v) | (v <= 0)))
        raise ValueError(
            f"vi must be positive finite sampling variances; {bad} value(s) are zero, "
            "negative or infinite"
        )
    return y, v, extra, kept


def variance_scale(v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """A power of two s per data set (row of ``v``) with s² near the largest used v_i.

    The estimators divide y by s and v by s² before fitting and scale the results
    back (estimates and intervals by s, variances by s²).  Every model here is
    equivariant under y → c·y, v → c²·v, so this changes no answer, but keeps the
    weights 1/(v + τ²), their squares and sums far from overflow and underflow
    for effect sizes on any scale (c between 1e-150 and 1e150 at least).  Being
    a power of two, the division is exact: data already on a unit scale are fitted
    bit for bit as before.
    """
    v2 = np.atleast_2d(np.asarray(v, dtype=float))
    used = np.isfinite(v2) & (v2 > 0)
    if mask is not None:
        used &= np.atleast_2d(np.asarray(mask, dtype=bool))
    largest = np.max(np.where(used, v2, 0.0), axis=-1)
    exponent = np.zeros(largest.shape)
    positive = largest > 0
    exponent[positive] = np.round(np.log2(largest[positive]) / 2)
    return np.ldexp(1.0, exponent.astype(int))


def column_scale(X: np.ndarray) -> np.ndarray:
    """A power of two per column of ``X`` near its largest |x| (1 for a zero column).

    Dividing the columns by it before fitting and the coefficients β_j (their
    covariances) by it afterwards gives the same model, with a design whose columns
    are all of size about 1 (e.g. Egger's standard-error moderator on any scale).
    """
    largest = np.max(np.abs(X), axis=0) if X.shape[0] else np.zeros(X.shape[1])
    exponent = np.zeros(largest.shape)
    positive = largest > 0
    exponent[positive] = np.round(np.log2(largest[positive]))
    return np.ldexp(1.0, exponent.astype(int))


def design_matrix(
    mods: Any, k: int, intercept: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Build the k x p design matrix and its column names from ``mods``.

    ``mods`` may be None (intercept only), a 1-D or 2-D array-like, or a
    DataFrame/Series (its column names are kept).  An intercept column named
    ``intrcpt`` (metafor's name) is prepended unless ``intercept=False``.
    """
    if k == 0:
        raise ValueError("yi is empty: there are no effect sizes to analyse")
    columns: list[np.ndarray] = []
    names: list[str] = []
    if intercept:
        columns.append(np.ones(k))
        names.append("intrcpt")
    if mods is not None:
        if hasattr(mods, "columns"):
            mod_names = [str(c) for c in mods.columns]
            arr = np.asarray(mods, dtype=float)
        elif hasattr(mods, "name") and np.ndim(mods) == 1:
            mod_names = [str(mods.name) if mods.name is not None else "mods"]
            arr = np.asarray(mods, dtype=float)[:, None]
        else:
            arr = np.asarray(mods, dtype=float)
            if arr.ndim == 1:
                arr = arr[:, None]
            mod_names = (["mods"] if arr.shape[1] == 1
                         else [f"mods{j + 1}" for j in range(arr.shape[1])])
        if arr.ndim != 2 or arr.shape[0] != k:
            raise ValueError(f"mods has {arr.shape[0]} rows but there are {k} effect sizes")
        if not np.all(np.isfinite(arr)):
            raise ValueError("mods must be finite numbers")
        columns.extend(arr.T)
        names.extend(mod_names)
    if not columns:
        raise ValueError("the model has no coefficients: give mods or keep the intercept")
    X = columns[0][:, None] if len(columns) == 1 else np.column_stack(columns)
    # rank(X'X) = rank(X); p x p is cheap.  Columns are scaled to a largest |x| of 1 first,
    # so that a moderator in units of 1e150 (e.g. the standard error of rescaled data) is
    # judged by its pattern, not by its size.
    norms = np.max(np.abs(X), axis=0)
    Xn = X / np.where(norms > 0, norms, 1.0)
    if np.linalg.matrix_rank(Xn.T @ Xn) < X.shape[1]:
        raise ValueError(
            "the moderators are linearly dependent (the design matrix is not of full rank)"
        )
    return X, names


def frame_yi_sei(frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Effect sizes and standard errors from a DataFrame of effects (as the plots accept).

    ``yi`` is required; the standard error is ``sqrt(vi)`` from a ``vi`` column, else the
    ``sei`` column, else None (the caller decides whether it can do without).
    """
    if "yi" not in frame:
        raise ValueError("the frame needs a yi column")
    yi = frame["yi"].to_numpy(dtype=float)
    if "vi" in frame:
        return yi, np.sqrt(frame["vi"].to_numpy(dtype=float))
    if "sei" in frame:
        return yi, frame["sei"].to_numpy(dtype=float)
    return yi, None


def mod_columns(mods: Any) -> list[np.ndarray]:
    """Moderator columns as 1-D float arrays, to pass to :func:`effect_arrays` so that rows
    with a missing moderator are dropped like rows with a missing yi."""
    if mods is None:
        return []
    try:
        arr = np.asarray(mods, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("mods must be numbers") from None
    if arr.ndim == 1:
        return [arr]
    if arr.ndim != 2:
        raise ValueError(f"mods must be 1-D or 2-D, got shape {arr.shape}")
    return list(arr.T)


def take_rows(mods: Any, kept: np.ndarray) -> Any:
    """The moderator rows kept after dropping missing values, keeping column names."""
    if mods is None or kept.all():
        return mods
    if hasattr(mods, "iloc"):
        return mods.iloc[kept]
    return np.asarray(mods, dtype=float)[kept]


def _as_float(values: Any, label: str) -> np.ndarray:
    raw = values if isinstance(values, np.ndarray) else np.asarray(values)
    kinds = {raw.dtype.kind}
    if raw.dtype.kind == "O":  # numpy would silently cast "0.3" and drop imaginary parts
        kinds = {"c" if isinstance(x, complex) else "U" if isinstance(x, str | bytes) else "f"
                 for x in raw.ravel()}
    if "c" in kinds:
        raise ValueError(f"{label} must be real numbers; got complex values")
    if kinds & set("US"):
        raise ValueError(f"{label} must be numbers; got text")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be numbers") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.size == 1 else arr
    if arr.ndim != 1:
        raise ValueError(f"{label} must be one-dimensional, got shape {arr.shape}")
    return arr
