"""Effect sizes: from validated study rows to Hedges' g and its sampling variance.

Each reported value is first converted to Cohen's d by the function registered
for its metric in ``TO_COHENS_D``, then corrected to Hedges' g with its
large-sample sampling variance.  Adding a metric is one conversion function
here plus its validation rule in ``metaally.data.studies.METRICS``.

References
----------
Borenstein, M., Hedges, L. V., Higgins, J. P. T. & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*. Wiley. Chapters 4 (d, g and their
    variances) and 7 (converting among effect sizes).
Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*
    (2nd ed.). Erlbaum. Chapter 8 (f = d/2 for two groups).
Lipsey, M. W. & Wilson, D. B. (2001). *Practical Meta-Analysis*. Sage.
Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size
    and related estimators. *Journal of Educational Statistics*, 6, 107-128.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaally.data.studies import METRICS

RANGE_POLICIES = ("endpoints", "midpoint", "low", "high")
ARMS_POLICIES = ("stated", "two")
DESIGN_POLICIES = ("between", "prepost")

#: Columns of the table returned by ``compute_effects``, in order.
EFFECT_COLUMNS = (
    "study_id", "es_id", "yi", "vi", "sei", "components", "table_group", "citation", "year",
    "ref", "outcome", "direction", "timepoint", "comparator", "peer_reviewed", "design",
    "technique", "outcome_component", "outcome_domain", "role", "included", "source_line",
    "metric", "value_used", "n1", "n2", "derivation",
)
_NEEDED = (
    "study_id", "ref", "citation", "year", "table_group", "components", "technique", "n", "arms",
    "comparator", "design", "outcome", "direction", "outcome_component", "outcome_domain",
    "timepoint", "role", "metric", "value", "value_low", "value_high", "peer_reviewed",
    "source_line",
)


# --------------------------------------------------------------------------- conversions


def d_from_f2(f2: np.ndarray) -> np.ndarray:
    """Cohen's f² of a two-group contrast to d: d = 2·√f².

    For two groups, f = d/2 (Cohen 1988, ch. 8), hence f² = d²/4.  The sign
    is lost in f²; d is positive in the direction the outcome text describes.
    """
    return 2.0 * np.sqrt(np.asarray(f2, dtype=float))


def d_from_r(r: np.ndarray) -> np.ndarray:
    """A point-biserial correlation to d: d = 2r / √(1 − r²) (Borenstein et al. 2009, eq. 7.5)."""
    r = np.asarray(r, dtype=float)
    return 2.0 * r / np.sqrt(1.0 - r**2)


def d_from_t(t: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """An independent-groups t statistic to d: d = t·√(1/n1 + 1/n2).

    Since t = (M1 − M2) / (S_pooled·√(1/n1 + 1/n2)) and d = (M1 − M2)/S_pooled
    (Lipsey & Wilson 2001, Appendix B; Borenstein et al. 2009, ch. 4).
    """
    n1 = np.asarray(n1, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    return np.asarray(t, dtype=float) * np.sqrt(1.0 / n1 + 1.0 / n2)


@dataclass(frozen=True)
class Conversion:
    """How one metric becomes Cohen's d: ``to_d(value, n1, n2)`` and its formula as text."""

    formula: str
    to_d: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


#: metric name -> conversion to Cohen's d; association-only metrics (R2) have none.
TO_COHENS_D: dict[str, Conversion] = {
    "d": Conversion("d", lambda d, n1, n2: np.asarray(d, dtype=float)),
    "f2": Conversion("d=2*sqrt(f2)", lambda f2, n1, n2: d_from_f2(f2)),
    "r": Conversion("d=2r/sqrt(1-r^2)", lambda r, n1, n2: d_from_r(r)),
    "t": Conversion("d=t*sqrt(1/n1+1/n2)", d_from_t),
}


def hedges_j(df: np.ndarray) -> np.ndarray:
    """Small-sample correction J = 1 − 3/(4·df − 1).

    Hedges (1981); Borenstein et al. (2009), eq. 4.22.
    """
    return 1.0 - 3.0 / (4.0 * np.asarray(df, dtype=float) - 1.0)


