"""Pooling the analysis table by any coding column (a targeted component, a technique …).

``pool_by(effects, by)`` fits one random-effects model per level of a coding column
(multi-valued cells separated by ";": a study counts toward every level it names) and
one over all included effects.  By default no row is dropped: every level found in the
column is pooled, and rows whose cell is blank form the level ``UNGROUPED``.

Models (``model=``):

* ``"che"`` — correlated-and-hierarchical-effects working model (study and effect
  random effects, within-study sampling correlation ``rho``) with CR2 cluster-robust
  standard errors and Satterthwaite degrees of freedom (Pustejovsky & Tipton 2022,
  *Prev. Sci.* 23:425–438; metafor ``rma.mv`` + ``robust(clubSandwich = TRUE)``).
* ``"aggregate"`` — one composite effect per study (``aggregate``, compound symmetry
  with ``rho``), then a univariate random-effects model with Knapp–Hartung t tests.
* ``"univariate"`` — every effect as if independent (REML + Knapp–Hartung); it
  ignores dependence and is reported only for comparison.

Small-k honesty: a level without studies gives a NaN row noted "no studies yet"; a
level with one study reports that study's own composite effect (see ``_study_rows``)
with a z interval and no between-study heterogeneity; a CHE fit whose Satterthwaite df
is below 4 is noted "robust CI unreliable (df < 4)" (Tipton 2015, *Psychol. Methods*
20:375–393: CR2 t tests are trustworthy from about 4 df).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from metaally.data.vocabulary import level_label
from metaally.models.aggregate import aggregate
from metaally.models.multilevel import multilevel
from metaally.models.printing import Printable, fields_frame, fmt_num, fmt_pvalue
from metaally.models.univariate import RandomEffectsResult, check_options, random_effects

__all__ = [
    "MODELS", "POOLED_COLUMNS", "CELL_COLUMNS", "UNGROUPED", "PooledGroup", "DifferencesResult",
    "pool_groups", "pool_by", "pool_cells", "differences_by", "level_label", "coding_levels",
    "coding_cells", "level_mask", "check_effects",
]

MODELS: tuple[str, ...] = ("che", "aggregate", "univariate")

POOLED_COLUMNS: list[str] = [
    "grouping", "level", "k_studies", "k_effects", "estimate", "se", "ci_low", "ci_high",
    "df", "pvalue", "pi_low", "pi_high", "sigma2_study", "sigma2_within", "i2", "model", "note",
]

NOTE_NO_STUDIES = "no studies yet"
NOTE_SINGLE_STUDY = "one study: its own effect, nothing pooled, no heterogeneity"
NOTE_SMALL_DF = "robust CI unreliable (df < 4)"
NOTE_INDEPENDENT = "ignores dependence: effects treated as independent"
NOTE_MODEL_BASED = ("robust (CR2) test impossible with {studies} studies for {levels} levels: "
                    "model-based test, valid only if the CHE working model is right")
NOTE_HTZ_UNDEFINED = ("robust (HTZ) test undefined with {studies} studies for {levels} levels "
                      "(its denominator df is {df}): model-based test, valid only if the CHE "
                      "working model is right")
#: the level of the rows whose coding cell is blank
UNGROUPED = "ungrouped"


_STUDY_COLUMNS = ["study_id", "citation", "year", "k_effects", "yi", "vi", "ci_low", "ci_high",
                  "weight"]


@dataclass(frozen=True, eq=False)
class PooledGroup(Printable):
    """One pooled estimate: a level of a coding column (or all effects) under one model.

    ``studies`` holds one row per study in the group: its composite effect ``yi``/``vi``
    under the fitted model, a z interval and its percent weight (``_study_rows``); for an
    intercept-only model the pooled estimate is the weighted mean of these rows.
    """

    grouping: str
    level: str
    label: str
    model: str
    rho: float
    k_studies: int
    k_effects: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    df: float
    pvalue: float
    pi_low: float
    pi_high: float
    sigma2_study: float
    sigma2_within: float
    i2: float
    note: str
    studies: pd.DataFrame

    @property
    def k(self) -> int:
        """Effects pooled (the result protocol's ``k``; the tables call it ``k_effects``)."""
        return self.k_effects

    @property
    def n_clusters(self) -> int:
        """Studies pooled (the protocol's ``n_clusters``; the tables' ``k_studies``)."""
        return self.k_studies

    def summary(self) -> str:
        """The group, its model, k, variance components and the pooled estimate's row."""
        title = "all included effects" if self.grouping == "overall" else (
            f"{self.grouping} = {self.level}")
        lines = [
            f"Pooled estimate, {title} ({_MODEL_NAMES[self.model]}, rho = {self.rho:g})",
            f"k = {self.k_studies} studies, {self.k_effects} effects",
        ]
        if self.k_studies == 0:
            return "\n".join([*lines, "", self.note])
        lines += [
            f"sigma^2 (study) = {fmt_num(self.sigma2_study)}; "
            f"sigma^2 (within) = {fmt_num(self.sigma2_within)}; I^2 = {fmt_num(self.i2, 2)}%",
            "",
            "estimate      se      df    pval   ci.lb   ci.ub   pi.lb   pi.ub",
            f"{fmt_num(self.estimate):>8} {fmt_num(self.se):>7} {fmt_num(self.df, 2):>7} "
            f"{fmt_pvalue(self.pvalue):>7} {fmt_num(self.ci_low):>7} {fmt_num(self.ci_high):>7} "
            f"{fmt_num(self.pi_low):>7} {fmt_num(self.pi_high):>7}",
        ]
        if self.note:
            lines += ["", f"Note: {self.note}"]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row with the columns of ``pool_by`` (``POOLED_COLUMNS``)."""
        return fields_frame(self, POOLED_COLUMNS)


_MODEL_NAMES = {
    "che": "CHE working model, REML, CR2 robust SE, Satterthwaite df",
    "aggregate": "studies aggregated, random effects, REML, Knapp-Hartung",
    "univariate": "effects as independent, random effects, REML, Knapp-Hartung",
}


def pool_groups(
    effects: pd.DataFrame,
    by: str | None,
    model: str = "che",
    rho: float = 0.6,
    method: str = "REML",
    levels: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    level: float = 0.95,
    test: str = "knha",
) -> list[PooledGroup]:
    """Fit one model per level of the coding column ``by`` (``None``: all effects).

    Only rows with ``included`` true enter.  A cell holding several levels separated
    by ";" puts the effect in each of them.  ``levels`` fixes which levels appear and in
    what order (levels without studies then give a "no studies yet" group); by default
    every level found in the column, in order of first appearance, and — when a cell is
    blank — ``UNGROUPED`` for those rows (``coding_levels``).  ``labels`` maps a
    level to its display name (``PooledGroup.label``; default ``level_label``).

    ``model``: "che" (``multilevel`` + CR2 ``robust``, Satterthwaite df; Pustejovsky &
    Tipton 2022), "aggregate" (``aggregate`` per study, then ``random_effects``) or
    "univariate" (``random_effects``, effects as if independent); the small-k rules are
    those of the module docstring.  ``level``: confidence level of every interval.
    ``test``: "knha" (Knapp & Hartung 2003 t tests, the default here because pooled groups
    hold few studies) or "z", for the "aggregate" and "univariate" models; the CHE model
    always uses the CR2 t test with Satterthwaite df.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    method, test, level = check_options(method, test, level)
    check_effects(effects, [] if by is None else [by])
    included = effects[effects["included"].astype(bool)]
    options = {"model": model, "rho": rho, "method": method, "level": level, "test": test}
    if by is None:
        return [_pool(included, "overall", "overall", "All effects", options)]
    in_sample = coding_cells(included[by])
    return [
        _pool(included[level_mask(in_sample, name)], by, name, level_label(name, labels), options)
        for name in coding_levels(effects[by], levels)
    ]


def pool_by(
    effects: pd.DataFrame,
    by: str,
    model: str = "che",
    rho: float = 0.6,
    method: str = "REML",
    levels: Sequence[str] | None = None,
    overall: bool = True,
    level: float = 0.95,
    test: str = "knha",
) -> pd.DataFrame:
    """Pooled estimate per level of the coding column ``by``, plus an ``overall`` row.

    Columns ``POOLED_COLUMNS``: ``grouping`` (``by`` or "overall"), ``level``, k studies
    and effects, estimate, se, CI, df, p, prediction interval, variance components
    (``sigma2_study``, ``sigma2_within``; for the univariate models tau^2 is in
    ``sigma2_study``), I^2 (percent), ``model`` and a ``note``.  Levels, ``level`` and
    ``test`` as in ``pool_groups``.
    """
    options = {"model": model, "rho": rho, "method": method, "level": level, "test": test}
    groups = pool_groups(effects, by, levels=levels, **options)
    if overall:
        groups += pool_groups(effects, None, **options)
    return pd.concat([g.to_frame() for g in groups], ignore_index=True)


CELL_COLUMNS: list[str] = ["row", "column", *POOLED_COLUMNS[2:]]


def pool_cells(
    effects: pd.DataFrame,
    rows: str,
    columns: str,
    model: str = "che",
    rho: float = 0.6,
    method: str = "REML",
    row_levels: Sequence[str] | None = None,
    column_levels: Sequence[str] | None = None,
    level: float = 0.95,
    test: str = "knha",
) -> pd.DataFrame:
    """Pooled estimate in every cell of the cross-tabulation of two coding columns.

    The cell (r, c) holds the included effects whose ``rows`` cell names r and whose
    ``columns`` cell names c (an effect counts in every cell its ";"-lists name), pooled
    as ``pool_groups`` does (same model, small-k rules and notes: a cell without studies
    is a "no studies yet" row).  This is the content of an evidence gap map, e.g.
    ``pool_cells(effects, "components", "outcome_component")``: what interventions
    target against what their outcomes measure.  Levels as in ``pool_groups`` (by
    default those found, then ``UNGROUPED`` for blank cells); rows come out row-major.
    Columns ``CELL_COLUMNS``.
    """
    check_effects(effects, [rows, columns])
    row_levels = coding_levels(effects[rows], row_levels)
    column_levels = coding_levels(effects[columns], column_levels)
    members = coding_cells(effects[rows])
    frames = []
    options = {"model": model, "rho": rho, "method": method, "level": level, "test": test}
    for row in row_levels:
        in_row = effects[level_mask(members, row)]
        for group in pool_groups(in_row, columns, levels=column_levels, **options):
            frames.append(group.to_frame().rename(columns={"level": "column"}).assign(row=row))
    return pd.concat(frames, ignore_index=True)[CELL_COLUMNS]


@dataclass(frozen=True, eq=False)
class DifferencesResult(Printable):
    """Meta-regression of effects on one 0/1 indicator per level (no intercept).

    With multi-membership (a study targeting several components has several indicators
    equal to 1) a coefficient is that level's additive contribution, equal to the level's
    mean only for studies targeting it alone.  ``stat``/``df1``/``df2``/``pvalue``
    test that all coefficients are equal: the HTZ Wald test (Tipton & Pustejovsky 2015,
    *J. Educ. Behav. Stat.* 40:604–634), ``inference = "CR2"``; or, when there are too
    few studies for a cluster-robust variance (or the HTZ test's denominator df is not
    positive), the model-based Wald chi-square test (``inference = "model"``, ``df2``
    NaN; metafor ``anova(rma.mv, X = L)``).  ``left_out`` names the levels with a single
    study, which are not in the model.
    """

    by: str
    rho: float
    inference: str
    coefficients: pd.DataFrame
    sigma2_study: float
    sigma2_within: float
    stat: float
    df1: float
    df2: float
    pvalue: float
    note: str
    n_clusters: int = 0
    left_out: tuple[str, ...] = ()

    def summary(self) -> str:
        """One row per level, then the test that all levels are equal."""
        robust = self.inference == "CR2"
        lines = [
            f"Differences between levels of {self.by}: multilevel meta-regression "
            f"(CHE, rho = {self.rho:g}, REML), one indicator per level, no intercept; "
            + ("CR2 robust" if robust else "model-based (too few studies for CR2)"),
            f"sigma^2 (study) = {fmt_num(self.sigma2_study)}; "
            f"sigma^2 (within) = {fmt_num(self.sigma2_within)}",
            "",
            f"{'level':<24} {'k':>3} {'estimate':>9} {'se':>7} {'df':>6} {'pval':>7} "
            f"{'ci.lb':>7} {'ci.ub':>7}",
        ]
        for row in self.coefficients.itertuples():
            lines.append(
                f"{row.level:<24} {row.k_studies:>3} {fmt_num(row.estimate):>9} "
                f"{fmt_num(row.se):>7} {fmt_num(row.df, 2):>6} {fmt_pvalue(row.pvalue):>7} "
                f"{fmt_num(row.ci_low):>7} {fmt_num(row.ci_high):>7}"
            )
        statistic = (f"F({fmt_num(self.df1, 0)}, {fmt_num(self.df2, 2)})" if robust
                     else f"chi^2({fmt_num(self.df1, 0)})")
        lines += [
            "",
            f"Test that all levels are equal ({_TEST_NAMES[self.inference]}): {statistic} = "
            f"{fmt_num(self.stat)}, p = {fmt_pvalue(self.pvalue)}",
        ]
        if self.note:
            lines += ["", f"Note: {self.note}"]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table (``DIFFERENCES_COLUMNS``): one ``coefficient`` row per level, one
        ``left_out`` row per level left out (one study), then one ``test`` row holding the
        inference: ``statistic``, ``df1``, ``df2`` (NaN for the chi-square test),
        ``pvalue``, ``inference`` ("CR2" or "model") and, in ``k_studies``, the number of
        studies (clusters) in the model."""
        coefs = self.coefficients.assign(row_type="coefficient")
        left_out = pd.DataFrame({"row_type": "left_out", "level": list(self.left_out),
                                 "k_studies": 1, "note": "one study only"})
        test = pd.DataFrame([{
            "row_type": "test", "level": f"all equal ({_TEST_NAMES[self.inference]})",
            "k_studies": self.n_clusters, "statistic": self.stat,
            "df1": self.df1, "df2": self.df2, "pvalue": self.pvalue,
            "note": self.note, "inference": self.inference,
        }])
        parts = [coefs, left_out, test] if self.left_out else [coefs, test]
        return pd.concat(parts, ignore_index=True).reindex(columns=DIFFERENCES_COLUMNS)


DIFFERENCES_COLUMNS: list[str] = [
    "row_type", "level", "k_studies", "k_effects", "estimate", "se", "df", "ci_low", "ci_high",
    "pvalue", "statistic", "df1", "df2", "note", "inference",
]


_TEST_NAMES = {"CR2": "HTZ Wald", "model": "model-based Wald"}


def differences_by(
    effects: pd.DataFrame,
    by: str,
    rho: float = 0.6,
    method: str = "REML",
    levels: Sequence[str] | None = None,
) -> DifferencesResult:
    """Do the levels of ``by`` differ?  CHE meta-regression with one indicator per level.

    Only included rows.  Levels with fewer than two studies are left out (one cluster
    cannot give a cluster-robust variance for its coefficient; the note names them), and
    so are effects that then belong to no remaining level.  The model is
    ``y_ij = sum_c beta_c x_ijc + u_i + w_ij + e_ij`` (CHE, ``rho``), fitted by REML,
    with CR2 robust standard errors and Satterthwaite df; the HTZ Wald test of
    ``beta_1 = ... = beta_q`` uses the constraints ``L beta = 0``, rows
    ``beta_c - beta_1`` (clubSandwich ``constrain_equal``).  CR2 needs more studies than
    coefficients; with fewer (several techniques sharing the same few studies) the
    coefficients keep the model-based z inference and the test is the Wald chi-square
    ``(L b)' (L V L')^-1 (L b)`` on q - 1 df, which trusts the CHE working model; the
    note says so.
    """
    check_effects(effects, [by])
    data = effects[effects["included"].astype(bool)]
    members = coding_cells(data[by])
    levels = [c for c in coding_levels(data[by], levels) if c != UNGROUPED]
    indicators = pd.DataFrame(
        {level: [float(level in cell) for cell in members] for level in levels},
        index=data.index,
    )
    n_studies = {c: data.loc[indicators[c] > 0, "study_id"].nunique() for c in levels}
    present = [c for c in levels if n_studies[c] >= 2]
    left_out = [c for c in levels if n_studies[c] == 1]
    if len(present) < 2:
        raise ValueError(f"{by} has fewer than two levels with two or more studies; "
                         "nothing to compare")
    indicators = indicators[present]
    keep = (indicators.sum(axis=1) > 0).to_numpy()
    data, indicators = data[keep], indicators[keep]
    fit = multilevel(data["yi"], data["vi"], data["study_id"], es_id=data["es_id"], rho=rho,
                     mods=indicators, method=method, intercept=False)
    constraints = np.zeros((len(present) - 1, len(present)))
    constraints[:, 0] = -1.0
    constraints[np.arange(len(present) - 1), np.arange(1, len(present))] = 1.0
    inference = "CR2" if fit.n_clusters > len(present) else "model"
    undefined = ""
    if inference == "CR2":
        robust = fit.robust(adjust="CR2")
        wald = robust.wald_test(constraints)
        stat, df2, pvalue = float(wald.stat), float(wald.df2), float(wald.pvalue)
        if not (df2 > 0 and np.isfinite(pvalue)):  # the HTZ approximation breaks down
            undefined = NOTE_HTZ_UNDEFINED.format(studies=fit.n_clusters, levels=len(present),
                                                  df=fmt_num(df2, 2))
            inference = "model"
        else:
            coef = robust.coef
    if inference == "model":
        coef = fit.coef.assign(df=math.nan)
        diff = constraints @ fit.coef["estimate"].to_numpy()
        stat = float(diff @ np.linalg.solve(constraints @ fit.vcov @ constraints.T, diff))
        df2, pvalue = math.nan, float(chi2.sf(stat, len(present) - 1))
    coefficients = pd.DataFrame({
        "level": present,
        "k_studies": [int(data.loc[indicators[c] > 0, "study_id"].nunique()) for c in present],
        "k_effects": [int((indicators[c] > 0).sum()) for c in present],
        **{c: coef[c].to_numpy(dtype=float)
           for c in ["estimate", "se", "df", "ci_low", "ci_high", "pvalue"]},
    })
    df = coefficients["df"].to_numpy()
    coefficients["note"] = np.where(df < 4, NOTE_SMALL_DF, "")
    note = "; ".join(filter(None, [
        "multi-membership: coefficients add up for effects coded with several levels"
        if (indicators.sum(axis=1) > 1).any() else "",
        NOTE_SMALL_DF if df2 < 4 else "",
        undefined or (NOTE_MODEL_BASED.format(studies=fit.n_clusters, levels=len(present))
                      if inference == "model" else ""),
        f"left out (one study only): {', '.join(left_out)}" if left_out else "",
    ]))
    return DifferencesResult(
        by=by, rho=rho, inference=inference, coefficients=coefficients,
        sigma2_study=float(fit.sigma2_study), sigma2_within=float(fit.sigma2_within),
        stat=stat, df1=float(len(present) - 1), df2=df2, pvalue=pvalue, note=note,
        n_clusters=int(fit.n_clusters), left_out=tuple(left_out),
    )


# --- one group ------------------------------------------------------------------------


def _pool(data: pd.DataFrame, grouping: str, name: str, label: str, options: dict) -> PooledGroup:
    """One pooled group; ``options``: model, rho, method, level (confidence), test."""
    model, rho, method = options["model"], options["rho"], options["method"]
    level, test = options["level"], options["test"]
    k_studies = int(data["study_id"].nunique())
    common = {"grouping": grouping, "level": name, "label": label, "model": model, "rho": rho,
              "k_studies": k_studies, "k_effects": len(data)}
    if k_studies == 0:
        nan = math.nan
        return PooledGroup(**common, estimate=nan, se=nan, ci_low=nan, ci_high=nan, df=nan,
                           pvalue=nan, pi_low=nan, pi_high=nan, sigma2_study=nan,
                           sigma2_within=nan, i2=nan, note=NOTE_NO_STUDIES,
                           studies=pd.DataFrame(columns=_STUDY_COLUMNS))
    if k_studies == 1:
        fit = _single_study(data, model, rho, method, level)
    else:
        fit = _FITTERS[model](data, rho, method, level, test)
    notes = [fit.pop("note")]
    if model == "univariate" and k_studies > 1:
        notes.append(NOTE_INDEPENDENT)
    studies = _study_rows(data, rho, level=level, **fit.pop("weighting"))
    return PooledGroup(**common, **fit, note="; ".join(filter(None, notes)), studies=studies)


def _single_study(data: pd.DataFrame, model: str, rho: float, method: str, level: float) -> dict:
    """k_studies = 1: the study's own composite effect under the model's within-study
    structure (``_study_rows``), with a z interval; nothing is pooled, so no between-study
    heterogeneity.  Under "che" the within-study variance sigma2_within of a study with
    several effects is estimated as ``rma.mv`` does with a single study (sigma2_study fixed
    at 0); under "univariate" it is the effects' tau^2; under "aggregate" it is 0 (the
    study's ``aggregate``)."""
    within = 0.0
    if len(data) > 1 and model == "che":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "single-level factor": expected with one study
            within = float(multilevel(data["yi"], data["vi"], data["study_id"],
                                      es_id=data["es_id"], rho=rho, method=method).sigma2_within)
    elif len(data) > 1 and model == "univariate":
        within = float(random_effects(data["yi"], data["vi"], method=method).tau2)
    weighting = {"sigma2_study": 0.0, "sigma2_within": within, "correlated": model != "univariate"}
    row = _study_rows(data, rho, level=level, **weighting).iloc[0]
    est, se = float(row["yi"]), math.sqrt(float(row["vi"]))
    nan = math.nan
    return {"estimate": est, "se": se, "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]), "df": nan,
            "pvalue": float(2 * norm.sf(abs(est / se))), "pi_low": nan, "pi_high": nan,
            "sigma2_study": nan, "i2": nan,
            "sigma2_within": within if model == "che" and len(data) > 1 else nan,
            "note": NOTE_SINGLE_STUDY, "weighting": weighting}


