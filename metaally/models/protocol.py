"""The one protocol every fitted model result shares.

Every fitted model (``random_effects``, ``multilevel``, ``MultilevelResult.robust()``)
returns a frozen result object with the same fields, as metafor's ``rma`` objects
share ``b, se, ci.lb, ci.ub, pval, k`` and statsmodels' results share ``params,
bse, conf_int()``:

========== =====================================================================
field      meaning
========== =====================================================================
estimate   the first coefficient (the overall mean of an intercept-only model;
           with moderators the intercept, metafor's ``coef(res)[1]``)
se         its standard error (cluster-robust for a robust result)
ci_low     lower limit of its ``level`` confidence interval
ci_high    upper limit
pvalue     two-sided p-value of the test that it is 0
df         degrees of freedom of that test (``inf`` for a z test)
k          number of effect sizes the model was fitted to
n_clusters number of studies (clusters), for clustered models only
summary()  the printout (metafor's ``print``)
to_frame() one row per coefficient with the same columns (``term``, ``estimate``,
           ``se``, ``stat``, ``df``, ``pvalue``, ``ci_low``, ``ci_high``) and ``k``
========== =====================================================================

Plots and diagnostics that refit or redraw a model also need the data the model
was fitted to: :class:`FittedModel` adds ``yi``, ``vi``, ``X``, ``coef``,
``coef_names``, ``level`` and ``method``; :class:`ClusteredModel` adds the
study (cluster) structure.  :func:`fitted_model` is the one runtime check the
diagnostics and plots use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "FIRST_COEFFICIENT",
    "ClusteredModel",
    "FitResult",
    "FittedModel",
    "first_coefficient",
    "fitted_model",
    "is_clustered",
]

FIRST_COEFFICIENT = ("estimate", "se", "stat", "pvalue", "ci_low", "ci_high")
"""The protocol fields a result takes from the first row of its coefficient table."""


@runtime_checkable
class FitResult(Protocol):
    """Fields and methods shared by every fitted model result (see the module docstring)."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    df: float
    k: int

    def summary(self) -> str:
        """The printout a reviewer reads."""
        ...

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient."""
        ...


@runtime_checkable
class FittedModel(FitResult, Protocol):
    """A fitted model result that also carries its data (what refits and plots need)."""

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    coef: pd.DataFrame
    coef_names: tuple[str, ...]
    level: float
    method: str


@runtime_checkable
class ClusteredModel(FittedModel, Protocol):
    """A fitted model of effects clustered in studies (the CHE model, robust or not)."""

    n_clusters: int
    study: np.ndarray
    es_id: np.ndarray
    rho: float
    sigma2_study: float
    sigma2_within: float


def first_coefficient(coef: pd.DataFrame) -> dict[str, float]:
    """The protocol's scalar fields from a coefficient table: its first row (metafor's
    convention: the intercept, or the overall mean of an intercept-only model), plus
    ``df`` when the table has a df column."""
    first = coef.iloc[0]
    names = FIRST_COEFFICIENT + (("df",) if "df" in coef else ())
    return {name: float(first[name]) for name in names}


def fitted_model(result: Any, what: str) -> FittedModel:
    """``result`` if it is a fitted model result carrying its data, else a ``ValueError``
    saying that ``what`` needs one."""
    if not isinstance(result, FittedModel):
        raise ValueError(
            f"{what} needs a fitted model result (random_effects, multilevel or "
            f"multilevel(...).robust()), not {type(result).__name__}"
        )
    return result


def is_clustered(result: Any) -> bool:
    """True for a result of a model of effects clustered in studies."""
    return isinstance(result, ClusteredModel)
