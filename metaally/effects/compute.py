"""Effect sizes: from validated study rows to Hedges' g and its sampling variance.

Each metric of the CSV has one small function in ``METRIC_EFFECTS`` that turns
its columns into ``yi`` and ``vi`` with the definitions of ``metaally.escalc``
(metafor's ``escalc``) and the converters of ``metaally.effects.converters`` —
every conversion is defined once, there.  Adding a metric is one function here
plus its validation rule in ``metaally.data.studies.METRICS``.

Signs: a positive yi means the outcome moved in the row's ``direction`` in the
intervention arm.  Reported effect sizes (d, g, f², r, t) are entered signed
that way; F, p and χ² take the column ``sign``; effects computed from group
data (means, counts, prepost, medians, or) are computed as intervention minus
comparison and negated when ``direction`` is ``lower``.

References
----------
Borenstein, M., Hedges, L. V., Higgins, J. P. T. & Rothstein, H. R. (2009).
    *Introduction to Meta-Analysis*. Wiley. Chapters 4 and 7 (converting among
    effect sizes: d from t, r, and from a log odds ratio).
Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*
    (2nd ed.). Erlbaum. Chapter 8 (f = d/2 for two groups).
Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size
    and related estimators. *Journal of Educational Statistics*, 6, 107-128.
Morris, S. B. (2008). Estimating effect sizes from pretest-posttest-control group
    designs. *Organizational Research Methods*, 11(2), 364-386.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.data.studies import METRICS
from metaally.effects.converters import cluster_adjust, mean_sd_from_median, se_from_ci
from metaally.effects.escalc import escalc, hedges_c, log_odds_ratio_to_d, smd_variance_ls

__all__ = [
    "ARMS_POLICIES",
    "Converted",
    "DESIGN_POLICIES",
    "EFFECT_COLUMNS",
    "METRIC_EFFECTS",
    "MetricEffect",
    "RANGE_POLICIES",
    "compute_effects",
    "d_from_f2",
    "d_from_r",
    "t_from_p",
]

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


# --------------------------------------------------------------------------- conversions to d


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


def t_from_p(p: np.ndarray, df: np.ndarray) -> np.ndarray:
    """|t| with a two-sided p-value p on df degrees of freedom: t = F⁻¹_t(1 − p/2; df)."""
    return stats.t.isf(np.asarray(p, dtype=float) / 2.0, np.asarray(df, dtype=float))


# --------------------------------------------------------------------------- one per metric


@dataclass(frozen=True)
class Converted:
    """What a metric's function returns: yi, vi, Cohen's d where the row gives one, and how."""

    yi: np.ndarray
    vi: np.ndarray
    d: np.ndarray
    steps: list[str]


def _col(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows.columns:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _signs(rows: pd.DataFrame) -> np.ndarray:
    sign = rows["sign"] if "sign" in rows.columns else pd.Series("", index=rows.index)
    return np.where(sign.isin(["-", "\u2212"]), -1.0, 1.0)


def _oriented(yi: np.ndarray, rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Intervention-minus-comparison effects, negated where the outcome's direction is lower."""
    lower = (rows["direction"] == "lower").to_numpy()
    notes = ["direction=lower: sign reversed" if low else "" for low in lower]
    return np.where(lower, -yi, yi), notes


def _smd(d: np.ndarray, n1: np.ndarray, n2: np.ndarray, what: list[str]) -> Converted:
    """Hedges' g from Cohen's d via ``escalc("SMD", di=d)``: exact J, vtype LS."""
    es = escalc("SMD", di=d, n1i=n1, n2i=n2)
    steps = [f"{w}; {_smd_text(n1_, n2_, g, v)}"
             for w, n1_, n2_, g, v in zip(what, n1, n2, es["yi"], es["vi"], strict=True)]
    return Converted(es["yi"].to_numpy(), es["vi"].to_numpy(), np.asarray(d, dtype=float), steps)


def _smd_text(n1: float, n2: float, g: float, v: float) -> str:
    m = n1 + n2 - 2
    return (f"SMD (escalc): exact J=c({m:g})={float(hedges_c(m)):.6f}, g=J*d={g:.6f}, "
            f"vi=1/n1+1/n2+g^2/(2(n1+n2))={v:.6f}")


