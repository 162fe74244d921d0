"""Sensitivity of pooled estimates to the extraction and modelling choices.

A ``Scenario`` is one alternative analysis: a name, the group it belongs to, the
``AnalysisSettings`` fields it changes (assumed within-study correlation ``rho``, range
policy, per-arm n, design, pooling model) and, optionally, the studies it leaves out
(every study with a row where ``column == value``).  ``sensitivity_analysis`` recomputes
the effect sizes (``compute_effects``) and pools them by a coding column (``pool_by``)
under each scenario; ``sensitivity_markdown`` states, per level, which conclusions
(direction, a 95% CI excluding 0) survive every scenario.

``default_scenarios`` varies one choice at a time (a "one-at-a-time" sensitivity analysis,
Higgins et al. 2022, *Cochrane Handbook* §10.14): rho in {0, 0.2, 0.4, 0.6, 0.8, 0.95}
(Pustejovsky & Tipton 2022 recommend checking rho); a reported range "a-b" as both
endpoints, its midpoint, its low or its high end; CHE + CR2, studies aggregated then
pooled (REML + Knapp-Hartung), or effects treated as independent; total n split over the
stated number of arms or over two; between-groups or pre-post (r = 0.5) variances for rows
coded ``prepost`` (Borenstein et al. 2009, eq. 4.28).  A review adds its own
leave-out scenarios (``leave_out=``).  The base settings appear once, as the "default
analysis"; each group lists only its alternatives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from metaally.effects.compute import compute_effects
from metaally.models.pooling import level_label, pool_by
from metaally.models.printing import fmt_count

__all__ = [
    "AnalysisSettings", "Scenario", "SENSITIVITY_COLUMNS", "default_scenarios",
    "sensitivity_analysis", "scenario_settings", "scenario_effects", "sensitivity_markdown",
    "level_verdict", "unreliable_df",
]

SENSITIVITY_COLUMNS: list[str] = [
    "scenario", "scenario_group", "component", "k_studies", "k_effects", "estimate", "se",
    "ci_low", "ci_high", "df", "pvalue", "note", "model",
]
DEFAULT_GROUP = "Default"
DEFAULT_NAME = "default analysis"
#: below this many studies (in every analysis) a surviving conclusion is called tentative
FEW_STUDIES = 5
#: robust (CR2) intervals with fewer Satterthwaite df are unreliable (Tipton 2015)
SMALL_DF = 4
LEAVE_OUT_GROUP = "Studies left out"


@dataclass(frozen=True)
class AnalysisSettings:
    """The choices behind one analysis: the effect-size policies of ``compute_effects``
    and the pooling model of ``pool_by``; the defaults are those functions' defaults."""

    model: str = "che"
    rho: float = 0.6
    method: str = "REML"
    range_policy: str = "endpoints"
    arms_policy: str = "stated"
    design_policy: str = "between"
    prepost_r: float = 0.5


_EFFECT_FIELDS = ("range_policy", "arms_policy", "design_policy", "prepost_r")
_SETTING_FIELDS = tuple(f.name for f in dataclasses.fields(AnalysisSettings))


@dataclass(frozen=True)
class Scenario:
    """One alternative analysis.

    ``changes`` maps ``AnalysisSettings`` fields to the values this scenario uses instead
    of the base settings; ``leave_out = (column, value)`` drops every study that has a
    row of the studies table with ``column == value`` (e.g. ``("peer_reviewed", False)``).
    """

    name: str
    group: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    leave_out: tuple[str, Any] | None = None