def _fit_che(data: pd.DataFrame, rho: float, method: str, level: float, test: str) -> dict:
    fit = multilevel(data["yi"], data["vi"], data["study_id"], es_id=data["es_id"], rho=rho,
                     method=method, level=level)
    robust = fit.robust(adjust="CR2")
    df = float(robust.df)
    return {"estimate": float(robust.estimate), "se": float(robust.se),
            "ci_low": float(robust.ci_low), "ci_high": float(robust.ci_high), "df": df,
            "pvalue": float(robust.pvalue), "pi_low": float(robust.pi_low),
            "pi_high": float(robust.pi_high), "sigma2_study": float(fit.sigma2_study),
            "sigma2_within": float(fit.sigma2_within), "i2": float(fit.i2),
            "note": NOTE_SMALL_DF if df < 4 else "",
            "weighting": {"sigma2_study": float(fit.sigma2_study),
                          "sigma2_within": float(fit.sigma2_within), "correlated": True}}


def _fit_aggregate(data: pd.DataFrame, rho: float, method: str, level: float, test: str) -> dict:
    agg = aggregate(data["yi"], data["vi"], data["study_id"], rho=rho)
    res = random_effects(agg["yi"], agg["vi"], method=method, test=test, level=level)
    return _univariate_fields(res) | {
        "weighting": {"sigma2_study": float(res.tau2), "sigma2_within": 0.0, "correlated": True}}