def _with_interval(conv: Converted, rows: pd.DataFrame, scale: np.ndarray) -> Converted:
    """Replace vi by (scale·SE)² where the row gives a 95% CI or an SE of its value."""
    low, high, se = _col(rows, "ci_low"), _col(rows, "ci_high"), _col(rows, "se")
    vi, steps = conv.vi.copy(), list(conv.steps)
    for i in range(len(rows)):
        if not math.isnan(low[i]):
            se_i = se_from_ci(low[i], high[i])
            how = f"SE=(ci_high-ci_low)/(2*1.959964)={se_i:.6f} (Wald 95% CI)"
        elif not math.isnan(se[i]):
            se_i, how = se[i], f"SE={se[i]:g} as reported"
        else:
            continue
        vi[i] = (scale[i] * se_i) ** 2
        steps[i] = steps[i].split("vi=")[0] + (
            f"{how}; vi=({scale[i]:.6f}*SE)^2={vi[i]:.6f} (from the interval, not n)"
        )
    return Converted(conv.yi, vi, conv.d, steps)


def _metric_d(rows, value, n1, n2):
    conv = _smd(value, n1, n2, ["Cohen's d as reported"] * len(rows))
    return _with_interval(conv, rows, hedges_c(n1 + n2 - 2.0))


def _metric_g(rows, value, n1, n2):
    vi = smd_variance_ls(value, n1, n2)
    steps = [f"Hedges' g as reported (no second correction); vi=1/n1+1/n2+g^2/(2(n1+n2))={v:.6f}"
             for v in vi]
    conv = Converted(value.copy(), vi, np.full(len(rows), np.nan), steps)
    return _with_interval(conv, rows, np.ones(len(rows)))


def _metric_f2(rows, value, n1, n2):
    d = d_from_f2(value)
    return _smd(d, n1, n2, [f"d=2*sqrt(f2)={x:.6f}" for x in d])


def _metric_r(rows, value, n1, n2):
    d = d_from_r(value)
    return _smd(d, n1, n2, [f"d=2r/sqrt(1-r^2)={x:.6f}" for x in d])


def _from_t(t, n1, n2, what):
    es = escalc("SMD", ti=t, n1i=n1, n2i=n2)
    d = t * np.sqrt(1.0 / n1 + 1.0 / n2)
    steps = [f"{w}; d=t*sqrt(1/n1+1/n2)={d_:.6f}; {_smd_text(a, b, g, v)}"
             for w, d_, a, b, g, v in zip(what, d, n1, n2, es["yi"], es["vi"], strict=True)]
    return Converted(es["yi"].to_numpy(), es["vi"].to_numpy(), d, steps)


def _metric_t(rows, value, n1, n2):
    return _from_t(value, n1, n2, ["independent-groups t"] * len(rows))


def _metric_f(rows, value, n1, n2):
    t = _signs(rows) * np.sqrt(value)
    return _from_t(t, n1, n2, [f"F(1,df): t=sign*sqrt(F)={x:.6f}" for x in t])


def _metric_p(rows, value, n1, n2):
    t = _signs(rows) * t_from_p(value, n1 + n2 - 2.0)
    return _from_t(t, n1, n2, [f"two-sided p: t=sign*qt(1-p/2, n1+n2-2)={x:.6f}" for x in t])


def _metric_chi2(rows, value, n1, n2):
    r = _signs(rows) * np.sqrt(value / rows["n"].to_numpy(dtype=float))
    d = d_from_r(r)
    return _smd(d, n1, n2, [f"chi2(1): r=sign*sqrt(chi2/n)={a:.6f}, d=2r/sqrt(1-r^2)={b:.6f}"
                            for a, b in zip(r, d, strict=True)])


