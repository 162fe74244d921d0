"""Methods text and PRISMA 2020 synthesis checklist for the allyship review (Table 2).

``methods_markdown`` returns the "Methods" section of ``summary.md``: data source,
inclusion, effect size, model and ρ, the defaults and their sensitivity analyses, the
PET-PEESE decision rule and its outcome, heterogeneity and prediction intervals read in
words, fragility per component, and every pooled row whose robust df fall below 4.
``prisma_checklist`` answers the PRISMA 2020 items a synthesis of given data can meet
(Page et al. 2021, *BMJ* 372:n71: items 13a–13f, 14, 15, 20a–20d, 22), each with a
pointer to where the answer is.  Every sentence is built from the tables passed in; no
number is typed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from metaally.diagnostics.bias import pet_peese
from metaally.models.aggregate import aggregate
from metaally.models.pooling import level_label

__all__ = [
    "MIN_DF",
    "MIN_STUDIES_PET",
    "data_source",
    "effect_size_text",
    "fragility_text",
    "heterogeneity_text",
    "methods_markdown",
    "model_text",
    "pet_peese_text",
    "prisma_checklist",
    "prisma_markdown",
    "small_df_text",
]

MIN_DF = 4.0
MIN_STUDIES_PET = 3

_RANGES = {
    "endpoints": "both endpoints, entered as two effect sizes",
    "midpoint": "its midpoint only",
    "low": "its lower endpoint only",
    "high": "its upper endpoint only",
}


def _refs(rows: pd.DataFrame) -> str:
    refs = sorted({int(r) for r in rows["ref"].dropna()})
    if not refs:
        return "none"
    return ("ref " if len(refs) == 1 else "refs ") + ", ".join(str(r) for r in refs)


def _studies(n: int) -> str:
    return f"{n} {'study' if n == 1 else 'studies'}"


def _effects(n: int) -> str:
    return f"{n} {'effect' if n == 1 else 'effects'}"


def _num(x: float) -> str:
    return f"{x:.2f}".replace("-0.00", "0.00")


def data_source(studies: pd.DataFrame, effects: pd.DataFrame) -> str:
    """Where the data come from, what was included, and what was flagged."""
    included = effects[effects["included"].astype(bool)]
    excluded = effects[~effects["included"].astype(bool)]
    active = included[included["comparator"] == "active"]
    preprint = included[~included["peer_reviewed"].astype(bool)]
    text = [
        f"**Data source.** The data are the {_studies(studies['study_id'].nunique())} and "
        f"{len(studies)} reported results listed in Table 2 of one narrative review, "
        "entered as the table gives them (data/README.md). No systematic search was run: "
        "the studies are those the review's authors chose to cite, not a complete or "
        "representative sample of the literature, and every pooled estimate describes "
        "these studies only.",
        "",
        f"**Inclusion.** Every result that contrasts an intervention with a comparison "
        f"enters: {_effects(len(included))} from "
        f"{_studies(included['study_id'].nunique())}. "
        + (f"{_effects(len(excluded))} ({_refs(excluded)}) "
           f"{'is' if len(excluded) == 1 else 'are'} an association, not a contrast, and "
           "recorded but not pooled. " if len(excluded) else "")
        + f"Studies with an active comparator ({_refs(active)}, {_effects(len(active))}) "
        f"and the preprint ({_refs(preprint)}, {_effects(len(preprint))}) are pooled by "
        "default, flagged in the data, and left out in sensitivity analyses.",
    ]
    if "randomised" in studies.columns:
        first = studies.drop_duplicates("study_id")
        no = first[first["randomised"].astype(str).str.strip() == "no"]
        unclear = first[first["randomised"].astype(str).str.strip() == "unclear"]
        text[-1] += (
            f" Non-randomised: {_refs(no)}; Table 2 does not say whether the others "
            f"were randomised ({_studies(len(unclear))} coded `unclear`).")
    return "\n".join(text)


def effect_size_text(effects: pd.DataFrame, settings: Any) -> str:
    """Effect size, conversions, ranges, arms and design, from the analysis table."""
    included = effects[effects["included"].astype(bool)]
    metrics = included["metric"].value_counts()
    converted = ", ".join(f"{_effects(int(n))} from {m.replace('f2', 'f²')}"
                          for m, n in metrics.items() if m != "d")
    prepost = int((included["design"] == "prepost").sum())
    design = ("treated as between-group contrasts, as Table 2's header states"
              if settings.design_policy == "between" else
              f"given the pre-post variance (r = {settings.prepost_r:g})")
    return (
        "**Effect size.** Hedges' g (the small-sample corrected standardised mean "
        "difference) with sampling variance v = (n1 + n2)/(n1 n2) + g²/(2(n1 + n2)); "
        + (f"{converted} converted to d first (data/README.md); " if converted else "")
        + f"a reported range enters with {_RANGES[settings.range_policy]}; a study's total n "
        + ("is divided evenly over its stated number of conditions"
           if settings.arms_policy == "stated" else "is divided over two groups")
        + f"; the {_effects(prepost)} that may be within-person changes are {design}."
    )


def model_text(pooled: pd.DataFrame, settings: Any) -> str:
    """The model, ρ and the defaults with their sensitivity analyses."""
    components = pooled[pooled["grouping"] == "component"]
    small = components[components["df"] < MIN_DF]
    return (
        "**Model.** Correlated-and-hierarchical-effects (CHE) working model: random effects "
        "for studies and for effects within studies, sampling errors of one study's effects "
        f"correlated at ρ = {settings.rho:g}, variance components by {settings.method}; "
        "confidence intervals use cluster-robust (CR2) standard errors with Satterthwaite "
        "degrees of freedom (Pustejovsky & Tipton 2022). "
        f"{len(small)} of {int((components['k_studies'] >= 2).sum())} pooled components "
        "have fewer than 4 robust df, where these intervals are unreliable (Tipton 2015)."
        "\n\n"
        "**Defaults and their sensitivity.** "
        f"ρ = {settings.rho:g}; ranges as {settings.range_policy}; n split "
        f"{'by stated arms' if settings.arms_policy == 'stated' else 'in two'}; design "
        f"{settings.design_policy}; active comparators and the preprint included. Each is "
        "varied, one at a time, in results/sensitivity.csv (figures/sensitivity.png)."
    )


def pet_peese_text(effects: pd.DataFrame, rho: float = 0.6, alpha: float = 0.05) -> str:
    """The PET-PEESE decision rule and what it chose, per analysis with >= 3 studies."""
    included = effects[effects["included"].astype(bool)]
    analyses = {"all effects": included}
    targets = included["components"].str.split(";")
    for component in dict.fromkeys(c for cell in targets for c in cell):
        rows = included[targets.apply(lambda names, c=component: c in names)]
        if rows["study_id"].nunique() >= MIN_STUDIES_PET:
            analyses[level_label(component).lower()] = rows
    parts = []
    for name, rows in analyses.items():
        comp = aggregate(rows["yi"], rows["vi"], rows["study_id"], rho=rho)
        res = pet_peese(comp["yi"], comp["vi"], alpha=alpha)
        parts.append(f"{name}: PET one-sided p = {res.pet_pvalue_one_sided:.3f}, so "
                     f"{res.chosen} ({_num(res.estimate)} [{_num(res.ci_low)}, "
                     f"{_num(res.ci_high)}], {res.k} studies)")
    joined = "; ".join(parts)
    return (
        "**PET-PEESE.** Decision rule (Stanley & Doucouliagos 2014): on one composite effect "
        "per study, PET's one-sided t test of a positive limit estimate; if it rejects at "
        f"α = {alpha:g}, the PEESE estimate is reported, otherwise the PET estimate. "
        + joined[:1].upper() + joined[1:]
        + ". With fewer than 10 studies these tests have almost no power "
        "(Sterne et al. 2011); the limit estimates are not corrections."
    )


def heterogeneity_text(pooled: pd.DataFrame) -> str:
    """I² and the prediction interval of every pooled component, read in words."""
    rows = pooled[(pooled["grouping"].isin(["component", "overall"]))
                  & (pooled["k_studies"] >= 2)]
    sentences = []
    for r in rows.itertuples():
        name = "All effects" if r.grouping == "overall" else level_label(r.component)
        reach = ("could be null or reversed" if r.pi_low <= 0 else "stays positive")
        sentences.append(
            f"{name}: I² = {r.i2:.0f}% of the variance is between and within studies rather "
            f"than sampling error; the 95% prediction interval, {_num(r.pi_low)} to "
            f"{_num(r.pi_high)}, says the effect in a new comparable study {reach}.")
    every = all(r.pi_low <= 0 <= r.pi_high for r in rows.itertuples())
    lead = ("**Heterogeneity and prediction intervals.** "
            + ("Every prediction interval includes 0. " if every and len(rows) else ""))
    return lead + " ".join(sentences)


def fragility_text(findings: pd.DataFrame) -> str:
    """One sentence per pooled component: after leaving out which studies the CI
    includes 0 (``summary_of_findings``' ``loo_ci_includes_0``)."""
    rows = findings[(findings["grouping"] != "overall") & (findings["k_studies"] >= 2)]
    sentences = []
    for r in rows.itertuples():
        count = int(r.loo_ci_includes_0)
        name = level_label(str(r.level))
        if count:
            sentences.append(f"{name}: the CI includes 0 after leaving out any one of {count} "
                             f"of its {r.k_studies} studies.")
        else:
            sentences.append(f"{name}: the CI excludes 0 whichever one of its "
                             f"{r.k_studies} studies is left out.")
    return "**Fragility.** " + " ".join(sentences)


def small_df_text(tables: Mapping[str, pd.DataFrame]) -> str:
    """Every pooled row (of the named tables) with fewer than 4 robust df."""
    flagged = []
    for name, table in tables.items():
        level = "component" if "component" in table.columns else "level"
        rows = table[(table["df"] < MIN_DF) & (table["k_studies"] >= 2)]
        flagged += [f"{name} {level_label(str(v)).lower()} (df = {d:.1f})"
                    for v, d in zip(rows[level], rows["df"], strict=True)]
    if not flagged:
        return "**df < 4.** No pooled row has fewer than 4 robust degrees of freedom."
    return ("**df < 4 (robust CI unreliable).** " + "; ".join(flagged) + ".")


def methods_markdown(
    studies: pd.DataFrame,
    effects: pd.DataFrame,
    pooled: pd.DataFrame,
    findings: pd.DataFrame,
    settings: Any = None,
    other_pooled: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """The Methods section (Markdown, starting with ``## Methods``).

    ``studies``: ``load_table2()``; ``effects``: the analysis table; ``pooled``:
    ``pool_by_component(...)``; ``findings``: ``summary_of_findings(effects,
    "components", ...)``; ``settings``: the ``AnalysisSettings`` used (default: the
    package defaults); ``other_pooled``: further ``pool_by`` tables whose df < 4 rows are
    listed, by name (e.g. ``{"technique": ..., "outcome component": ...}``).
    """
    if settings is None:
        from metaally.diagnostics.sensitivity import AnalysisSettings

        settings = AnalysisSettings()
    tables = {"component": pooled[pooled["grouping"] == "component"],
              **(other_pooled or {})}
    tables = {k: v[v["grouping"] != "overall"] for k, v in tables.items()}
    blocks = [
        "## Methods", "",
        data_source(studies, effects), "",
        "**Question and table.** The review asks which components interventions *move*; "
        "the pooled tables group studies by the component an intervention *targets* "
        "(`components`). Pooling by the component the outcome measures "
        "(`outcome_component`) is reported beside it (results/pooled_by_outcome_component.csv, "
        "figures/evidence_gap_map.png).", "",
        effect_size_text(effects, settings), "",
        model_text(pooled, settings), "",
        pet_peese_text(effects, rho=settings.rho), "",
        heterogeneity_text(pooled), "",
        fragility_text(findings), "",
        small_df_text(tables), "",
        "## PRISMA 2020 synthesis items", "",
        prisma_markdown(prisma_checklist(studies, effects, pooled, findings)), "",
    ]
    return "\n".join(blocks)


def prisma_checklist(studies: pd.DataFrame, effects: pd.DataFrame, pooled: pd.DataFrame,
                     findings: pd.DataFrame) -> pd.DataFrame:
    """PRISMA 2020 items 13a–13f, 14, 15, 20a–20d and 22 (Page et al. 2021), each with
    an answer computed from the tables and where to find it (columns ``item``,
    ``topic``, ``answer``, ``where``)."""
    included = effects[effects["included"].astype(bool)]
    components = pooled[pooled["grouping"] == "component"]
    pooled_k2 = components[components["k_studies"] >= 2]
    empty = components[components["k_studies"] == 0]
    items: Sequence[tuple[str, str, str, str]] = [
        ("13a", "Eligibility for each synthesis",
         f"every intervention contrast in Table 2 ({_effects(len(included))}); a study enters "
         "each component it targets", "Methods: Inclusion; data/README.md"),
        ("13b", "Preparing data for synthesis",
         "conversions (f² to d), ranges, n per arm and pre-post rows, each documented per "
         "effect", "data/README.md; results/effects.csv (derivation)"),
        ("13c", "Tabulating and displaying results",
         "tables per component, technique and outcome; forest plots with weights",
         "results/pooled_by_*.csv; figures/forest_*.png"),
        ("13d", "Synthesis methods",
         "CHE working model, CR2 robust CIs, Satterthwaite df, prediction intervals",
         "Methods: Model"),
        ("13e", "Exploring heterogeneity",
         "meta-regression with one indicator per component; the same by technique",
         "results/component_differences.csv; results/technique_differences.csv"),
        ("13f", "Sensitivity analyses", "ρ, range, arms, design, comparators, preprint",
         "Methods: Defaults and their sensitivity; results/sensitivity.csv"),
        ("14", "Reporting bias assessment",
         "Egger's sandwich, rank test, trim-and-fill, PET-PEESE (k < 10: little power)",
         "Methods: PET-PEESE; results/small_study.csv"),
        ("15", "Certainty assessment",
         "GRADE domains the data can speak to; risk of bias and indirectness not assessed",
         "results/summary_of_findings.csv"),
        ("20a", "Characteristics of contributing studies",
         f"{_studies(included['study_id'].nunique())} of the "
         f"{studies['study_id'].nunique()} in Table 2; participants per component: "
         + ", ".join(f"{level_label(str(r.level)).lower()} {r.participants:,.0f}"
                     for r in findings.itertuples() if r.k_studies > 0)
         + "; risk of bias not assessed",
         "results/summary_of_findings.csv; data/table2.csv"),
        ("20b", "Results of syntheses",
         f"{len(pooled_k2)} components pooled (k >= 2), {len(empty)} with no study in "
         "Table 2", "results/pooled_by_component.csv; figures/forest_by_component.png"),
        ("20c", "Investigations of heterogeneity", "test of differences between components",
         "results/component_differences.csv"),
        ("20d", "Sensitivity analyses", "every scenario's pooled estimates",
         "results/sensitivity.csv; figures/sensitivity.png"),
        ("22", "Certainty of evidence",
         "per component: inconsistency, imprecision, publication bias; overall certainty "
         "not rated", "results/summary_of_findings.csv"),
    ]
    return pd.DataFrame(items, columns=["item", "topic", "answer", "where"])


def prisma_markdown(checklist: pd.DataFrame) -> str:
    """The checklist as a Markdown table."""
    lines = ["| Item | Topic | Answer | Where |", "|---|---|---|---|"]
    lines += [f"| {r.item} | {r.topic} | {r.answer} | {r.where} |"
              for r in checklist.itertuples()]
    return "\n".join(lines)