def _fit_univariate(data: pd.DataFrame, rho: float, method: str, level: float, test: str) -> dict:
    res = random_effects(data["yi"], data["vi"], method=method, test=test, level=level)
    return _univariate_fields(res) | {
        "weighting": {"sigma2_study": 0.0, "sigma2_within": float(res.tau2), "correlated": False}}


def _univariate_fields(res: RandomEffectsResult) -> dict:
    return {"estimate": float(res.estimate), "se": float(res.se), "ci_low": float(res.ci_low),
            "ci_high": float(res.ci_high), "df": float(res.df), "pvalue": float(res.pvalue),
            "pi_low": float(res.pi_low), "pi_high": float(res.pi_high),
            "sigma2_study": float(res.tau2), "sigma2_within": math.nan, "i2": float(res.i2),
            "note": ""}


_FITTERS = {"che": _fit_che, "aggregate": _fit_aggregate, "univariate": _fit_univariate}


# --- per-study rows for forest plots ----------------------------------------------------


def _study_rows(
    data: pd.DataFrame, rho: float, sigma2_study: float, sigma2_within: float, correlated: bool,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per study: its composite effect under the fitted model, a z interval and its
    percent weight in the pooled estimate.

    With ``A_i = V_i + sigma2_within I`` (``V_i`` the sampling covariance, compound symmetric
    with ``rho``, or diagonal when ``correlated`` is false) the study's composite is the GLS
    mean ``y*_i = (1'A_i^-1 1)^-1 1'A_i^-1 y_i`` with variance ``v*_i = (1'A_i^-1 1)^-1``, and
    its weight is ``w_i = 1/(v*_i + sigma2_study)``, which equals ``1'M_i^-1 1`` for the
    marginal covariance ``M_i = A_i + sigma2_study J`` (Sherman-Morrison).  So the
    intercept-only pooled estimate is exactly ``sum w_i y*_i / sum w_i``: the diamond is the
    weighted mean of the rows shown.  With ``sigma2_within = 0`` the composite is metafor's
    ``aggregate(struct="CS")``; with one effect it is the effect itself and ``w_i = 1/(v_i +
    tau^2)``.
    """
    agg = aggregate(data["yi"], data["vi"], data["study_id"], rho=rho if correlated else 0.0,
                    sigma2_within=sigma2_within)
    table = pd.DataFrame({"study_id": agg["study"], "k_effects": agg["k"], "yi": agg["yi"],
                          "vi": agg["vi"], "weight": 1.0 / (agg["vi"] + sigma2_study)})
    first = data.drop_duplicates("study_id").set_index("study_id").loc[table["study_id"]]
    table.insert(1, "citation", first["citation"].to_numpy() if "citation" in first
                 else table["study_id"].to_numpy())
    table.insert(2, "year", first["year"].to_numpy() if "year" in first else np.nan)
    half = norm.isf((1 - level) / 2) * np.sqrt(table["vi"])
    table["ci_low"], table["ci_high"] = table["yi"] - half, table["yi"] + half
    table["weight"] = 100 * table["weight"] / table["weight"].sum()
    return table[_STUDY_COLUMNS]


# --- helpers ----------------------------------------------------------------------------


def coding_cells(column: pd.Series) -> list[list[str]]:
    """Cells of a coding column as lists of levels ("a;b" -> ["a", "b"]; NaN -> [])."""
    return [
        [part.strip() for part in str(cell).split(";") if part.strip()] if pd.notna(cell) else []
        for cell in column
    ]


def level_mask(cells: list[list[str]], level: str) -> np.ndarray:
    """Boolean mask of the cells naming ``level`` (``UNGROUPED``: the blank cells; a mask,
    also when there are no rows)."""
    if level == UNGROUPED:
        return np.array([not cell for cell in cells], dtype=bool)
    return np.array([level in cell for cell in cells], dtype=bool)


def coding_levels(column: pd.Series, levels: Sequence[str] | None = None) -> list[str]:
    """The levels of a coding column a table shows: ``levels`` when given (the caller's
    choice and order, e.g. a declared vocabulary), else every level the column uses in
    order of first appearance, then ``UNGROUPED`` when a cell is blank — so by default no
    row is ever dropped from a table."""
    if levels is not None:
        return list(levels)
    cells = coding_cells(column)
    shown = list(dict.fromkeys(name for cell in cells for name in cell))
    if any(not cell for cell in cells):
        shown.append(UNGROUPED)
    return shown


def check_effects(effects: pd.DataFrame, extra: list[str]) -> None:
    """Raise ValueError naming the columns of an analysis table that are missing."""
    needed = ["study_id", "es_id", "yi", "vi", "included", *extra]
    missing = [c for c in needed if c not in effects.columns]
    if missing:
        raise ValueError(f"effects is missing column(s) {', '.join(missing)}")
    flags = effects["included"]
    if flags.dtype != bool and not flags.map(lambda x: isinstance(x, bool | np.bool_)).all():
        raise ValueError("effects['included'] must be true/false (bool) values; got "
                         f"{flags[~flags.map(lambda x: isinstance(x, bool | np.bool_))].iloc[0]!r}")