def _metric_or(rows, value, n1, n2):
    yi, _ = log_odds_ratio_to_d(np.log(value), np.zeros(len(rows)))
    vi = smd_variance_ls(yi, n1, n2)
    steps = [f"OR2DL: d=ln(OR)*sqrt(3)/pi={y:.6f}; no CI: vi=1/n1+1/n2+d^2/(2(n1+n2))={v:.6f}"
             for y, v in zip(yi, vi, strict=True)]
    low, high = _col(rows, "ci_low"), _col(rows, "ci_high")
    for i in np.flatnonzero(~np.isnan(low)):
        se = se_from_ci(low[i], high[i], log=True)
        _, vi[i] = log_odds_ratio_to_d(0.0, se**2)
        steps[i] = (f"OR2DL: d=ln(OR)*sqrt(3)/pi={yi[i]:.6f}; SE(ln OR) from the 95% CI "
                    f"(Wald, log scale)={se:.6f}; vi=3/pi^2*SE^2={vi[i]:.6f}")
    yi, notes = _oriented(yi, rows)
    return Converted(yi, vi, np.full(len(rows), np.nan), _join(steps, notes))


def _metric_counts(rows, value, n1, n2):
    e1, e2 = _col(rows, "events1"), _col(rows, "events2")
    es = escalc("OR2DL", ai=e1, n1i=n1, ci=e2, n2i=n2)
    zero = (e1 == 0) | (e2 == 0) | (e1 == n1) | (e2 == n2)
    added = "; 1/2 added to each cell (a zero cell)"
    steps = [f"OR2DL from the 2x2 table (escalc){added if z else ''}"
             f"; d=ln(OR)*sqrt(3)/pi={y:.6f}, vi=3/pi^2*(1/a+1/b+1/c+1/d)={v:.6f}"
             for z, y, v in zip(zero, es["yi"], es["vi"], strict=True)]
    yi, notes = _oriented(es["yi"].to_numpy(), rows)
    return Converted(yi, es["vi"].to_numpy(), np.full(len(rows), np.nan), _join(steps, notes))


def _means_smd(m1, sd1, m2, sd2, n1, n2, rows, what):
    es = escalc("SMD", m1i=m1, sd1i=sd1, n1i=n1, m2i=m2, sd2i=sd2, n2i=n2)
    steps = [f"{w}; {_smd_text(a, b, g, v)}"
             for w, a, b, g, v in zip(what, n1, n2, es["yi"], es["vi"], strict=True)]
    yi, notes = _oriented(es["yi"].to_numpy(), rows)
    return Converted(yi, es["vi"].to_numpy(), np.full(len(rows), np.nan), _join(steps, notes))


def _metric_means(rows, value, n1, n2):
    cols = [_col(rows, c) for c in ("mean1", "sd1", "mean2", "sd2")]
    return _means_smd(cols[0], cols[1], cols[2], cols[3], n1, n2, rows,
                      ["SMD from means and SDs"] * len(rows))


def _metric_medians(rows, value, n1, n2):
    arms = []
    for arm, n in (("1", n1), ("2", n2)):
        cells = {k: _col(rows, f"{k}{arm}") for k in ("median", "min", "max")}
        cells["q1"], cells["q3"] = _col(rows, f"q1_{arm}"), _col(rows, f"q3_{arm}")
        arms.append([
            mean_sd_from_median(
                cells["median"][i], n[i],
                **{k: _given(cells[k][i]) for k in ("q1", "q3")},
                minimum=_given(cells["min"][i]), maximum=_given(cells["max"][i]))
            for i in range(len(rows))
        ])
    what = [f"means/SDs estimated from medians ({a.method}): arm 1 {a.mean:.6f} ({a.sd:.6f}), "
            f"arm 2 {b.mean:.6f} ({b.sd:.6f}); SMD from the estimates"
            for a, b in zip(*arms, strict=True)]
    m1, sd1 = np.array([a.mean for a in arms[0]]), np.array([a.sd for a in arms[0]])
    m2, sd2 = np.array([b.mean for b in arms[1]]), np.array([b.sd for b in arms[1]])
    return _means_smd(m1, sd1, m2, sd2, n1, n2, rows, what)


