"""Every estimator and diagnostic on ill-conditioned input.

Scale invariance: each model is equivariant under yi -> c*yi, vi -> c^2*vi, so every
output is the unscaled one times c^0, c^1 or c^2 (log-likelihoods shift by a constant and
are left out).  Degenerate but valid input (identical yi, k = 1, 2) gives an answer or a
warning with NaN, and input outside the domain a ValueError naming the argument; never an
unrelated exception (LinAlgError, ZeroDivisionError) or a silent infinity.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metaally as ma
import metaally.allyship as ally

EFFECTS = ma.compute_effects(ally.load_table2())
INCLUDED = EFFECTS[EFFECTS["included"]].reset_index(drop=True)
Y = INCLUDED["yi"].to_numpy()
V = INCLUDED["vi"].to_numpy()
STUDY = INCLUDED["study_id"].to_numpy()
SHIFTED = {"loglik", "aic", "bic", "aicc", "deviance"}
#: The answer itself: NaN or infinite only with a warning saying why.  (Heterogeneity
#: statistics without residual df, e.g. Q for k = 1, are NaN by definition, as in metafor.)
MAIN = {"estimate", "se", "stat", "pvalue", "ci_low", "ci_high", "tau2", "limit_estimate"}


def _frame(result: Any) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        return result
    return result.to_frame()


#: name -> f(yi, vi, study) returning a result object or a frame
ESTIMATORS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], Any]] = {
    "random_effects": lambda y, v, s: ma.random_effects(y, v),
    "random_effects_knha": lambda y, v, s: ma.random_effects(y, v, test="knha"),
    "random_effects_pm": lambda y, v, s: ma.random_effects(y, v, method="PM"),
    "random_effects_batch": lambda y, v, s: ma.random_effects_batch(
        np.stack([y, y[::-1]]), np.stack([v, v[::-1]])),
    "multilevel": lambda y, v, s: ma.multilevel(y, v, study=s),
    "robust": lambda y, v, s: ma.multilevel(y, v, study=s).robust(),
    "aggregate": lambda y, v, s: ma.aggregate(y, v, study=s),
    "egger_test": lambda y, v, s: ma.egger_test(y, v),
    "egger_test_study": lambda y, v, s: ma.egger_test(y, v, study=s),
    "rank_test": lambda y, v, s: ma.rank_test(y, v),
    "trim_and_fill": lambda y, v, s: ma.trim_and_fill(y, v),
    "pet_peese": lambda y, v, s: ma.pet_peese(y, v),
    "leave_one_out": lambda y, v, s: ma.leave_one_out(ma.random_effects(y, v)),
    "leave_one_out_ml": lambda y, v, s: ma.leave_one_out(ma.multilevel(y, v, study=s)),
    "influence": lambda y, v, s: ma.influence(ma.random_effects(y, v)),
    "cumulative": lambda y, v, s: ma.cumulative(ma.random_effects(y, v)),
    "permutation_test": lambda y, v, s: ma.permutation_test(
        ma.random_effects(y, v), n_perm=50, seed=1, progress=False),
    "gosh": lambda y, v, s: ma.gosh(y[:12], v[:12], subsets=40, seed=1, progress=False),
}


def _numeric_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for name in frame.columns:
        if str(name).lower() in SHIFTED:
            continue
        col = frame[name]
        if col.dtype.kind in "fi":
            out[str(name)] = col.to_numpy(dtype=float)
    return out


def assert_scales(base: pd.DataFrame, scaled: pd.DataFrame, c: float) -> None:
    """Each numeric column equals the base column times c**power for one power in 0, 1, 2."""
    a, b = _numeric_columns(base), _numeric_columns(scaled)
    assert a.keys() == b.keys()
    for name, x in a.items():
        y = b[name]
        assert np.array_equal(np.isnan(x), np.isnan(y)), (name, x, y)
        assert not np.any(np.isinf(y) & ~np.isinf(x)), (name, "silent infinity", x, y)
        ok = np.isfinite(x)
        if not ok.any():
            continue
        matches = [p for p in (0, 1, 2)
                   if np.allclose(y[ok] / c**p, x[ok], rtol=1e-6, atol=1e-9 * np.max(
                       np.abs(x[ok]), initial=0.0))]
        assert matches, (name, x[ok][:5], (y[ok] / c)[:5])


@pytest.mark.parametrize("name", list(ESTIMATORS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exponent=st.floats(-150.0, 150.0))
def test_scale_invariance(name: str, exponent: float) -> None:
    """yi*c, vi*c^2 for c in [1e-150, 1e150]: the unscaled answer, in the new units."""
    c = 10.0**exponent
    fn = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = _frame(fn(Y, V, STUDY))
        scaled = _frame(fn(Y * c, V * c * c, STUDY))
    assert_scales(base, scaled, c)


@pytest.mark.parametrize("c", [1e-150, 1e150])
def test_random_effects_at_extreme_scales_is_the_unscaled_fit(c: float) -> None:
    """Reproducer: at c = 1e±150 the estimate was 0.2457 c for 0.2439 c."""
    base = ma.random_effects(Y, V)
    fit = ma.random_effects(Y * c, V * c * c)
    assert fit.estimate / c == pytest.approx(base.estimate, rel=1e-12)
    assert fit.tau2 / c**2 == pytest.approx(base.tau2, rel=1e-10)
    assert fit.se / c == pytest.approx(base.se, rel=1e-12)
    assert fit.i2 == pytest.approx(base.i2, rel=1e-10)


# --------------------------------------------------------------------------- degenerate data

SAME = np.full(10, 0.3)
SAME_V = np.linspace(0.01, 0.1, 10)
SAME_STUDY = np.repeat(np.arange(5), 2)
DEGENERATE = {
    "identical_yi": (SAME, SAME_V, SAME_STUDY),
    "k1": (np.array([0.3]), np.array([0.01]), np.array([1])),
    "k2": (np.array([0.3, 0.5]), np.array([0.01, 0.02]), np.array([1, 2])),
    "k3": (np.array([0.3, 0.5, 0.1]), np.array([0.01, 0.02, 0.03]), np.array([1, 2, 3])),
}


@pytest.mark.parametrize("data", list(DEGENERATE))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_degenerate_input_gives_an_answer_a_warning_or_a_value_error(name: str,
                                                                     data: str) -> None:
    y, v, s = DEGENERATE[data]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _frame(ESTIMATORS[name](y, v, s))
        except ValueError as exc:
            assert str(exc), name
            return
    values = {c: x for c, x in _numeric_columns(result).items() if c in MAIN}
    if any((~np.isfinite(x)).any() for x in values.values()):
        assert caught, f"{name} on {data}: NaN or infinity without a warning"


# --------------------------------------------------------------------------- domain errors


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: ma.random_effects(Y + 1j, V), "yi must be real numbers"),
        (lambda: ma.random_effects(Y, V.astype(complex)), "vi must be real numbers"),
        (lambda: ma.random_effects(["a", "b"], [0.1, 0.1]), "yi must be numbers"),
        (lambda: ma.multilevel([], [], study=[]), "yi is empty"),
        (lambda: ma.random_effects([], []), "yi is empty"),
        (lambda: ma.multilevel([0.1, 0.2], [0.01, 0.02], study=[np.nan, np.nan]),
         "missing value in yi, vi, study"),
        (lambda: ma.rank_test([0.1, 0.2, np.inf], [0.1, 0.1, 0.1]), "yi must be finite"),
        (lambda: ally.pool_by_component(EFFECTS.drop(columns=["table_group"])), "table_group"),
        (lambda: ally.pool_by_component(
            EFFECTS.assign(included=EFFECTS["included"].map({True: "true", False: "false"}))),
         r"included.\] must be true/false"),
    ],
)
def test_input_outside_the_domain_is_a_value_error_naming_the_argument(
    call: Callable[[], Any], words: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=words):
            call()


def test_rank_test_with_nan_warns_and_drops_the_row() -> None:
    with pytest.warns(UserWarning, match="1 of 6 rows had missing values"):
        r = ma.rank_test(np.r_[Y[:5], np.nan], V[:6])
    assert math.isfinite(r.pvalue)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-6, 6), min_size=3, max_size=40),
       theta=st.sampled_from([0.0, 0.5, -0.25, 1.0, 0.3]))
def test_trimfill_rank_counts_equal_a_full_ranking(values: list[int], theta: float) -> None:
    """The merged-ranks count of trim_and_fill (O(k log k) searches, for k = 10^6) equals
    Duval & Tweedie's statistics from an explicit stable ranking of |y - theta| (ties)."""
    from metaally.diagnostics.bias import _missing_count

    centred = np.sort(np.asarray(values, dtype=float) / 2) - theta
    k = centred.size
    ranks = np.empty(k)
    ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
    signed = np.sign(centred) * ranks
    t = signed[signed > 0].sum()
    negative = -signed[signed < 0]
    r0 = k - (negative.max() if negative.size else 0.0) - 1.0
    l0 = (4.0 * t - k * (k + 1)) / (2.0 * k - 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _missing_count(centred, "L0")[0] == int(max(0.0, round(l0)))
        assert _missing_count(centred, "R0")[0] == int(max(0.0, round(r0)))