def default_scenarios(
    base: AnalysisSettings | None = None, leave_out: Sequence[Scenario] = ()
) -> list[Scenario]:
    """The one-at-a-time scenarios around ``base`` (module docstring): the base analysis,
    then per group every alternative value that differs from the base, with the
    ``leave_out`` scenarios (a review's own, e.g. without the preprints) as the group
    "Studies left out" after the reported ranges."""
    base = base or AnalysisSettings()
    grids = [
        ("Within-study correlation", "rho", [0.0, 0.2, 0.4, 0.6, 0.8, 0.95],
         lambda v: f"rho = {v:g}"),
        ("Reported ranges", "range_policy", ["endpoints", "midpoint", "low", "high"],
         {"endpoints": "range: both endpoints", "midpoint": "range: midpoint only",
          "low": "range: low end only", "high": "range: high end only"}.get),
        ("Pooling model", "model", ["che", "aggregate", "univariate"],
         {"che": "CHE + CR2 robust", "aggregate": "studies aggregated, then RE",
          "univariate": "effects as independent"}.get),
        ("Per-arm n", "arms_policy", ["stated", "two"],
         {"stated": "n over the stated arms", "two": "n split over two arms"}.get),
        ("Design", "design_policy", ["between", "prepost"],
         {"between": "all rows between-groups",
          "prepost": f"time-2 rows pre-post (r = {base.prepost_r:g})"}.get),
    ]
    scenarios = [Scenario(DEFAULT_NAME, DEFAULT_GROUP)]
    for group, name, values, label in grids:
        scenarios += [Scenario(label(v), group, {name: v})
                      for v in values if v != getattr(base, name)]
    scenarios += [replace(s, group=LEAVE_OUT_GROUP) for s in leave_out]
    # the Studies-left-out group directly after the ranges: both concern what was extracted
    order = [DEFAULT_GROUP, "Within-study correlation", "Reported ranges", LEAVE_OUT_GROUP,
             "Pooling model", "Per-arm n", "Design"]
    return sorted(scenarios, key=lambda s: order.index(s.group))


def sensitivity_analysis(
    studies: pd.DataFrame,
    scenarios: Sequence[Scenario] | None = None,
    base: AnalysisSettings | None = None,
    levels: Sequence[str] | None = None,
    overall: bool = True,
    by: str = "components",
) -> pd.DataFrame:
    """Pooled estimate per level of the coding column ``by`` (and over all effects) under
    each scenario.

    ``studies``: validated rows (``load_studies``); the effect sizes are recomputed per
    scenario because the range, arms and design policies change them.  ``scenarios``
    default to ``default_scenarios(base)``; ``base`` to the package defaults
    (``AnalysisSettings()``).  Each scenario's effects are pooled by ``pool_by(effects,
    by, model, rho, method, levels=levels)`` with the scenario's settings, so the default
    analysis reproduces ``pool_by`` row for row.

    Returns ``SENSITIVITY_COLUMNS``: one row per scenario and level (``component`` holds
    the level, "overall" for all effects together), with the pooled row's k, estimate,
    se, 95% CI, df and p, a ``note`` holding the pooling caveats (one study, df < 4, no
    studies) and the studies left out that count toward the row, and the ``model``.
    """
    base = base or AnalysisSettings()
    scenarios = list(default_scenarios(base) if scenarios is None else scenarios)
    if not scenarios:
        raise ValueError("scenarios is empty")
    names = [s.name for s in scenarios]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"scenario names must be unique; repeated: {', '.join(repeated)}")
    frames = []
    for scenario in scenarios:
        settings = scenario_settings(scenario, base)
        effects = scenario_effects(studies, scenario, base)
        dropped = _dropped_studies(studies, scenario)
        pooled = pool_by(effects, by, model=settings.model, rho=settings.rho,
                         method=settings.method, levels=levels, overall=overall)
        pooled = pooled.rename(columns={"level": "component"})
        pooled["note"] = [
            "; ".join(filter(None, [note, _dropped_note(dropped, component, by)]))
            for note, component in zip(pooled["note"], pooled["component"], strict=True)
        ]
        frames.append(pooled.assign(scenario=scenario.name, scenario_group=scenario.group))
    return pd.concat(frames, ignore_index=True).loc[:, SENSITIVITY_COLUMNS]


def scenario_settings(scenario: Scenario, base: AnalysisSettings | None = None) -> AnalysisSettings:
    """The ``AnalysisSettings`` of a scenario: ``base`` with the scenario's ``changes``."""
    unknown = sorted(set(scenario.changes) - set(_SETTING_FIELDS))
    if unknown:
        raise ValueError(f"scenario {scenario.name!r} changes unknown setting(s) "
                         f"{', '.join(unknown)}; allowed: {', '.join(_SETTING_FIELDS)}")
    return dataclasses.replace(base or AnalysisSettings(), **scenario.changes)