def _metric_prepost(rows, value, n1, n2):
    # compute_effects fills a blank r_prepost with its prepost_r and marks it assumed
    r = _col(rows, "r_prepost")
    assumed = rows["_r_assumed"].to_numpy(dtype=bool)
    arms = [escalc("SMCR", m1i=_col(rows, f"mean_post{k}"), m2i=_col(rows, f"mean_pre{k}"),
                   sd1i=_col(rows, f"sd_pre{k}"), ni=n, ri=r)
            for k, n in (("1", n1), ("2", n2))]
    yi = (arms[0]["yi"] - arms[1]["yi"]).to_numpy()
    vi = (arms[0]["vi"] + arms[1]["vi"]).to_numpy()
    steps = [
        f"difference of SMCRs (Morris 2008; escalc SMCR per arm, exact J=c(n-1), pre-test SD): "
        f"{a:.6f} - {b:.6f} = {y:.6f}; vi=sum of 2(1-r)/n+g^2/(2n)={v:.6f}; "
        + (f"r_prepost = {r_:g} assumed" if flag else f"r_prepost={r_:g}")
        for a, b, y, v, r_, flag in zip(arms[0]["yi"], arms[1]["yi"], yi, vi, r, assumed,
                                        strict=True)
    ]
    yi, notes = _oriented(yi, rows)
    return Converted(yi, vi, np.full(len(rows), np.nan), _join(steps, notes))


def _given(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _join(steps: list[str], notes: list[str]) -> list[str]:
    return [f"{s}; {n}" if n else s for s, n in zip(steps, notes, strict=True)]


MetricEffect = Callable[[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray], Converted]

#: metric name -> its effect size (``(rows, value, n1, n2) -> Converted``); association-only
#: metrics (R2) have none.
METRIC_EFFECTS: dict[str, MetricEffect] = {
    "d": _metric_d,
    "g": _metric_g,
    "f2": _metric_f2,
    "r": _metric_r,
    "t": _metric_t,
    "F": _metric_f,
    "p": _metric_p,
    "chi2": _metric_chi2,
    "or": _metric_or,
    "counts": _metric_counts,
    "means": _metric_means,
    "medians": _metric_medians,
    "prepost": _metric_prepost,
}


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
    prepost_r : the pre-post correlation assumed where a ``prepost`` row leaves
        ``r_prepost`` blank (said in its derivation), and the one the
        ``design_policy="prepost"`` variances use.
    design_policy : ``between`` (default, Table 2's header) treats every row
        as a two-group contrast; ``prepost`` treats the d of rows whose
        ``design`` is ``prepost`` (metrics d, f2, r) as a standardised mean
        change in one group of n = n1 and uses metafor's ``SMCR`` (exact J with
        n − 1, vi = 2(1 − r)/n + g²/(2n)) with correlation ``prepost_r``.

    Each metric's function in ``METRIC_EFFECTS`` gives yi and vi (metafor's
    definitions, see ``metaally.escalc``); rows with ``icc`` and
    ``cluster_size`` are then adjusted for clustering (``cluster_adjust``,
    Hedges 2007).  Rows with ``role == "association"`` are kept with
    ``included=False``; metrics without an effect size (R²) get NaN
    ``yi``/``vi``.  ``derivation`` names the formula and every assumption of
    the row.  ``es_id`` is ``<study_id>-NN`` numbered in file order, the two
    endpoints of a range consecutively.
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
    r_given = _col(rows, "r_prepost")
    rows = rows.assign(r_prepost=np.where(np.isnan(r_given), prepost_r, r_given),
                       _r_assumed=np.isnan(r_given))
    n1, n2, split = _arm_sizes(rows, arms_policy)
    value = rows["value_used"].to_numpy(dtype=float)
    yi, vi, d = (np.full(len(rows), np.nan) for _ in range(3))
    steps = [""] * len(rows)
    for metric, effect in METRIC_EFFECTS.items():
        idx = np.flatnonzero((rows["metric"] == metric).to_numpy())
        if idx.size:
            conv = effect(rows.iloc[idx], value[idx], n1[idx], n2[idx])
            yi[idx], vi[idx], d[idx] = conv.yi, conv.vi, conv.d
            for i, step in zip(idx, conv.steps, strict=True):
                steps[i] = step
    prepost = ((rows["design"] == "prepost").to_numpy() & (design_policy == "prepost")
               & ~np.isnan(d))
    if prepost.any():
        es = escalc("SMCR", m1i=d[prepost], m2i=0.0, sd1i=1.0, ni=n1[prepost], ri=prepost_r)
        yi[prepost], vi[prepost] = es["yi"].to_numpy(), es["vi"].to_numpy()
        for i in np.flatnonzero(prepost):
            steps[i] = (f"pre-post (design_policy='prepost'): d={d[i]:.6f} as a standardised "
                        "mean change; "
                        f"SMCR (escalc): exact J=c({n1[i] - 1:g})={float(hedges_c(n1[i] - 1)):.6f},"
                        f" g={yi[i]:.6f}, vi=2(1-r)/n+g^2/(2n)={vi[i]:.6f}, r={prepost_r:g}")
    _adjust_clusters(rows, yi, vi, n1, n2, steps)
    n2 = np.where(prepost, np.nan, n2)

    out = rows.assign(
        yi=yi, vi=vi, sei=np.sqrt(vi), n1=n1, n2=n2,
        included=(rows["role"] == "intervention_effect").to_numpy() & np.isfinite(yi),
        es_id=_es_ids(rows["study_id"]),
    )
    out["derivation"] = [
        _derivation(rec, step, split_i, pre_i)
        for rec, step, split_i, pre_i in zip(
            out.itertuples(index=False), steps, split, prepost, strict=True
        )
    ]
    return out.loc[:, list(EFFECT_COLUMNS)].reset_index(drop=True)