def g_between(d: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hedges' g and its variance for two independent groups.

    g = J·d with df = n1 + n2 − 2 (Borenstein et al. 2009, eq. 4.22–4.23) and
    v = (n1 + n2)/(n1·n2) + g²/(2(n1 + n2)), the large-sample variance of
    eq. 4.20 evaluated at g (the convention of metafor's ``escalc("SMD")``).
    """
    n1 = np.asarray(n1, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    g = hedges_j(n1 + n2 - 2.0) * np.asarray(d, dtype=float)
    v = (n1 + n2) / (n1 * n2) + g**2 / (2.0 * (n1 + n2))
    return g, v


def g_prepost(d: np.ndarray, n: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Hedges' g and its variance for a pre-post change in one group of n people.

    g = J·d with df = n − 1, and v = (1/n + g²/(2n))·2(1 − r), Borenstein et
    al. (2009) eq. 4.28 for matched groups (d standardised by the within-time
    SD, r the pre-post correlation), evaluated at g as ``g_between`` does.
    """
    n = np.asarray(n, dtype=float)
    g = hedges_j(n - 1.0) * np.asarray(d, dtype=float)
    v = (1.0 / n + g**2 / (2.0 * n)) * 2.0 * (1.0 - r)
    return g, v


# --------------------------------------------------------------------------- table


def compute_effects(
    studies: pd.DataFrame,
    range_policy: str = "endpoints",
    arms_policy: str = "stated",
    design_policy: str = "between",
    prepost_r: float = 0.5,
) -> pd.DataFrame:
    """One row per effect size: Hedges' g (``yi``), its variance ``vi`` and provenance.

    Parameters
    ----------
    studies : validated rows from ``load_studies``.
    range_policy : a reported range "a–b" gives two effects at its
        ``endpoints`` (default: both bounds are observed values), or one at its
        ``midpoint``, ``low`` or ``high`` bound (sensitivity analyses).
    arms_policy : ``stated`` splits the total n evenly over ``arms``
        conditions (n1 = n2 = n/arms); ``two`` splits it over two
        (n1 = n2 = n/2).  Per-arm ``n1``/``n2``, where given, are always used.
    design_policy : ``between`` (default, Table 2's header) treats every row
        as a two-group contrast; ``prepost`` uses the pre-post variance of
        ``g_prepost`` with correlation ``prepost_r`` for rows whose ``design``
        is ``prepost`` (n = n1 of the condition).

    Rows with ``role == "association"`` are kept with ``included=False``;
    metrics with no conversion to d (R²) get NaN ``yi``/``vi``.  ``es_id`` is
    ``<study_id>-NN`` numbered in file order, the two endpoints of a range
    consecutively.
    """
    _check_choice("range_policy", range_policy, RANGE_POLICIES)
    _check_choice("arms_policy", arms_policy, ARMS_POLICIES)
    _check_choice("design_policy", design_policy, DESIGN_POLICIES)
    if not -1.0 < prepost_r < 1.0:
        raise ValueError(f"prepost_r must be strictly between -1 and 1, got {prepost_r}")
    missing = [c for c in _NEEDED if c not in studies.columns]
    if missing:
        raise ValueError(
            "studies is missing column(s) " + ", ".join(missing)
            + "; load it with metaally.load_studies"
        )
    rows = _expand_ranges(studies, range_policy)
    n1, n2, split = _arm_sizes(rows, arms_policy)
    d = np.full(len(rows), np.nan)
    for metric, conversion in TO_COHENS_D.items():
        mask = (rows["metric"] == metric).to_numpy()
        d[mask] = conversion.to_d(rows["value_used"].to_numpy()[mask], n1[mask], n2[mask])
    yi, vi = g_between(d, n1, n2)
    prepost = (rows["design"] == "prepost").to_numpy() & (design_policy == "prepost")
    yi[prepost], vi[prepost] = g_prepost(d[prepost], n1[prepost], prepost_r)
    n2 = np.where(prepost, np.nan, n2)

    out = rows.assign(
        yi=yi, vi=vi, sei=np.sqrt(vi), n1=n1, n2=n2,
        included=(rows["role"] == "intervention_effect").to_numpy() & np.isfinite(yi),
        es_id=_es_ids(rows["study_id"]),
    )
    out["derivation"] = [
        _derivation(rec, d_i, split_i, pre_i, prepost_r)
        for rec, d_i, split_i, pre_i in zip(
            out.itertuples(index=False), d, split, prepost, strict=True
        )
    ]
    return out.loc[:, list(EFFECT_COLUMNS)].reset_index(drop=True)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _expand_ranges(studies: pd.DataFrame, policy: str) -> pd.DataFrame:
    """One row per value to analyse, with ``value_used`` and ``value_kind``, in input order."""
    rows = studies.reset_index(drop=True).assign(_row=lambda f: np.arange(len(f)))
    is_range = rows["value"].isna()
    single = rows.loc[~is_range].assign(value_used=lambda f: f["value"], value_kind="value")
    ranged = rows.loc[is_range]
    low = ranged.assign(value_used=lambda f: f["value_low"], value_kind="range low endpoint")
    high = ranged.assign(value_used=lambda f: f["value_high"], value_kind="range high endpoint")
    midpoint = ranged.assign(
        value_used=lambda f: (f["value_low"] + f["value_high"]) / 2.0, value_kind="range midpoint"
    )
    parts = {"endpoints": [low, high], "low": [low], "high": [high], "midpoint": [midpoint]}
    # a range's high endpoint follows its low endpoint
    expanded = pd.concat([single, *parts[policy]], ignore_index=True)
    expanded["_second"] = expanded["value_kind"] == "range high endpoint"
    return (
        expanded.sort_values(["_row", "_second"], kind="stable")
        .drop(columns=["_row", "_second"])
        .reset_index(drop=True)
    )


def _arm_sizes(rows: pd.DataFrame, policy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n1, n2, arms the total n was split over; NaN where per-arm n was given)."""
    n = rows["n"].to_numpy(dtype=float)
    split = np.full(len(rows), 2.0) if policy == "two" else rows["arms"].to_numpy(dtype=float)
    n1 = n / split
    n2 = n / split
    if {"n1", "n2"} <= set(rows.columns):
        given1 = rows["n1"].to_numpy(dtype=float, na_value=np.nan)
        given2 = rows["n2"].to_numpy(dtype=float, na_value=np.nan)
        stated = ~np.isnan(given1) & ~np.isnan(given2)
        n1 = np.where(stated, given1, n1)
        n2 = np.where(stated, given2, n2)
        split = np.where(stated, np.nan, split)
    return n1, n2, split


def _es_ids(study_ids: pd.Series) -> list[str]:
    counts = study_ids.value_counts()
    seen: dict[str, int] = {}
    ids = []
    for sid in study_ids:
        seen[sid] = seen.get(sid, 0) + 1
        width = max(2, len(str(counts[sid])))
        ids.append(f"{sid}-{seen[sid]:0{width}d}")
    return ids


def _derivation(rec: Any, d: float, split: float, prepost: bool, r: float) -> str:
    """How yi and vi were obtained from the row, with the numbers used."""
    steps = []
    if rec.value_kind != "value":
        kind = rec.value_kind.removeprefix("range ")
        steps.append(f"range {rec.metric}={rec.value_low:g}-{rec.value_high:g}, {kind}")
    steps.append(f"{rec.metric}={rec.value_used:g}")
    if rec.metric not in TO_COHENS_D:
        label = METRICS[rec.metric].label if rec.metric in METRICS else rec.metric
        steps.append(f"{label} is an association, not an intervention contrast: not converted")
        return "; ".join(steps)
    if rec.metric != "d":
        steps.append(f"{TO_COHENS_D[rec.metric].formula}={d:.6f}")
    if prepost:
        n = rec.n1
        sizes = f"n=n1={n:g} (given)" if np.isnan(split) else f"n=n/{split:g}={n:g}"
        steps += [
            f"pre-post (design_policy='prepost'), {sizes}",
            f"J=1-3/(4*{n - 1:g}-1)={hedges_j(n - 1):.6f}",
            f"g=J*d={rec.yi:.6f}",
            f"vi=(1/n+g^2/(2n))*2(1-r), r={r:g}: {rec.vi:.6f}",
        ]
    else:
        df = rec.n1 + rec.n2 - 2
        sizes = (f"n1={rec.n1:g}, n2={rec.n2:g} (given)" if np.isnan(split)
                 else f"n1=n2=n/{split:g}={rec.n1:g}")
        steps += [
            sizes,
            f"J=1-3/(4*{df:g}-1)={hedges_j(df):.6f}",
            f"g=J*d={rec.yi:.6f}",
            f"vi=(n1+n2)/(n1*n2)+g^2/(2(n1+n2))={rec.vi:.6f}",
        ]
    if rec.role == "association":
        steps.append("role=association: not pooled")
    return "; ".join(steps)