def scenario_effects(
    studies: pd.DataFrame, scenario: Scenario, base: AnalysisSettings | None = None
) -> pd.DataFrame:
    """The analysis table a scenario pools: ``compute_effects`` with the scenario's range,
    arms and design policies, without the studies its ``leave_out`` rule drops (every
    study with a row where ``column == value``)."""
    settings = scenario_settings(scenario, base)
    effects = compute_effects(studies, **{f: getattr(settings, f) for f in _EFFECT_FIELDS})
    dropped = _dropped_studies(studies, scenario)
    return effects[~effects["study_id"].isin(dropped["study_id"])].reset_index(drop=True)


def _dropped_studies(studies: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """One row per study the scenario leaves out (none without a ``leave_out`` rule)."""
    if scenario.leave_out is None:
        return studies.iloc[:0]
    column, value = scenario.leave_out
    if column not in studies.columns:
        raise ValueError(f"scenario {scenario.name!r} leaves out by column {column!r}, "
                         "which the studies do not have")
    hit = studies[column].eq(value).fillna(False).astype(bool)
    ids = set(studies.loc[hit, "study_id"])
    return studies[studies["study_id"].isin(ids)].drop_duplicates("study_id")


def _dropped_note(dropped: pd.DataFrame, component: str, by: str) -> str:
    """"left out: <citations>" for the dropped studies that count toward ``component``."""
    if dropped.empty:
        return ""
    if component != "overall":
        targets = dropped[by].astype(str).str.split(";")
        dropped = dropped[[component in [t.strip() for t in cell] for cell in targets]]
    return "left out: " + ", ".join(dropped["citation"].astype(str)) if len(dropped) else ""


# --- the Markdown section ---------------------------------------------------------------


def unreliable_df(rows: pd.DataFrame) -> pd.Series:
    """Rows whose robust (CR2) interval rests on fewer than ``SMALL_DF`` Satterthwaite df."""
    small = rows["df"].astype(float) < SMALL_DF
    return small & (rows["model"] == "che") if "model" in rows else small


def sensitivity_markdown(frame: pd.DataFrame, labels: Mapping[str, str] | None = None) -> str:
    """The "Sensitivity of the conclusions" section of a report from the table of
    ``sensitivity_analysis``: per level, whether the estimate's sign and a 95% CI
    excluding 0 hold in every scenario (naming those where they do not), the range of
    the estimates, and the caveats that weaken it (robust df < 4, a single study left,
    no studies left, few studies overall).  ``labels``: display names of the levels."""
    missing = [c for c in SENSITIVITY_COLUMNS[:-1] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing column(s) {', '.join(missing)}")
    n = frame["scenario"].nunique()
    lines = [
        "## Sensitivity of the conclusions",
        "",
        f"Each pooled estimate was recomputed under {n} analyses: the default one and "
        f"{n - 1} alternatives, each changing one choice "
        f"({', '.join(_groups(frame))}). Full table: `results/sensitivity.csv`; "
        "plot: `figures/sensitivity.png`.",
        "",
    ]
    for component, rows in frame.groupby("component", sort=False):
        lines += [level_verdict(str(component), rows, labels), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def level_verdict(
    component: str, rows: pd.DataFrame, labels: Mapping[str, str] | None = None
) -> str:
    """One paragraph on one level: the statements of ``sensitivity_markdown``."""
    name = "All effects" if component == "overall" else level_label(component, labels)
    n = len(rows)
    k = rows["k_studies"].to_numpy(dtype=int)
    if (k == 0).all():
        return (f"**{name}**: no study targets it in any of the {n} analyses, so nothing can "
                "be concluded about it yet.")
    default = rows[rows["scenario_group"] == DEFAULT_GROUP]
    head = f"**{name}**"
    if len(default) and default["k_studies"].iloc[0] > 0:
        d = default.iloc[0]
        head += (f" (default: g = {d['estimate']:.2f}, 95% CI [{d['ci_low']:.2f}, "
                 f"{d['ci_high']:.2f}], {fmt_count(int(d['k_studies']), 'study')})")
    present = rows[k > 0]
    est = present["estimate"].to_numpy(dtype=float)
    low = present.iloc[int(np.argmin(est))]
    high = present.iloc[int(np.argmax(est))]
    same = f"{low['estimate']:.2f}" == f"{high['estimate']:.2f}"
    sentences = [
        f"{head}. " + _count_sentence(
            "The estimate is positive", rows, rows["estimate"] > 0, n),
        f"It is {low['estimate']:.2f} in every analysis with a study." if same else
        f"It ranges from {low['estimate']:.2f} ({low['scenario']}) to "
        f"{high['estimate']:.2f} ({high['scenario']}).",
        _count_sentence("The 95% CI excludes 0", rows,
                        (rows["ci_low"] > 0) | (rows["ci_high"] < 0), n),
    ]
    empty = rows.loc[k == 0, "scenario"].tolist()
    if empty:
        sentences.append(f"No study is left in: {', '.join(empty)}.")
    single = rows.loc[k == 1, "scenario"].tolist()
    if len(single) == n:
        sentences.append(f"In all {n} analyses only one study is left, so the value is that "
                         "study's own effect, not a pooled one.")
    elif single:
        sentences.append(f"Only one study is left in: {', '.join(single)}; there the value is "
                         "that study's own effect, not a pooled one.")
    small = rows.loc[unreliable_df(rows).to_numpy(), "scenario"].tolist()
    if len(small) == n:
        sentences.append(f"In all {n} analyses the robust df are below 4, so every interval is "
                         "unreliable.")
    elif len(small) > 3:
        sentences.append(f"In {len(small)} of the {n} analyses the robust df are below 4, so "
                         "those intervals are unreliable.")
    elif small:
        sentences.append(f"The robust df are below 4, so the interval is unreliable, in: "
                         f"{', '.join(small)}.")
    sentences.append(_judgement(rows[k > 0], small, n))
    return " ".join(sentences)


def _count_sentence(claim: str, rows: pd.DataFrame, holds: pd.Series, n: int) -> str:
    """"<claim> in all n analyses." / "... in m of n analyses; not in: a, b." / none."""
    holds = holds.fillna(False).astype(bool).to_numpy()
    m = int(holds.sum())
    if m == n:
        return f"{claim} in all {n} analyses."
    if m == 0:
        return f"{claim} in none of the {n} analyses."
    failing = rows.loc[~holds & (rows["k_studies"].to_numpy() > 0), "scenario"].tolist()
    tail = f"; not in: {', '.join(failing)}" if failing else ""
    return f"{claim} in {m} of {n} analyses{tail}."



def _judgement(present: pd.DataFrame, small: list[str], n: int) -> str:
    """The bottom line over the analyses with at least one study, worded by how much it
    depends on few studies (fewer than ``FEW_STUDIES`` in every analysis) or on robust
    intervals with df < 4."""
    excludes = ((present["ci_low"] > 0) | (present["ci_high"] < 0)).all()
    sign = ("positive" if (present["estimate"] > 0).all()
            else "negative" if (present["estimate"] < 0).all() else "")
    k_max = int(present["k_studies"].max())
    weak = " and ".join(filter(None, [
        "a single study" if k_max == 1 else
        f"at most {fmt_count(k_max, 'study')}" if k_max < FEW_STUDIES else "",
        "robust df below 4 in most analyses" if 2 * len(small) > n else "",
    ]))
    if excludes and sign:
        verdict = (f"The conclusion (a {sign} effect whose 95% CI excludes 0) survives every "
                   "choice examined")
        return f"{verdict}, but it rests on {weak}; read it as tentative." if weak else (
            f"{verdict}.")
    if sign:
        fragile = f"; resting on {weak}, it is fragile" if weak else ""
        return (f"The direction ({sign}) is stable, but whether the effect is "
                f"distinguishable from 0 depends on the choices named above{fragile}.")
    return "Neither the direction nor the 95% CI is robust to the choices examined."


def _groups(frame: pd.DataFrame) -> list[str]:
    return [g.lower() for g in dict.fromkeys(frame["scenario_group"]) if g != DEFAULT_GROUP]