def _adjust_clusters(rows: pd.DataFrame, yi: np.ndarray, vi: np.ndarray, n1: np.ndarray,
                     n2: np.ndarray, steps: list[str]) -> None:
    """Hedges' (2007) d_T and variance, in place, for rows with ``icc`` and ``cluster_size``."""
    icc, size = _col(rows, "icc"), _col(rows, "cluster_size")
    idx = np.flatnonzero(~np.isnan(icc) & ~np.isnan(size) & np.isfinite(yi))
    if not idx.size:
        return
    res = cluster_adjust(yi[idx], n1[idx], n2[idx], icc[idx], size[idx])
    yi[idx], vi[idx] = res.yi, res.vi
    for j, i in enumerate(idx):
        steps[i] += (f"; cluster-randomised (Hedges 2007): icc={icc[i]:g}, cluster size="
                     f"{size[i]:g}, design effect={res.design_effect[j]:.6f}, "
                     f"d_T=g*sqrt(1-2(m-1)icc/(N-2))={yi[i]:.6f}, vi={vi[i]:.6f}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _expand_ranges(studies: pd.DataFrame, policy: str) -> pd.DataFrame:
    """One row per value to analyse, with ``value_used`` and ``value_kind``, in input order."""
    rows = studies.reset_index(drop=True).assign(_row=lambda f: np.arange(len(f)))
    is_range = rows["value"].isna() & rows["value_low"].notna()
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


def _derivation(rec: Any, step: str, split: float, prepost: bool) -> str:
    """How yi and vi were obtained from the row, with the numbers used."""
    parts = []
    if rec.value_kind.startswith("range"):
        kind = rec.value_kind.removeprefix("range ")
        parts.append(f"range {rec.metric}={rec.value_low:g}-{rec.value_high:g}, {kind}")
    if not math.isnan(rec.value_used):
        parts.append(f"{rec.metric}={rec.value_used:g}")
    if rec.metric not in METRIC_EFFECTS:
        label = METRICS[rec.metric].label if rec.metric in METRICS else rec.metric
        parts.append(f"{label} is an association, not an intervention contrast: not converted")
        return "; ".join(parts)
    if prepost:
        parts.append(f"n=n1={rec.n1:g} (given)" if np.isnan(split)
                     else f"n=n/{split:g}={rec.n1:g} (assumed)")
    else:
        parts.append(f"n1={rec.n1:g}, n2={rec.n2:g} (given)" if np.isnan(split)
                     else f"n1=n2=n/{split:g}={rec.n1:g} (assumed)")
    parts.append(step)
    if rec.role == "association":
        parts.append("role=association: not pooled")
    return "; ".join(parts)
