"""The review's ``make figures`` pipeline: one function per ``analyses/`` script.

Each step reads what earlier steps wrote (``results/effects.csv`` first), fits with the
general library under the review's ``AnalysisSettings`` and writes its tables and
figures atomically.  The words the review codes with come from ``data/vocabulary.csv``
beside ``data/table2.csv`` (``Review.vocabulary``), so a component or technique declared
there appears in every table and figure without a code change.  The last step,
``changes``, writes ``results/changes.md``: what this run changed against the previous
(committed) results.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from metaally.allyship.bayes_text import bayes_facts, bayes_sensitivity_table, bayes_sentences
from metaally.allyship.methods import methods_markdown
from metaally.allyship.network_text import network_section
from metaally.allyship.planning_text import planning_section
from metaally.allyship.publication_bias_text import publication_bias_markdown
from metaally.allyship.report import small_study_section, what_works_section, write_summary
from metaally.allyship.review import (
    component_differences,
    pool_by_component,
    table2_analyses,
    table2_scenarios,
)
from metaally.data.reading import load_studies
from metaally.data.studies import resolve_vocabulary
from metaally.data.vocabulary import Vocabulary
from metaally.diagnostics.bias import egger_test, pet_peese, rank_test, trim_and_fill
from metaally.diagnostics.influence import cumulative, leave_one_out
from metaally.diagnostics.sensitivity import (
    AnalysisSettings,
    sensitivity_analysis,
    sensitivity_markdown,
)
from metaally.effects.compute import compute_effects
from metaally.models.aggregate import aggregate
from metaally.models.multilevel import multilevel
from metaally.models.pooling import (
    NOTE_SMALL_DF,
    DifferencesResult,
    differences_by,
    pool_by,
    pool_cells,
)
from metaally.models.printing import fmt_count
from metaally.models.univariate import random_effects
from metaally.report.changes import (
    changes_markdown,
    previous_source,
    previous_table,
    save_previous,
    write_changes,
)
from metaally.report.tables import write_csv

__all__ = ["Review", "STEPS", "run", "SMALL_STUDY_COLUMNS", "LEAVE_ONE_OUT_COLUMNS",
           "small_study_rows", "leave_one_out_rows", "summary_sections", "effect_labels",
           "differences_frame"]

#: how results/effects.csv writes floats (six decimals, as it always has)
EFFECTS_FORMAT = "%.6f"
LIMIT = "limit estimate (se -> 0)"
SMALL_STUDY_COLUMNS = ["analysis", "model", "test", "k_studies", "k_effects", "stat", "df",
                       "pvalue", "quantity", "estimate", "ci_low", "ci_high", "k0", "side",
                       "note", "chosen"]
LEAVE_ONE_OUT_COLUMNS = ["analysis", "omitted", "citation", "k_studies", "k_effects",
                         "estimate", "se", "ci_low", "ci_high", "df", "pvalue", "sigma2_study",
                         "sigma2_within", "i2", "change", "note"]
#: results tables compared by results/changes.md: pooled tables (-> level column), tests
POOLED_TABLES = {"pooled_by_component.csv": "component", "pooled_by_technique.csv": "level",
                 "pooled_by_outcome_component.csv": "level"}
TEST_TABLES = {"component_differences.csv": "components",
               "technique_differences.csv": "techniques"}


@dataclass(frozen=True)
class Review:
    """Where the review's files are and the choices it is analysed with."""

    root: Path
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)

    @property
    def studies_csv(self) -> Path:
        return self.root / "data" / "table2.csv"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """The words declared beside the studies CSV (``data/vocabulary.csv``)."""
        return resolve_vocabulary(self.studies_csv)

    @property
    def components(self) -> list[str]:
        return list(self.vocabulary.levels("components"))

    @property
    def techniques(self) -> list[str]:
        return list(self.vocabulary.levels("technique"))

    @property
    def outcome_components(self) -> list[str]:
        return list(self.vocabulary.levels("outcome_component"))

    @property
    def labels(self) -> dict[str, str]:
        return self.vocabulary.labels()

    @property
    def fit(self) -> dict:
        """The pooling options of ``pool_by`` / ``pool_groups``."""
        return {"model": self.settings.model, "rho": self.settings.rho,
                "method": self.settings.method}

    def effects(self) -> pd.DataFrame:
        return pd.read_csv(self.results / "effects.csv")

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_csv(self.results / name)

    def write(self, frame: pd.DataFrame, name: str, **kwargs) -> None:
        path = write_csv(frame, self.results / name, **kwargs)
        print(f"wrote {path.relative_to(self.root)} ({len(frame)} rows)")

    def save(self, fig, stem: str) -> None:
        from metaally.plots.export import save_figure

        paths = save_figure(fig, self.figures / stem)
        print(f"wrote {', '.join(str(p.relative_to(self.root)) for p in paths)}")

    def save_pages(self, figures, stem: str) -> None:
        """A figure of several pages: ``<stem>-1.png`` … and one ``<stem>.pdf``."""
        from metaally.plots.export import save_pages

        paths = save_pages(figures, self.figures / stem)
        print(f"wrote {', '.join(str(p.relative_to(self.root)) for p in paths)}")


# --- steps ----------------------------------------------------------------------------------


def effects_table(review: Review) -> None:
    """results/effects.csv: one row per effect size of data/table2.csv, sorted."""
    save_previous(review.results, ["effects.csv", *POOLED_TABLES, *TEST_TABLES])
    studies = load_studies(review.studies_csv, review.vocabulary)
    s = review.settings
    effects = compute_effects(studies, range_policy=s.range_policy, arms_policy=s.arms_policy,
                              design_policy=s.design_policy, prepost_r=s.prepost_r)
    effects = effects.sort_values(["study_id", "es_id"], kind="stable")
    review.write(effects, "effects.csv", float_format=EFFECTS_FORMAT)


def pool_by_components(review: Review) -> None:
    """results/pooled_by_component.csv and results/component_differences.csv."""
    effects = review.effects()
    review.write(pool_by_component(effects, components=review.components, **review.fit),
                 "pooled_by_component.csv")
    review.write(differences_frame(
        lambda: component_differences(effects, rho=review.settings.rho,
                                      method=review.settings.method,
                                      components=review.components)),
                 "component_differences.csv")


def pool_by_techniques(review: Review) -> None:
    """Pooled by technique and by outcome component; the test of technique differences."""
    effects = review.effects()
    review.write(pool_by(effects, "technique", levels=review.techniques, **review.fit),
                 "pooled_by_technique.csv")
    review.write(pool_by(effects, "outcome_component", levels=review.outcome_components,
                         **review.fit), "pooled_by_outcome_component.csv")
    review.write(differences_frame(
        lambda: differences_by(effects, "technique", rho=review.settings.rho,
                               method=review.settings.method, levels=review.techniques)),
                 "technique_differences.csv")


def differences_frame(test: Callable[[], DifferencesResult]) -> pd.DataFrame:
    """``test().to_frame()``, or — when fewer than two levels have two or more studies —
    a single test row with ``inference`` "none" saying so."""
    from metaally.models.pooling import DIFFERENCES_COLUMNS

    try:
        return test().to_frame()
    except ValueError as exc:
        if "fewer than two levels" not in str(exc):
            raise
        return pd.DataFrame([{"row_type": "test", "level": "all equal (not tested)",
                              "note": "fewer than two levels with two or more studies: "
                                      "nothing to compare", "inference": "none"}],
                            columns=DIFFERENCES_COLUMNS)


def forest_plots(review: Review) -> None:
    """Forest plots: all components in one figure, one per component, every effect."""
    from metaally.models.pooling import pool_groups
    from metaally.plots.forest import forest_panels, forest_plot

    effects = review.effects()
    groups = pool_groups(effects, "components", levels=review.components,
                         labels=review.labels, **review.fit)
    review.save(forest_panels(groups), "forest_by_component")
    for group in groups:
        review.save(forest_plot(group, title=group.label), f"forest_{group.level}")
    included = effects[effects["included"]].assign(label=effect_labels)
    overall = pool_groups(effects, None, **review.fit)[0]
    fig = forest_plot(included, group="study_id", label="label", pooled=overall, width=9.0,
                      title=f"Every effect size, grouped by study (k = {len(included)})")
    review.save(fig, "forest_effects")


def effect_labels(effects: pd.DataFrame) -> pd.Series:
    """Outcome (in full: the forest plot wraps it, never truncates) and the reported value;
    the technique too where the same outcome and value occur twice in a study (e.g. two
    arms of ref 161)."""
    metric = effects["metric"].replace({"f2": "f²"})
    tag = metric + " = " + effects["value_used"].map("{:g}".format)
    twins = effects.duplicated(["study_id", "outcome", "value_used"], keep=False)
    technique = effects["technique"].str.replace(";", " + ").str.replace("_", " ")
    tag = tag.where(~twins, technique + "; " + tag)
    return effects["outcome"].astype(str).str.strip() + " (" + tag + ")"


#: rows per page of a stacked forest plot (``forest_pages``): about an A4 page at 300 dpi
PAGE_ROWS = 45


def forest_by_technique(review: Review) -> None:
    """One forest panel per technique (studies, pooled diamond, PI), split over numbered
    pages of at most ``PAGE_ROWS`` rows that share one x axis."""
    from metaally.models.pooling import pool_groups
    from metaally.plots.forest import forest_pages

    groups = pool_groups(review.effects(), "technique", levels=review.techniques,
                         labels=review.labels, **review.fit)
    review.save_pages(forest_pages(groups, max_rows=PAGE_ROWS), "forest_by_technique")


def funnel(review: Review) -> None:
    """Funnel plot of every included effect around the overall pooled estimate."""
    from metaally.models.pooling import pool_groups
    from metaally.plots.funnel import funnel_plot

    effects = review.effects()
    overall = pool_groups(effects, None, **review.fit)[0]
    fig = funnel_plot(effects[effects["included"]], center=overall.estimate,
                      title=f"Funnel plot ({overall.k_effects} effects, "
                            f"{overall.k_studies} studies)")
    review.save(fig, "funnel")


def evidence_gap_map(review: Review) -> None:
    """Targeted component x outcome component, pooled where >= 2 studies."""
    from metaally.plots.gap_map import evidence_gap_map as draw

    cells = pool_cells(review.effects(), "components", "outcome_component",
                       row_levels=review.components, column_levels=review.outcome_components,
                       **review.fit)
    fig = draw(cells, labels=review.labels,
               title="Evidence gap map: what the interventions target and what their "
                     "outcomes measure",
               note="Other: outcomes outside the four components (e.g. modern sexism, ingroup "
                    "esteem). CHE model, CR2 robust CIs.")
    review.save(fig, "evidence_gap_map")


def sensitivity(review: Review) -> None:
    """results/sensitivity.csv and figures/sensitivity.*: every scenario, every component."""
    from metaally.plots.sensitivity import sensitivity_plot

    studies = load_studies(review.studies_csv, review.vocabulary)
    table = sensitivity_analysis(studies, table2_scenarios(review.settings),
                                 base=review.settings, levels=review.components)
    review.write(table, "sensitivity.csv")
    review.save(sensitivity_plot(table, labels=review.labels), "sensitivity")


def small_study(review: Review) -> None:
    """results/small_study.csv and figures/funnel_trimfill.* (all studies, aggregated)."""
    from metaally.plots.funnel import funnel_plot

    effects = review.effects()
    subsets = table2_analyses(effects, review.components)
    table = pd.DataFrame([row for name, data in subsets.items()
                          for row in small_study_rows(name, data, review.settings)])
    review.write(table.reindex(columns=SMALL_STUDY_COLUMNS).astype({"k0": "Int64"}),
                 "small_study.csv")
    overall = subsets["overall"]
    composite = aggregate(overall["yi"], overall["vi"], overall["study_id"],
                          rho=review.settings.rho)
    filled = trim_and_fill(composite["yi"], composite["vi"], method=review.settings.method)
    fig = funnel_plot(filled, center_label="random-effects estimate",
                      title=f"Funnel plot: {filled.k} studies, one composite effect each, "
                            "with trim-and-fill (L0)")
    review.save(fig, "funnel_trimfill")


def power_note(k: int) -> str:
    """Every small-study test's caveat (Sterne et al. 2011, *BMJ* 343:d4002)."""
    if k < 10:
        return (f"{fmt_count(k, 'study')}: fewer than the 10 Sterne et al. (2011) recommend as "
                "a minimum; almost no power")
    return f"{k} studies: little power (Sterne et al. 2011 recommend at least 10)"


def small_study_rows(name: str, data: pd.DataFrame, settings: AnalysisSettings) -> list[dict]:
    """Egger's sandwich on every effect (Rodgers & Pustejovsky 2021: CHE model with the
    effect's SE as moderator, CR2 t test), and on ``aggregate`` composites the
    random-effects estimate, Egger's test, the rank test, trim-and-fill (L0) and PET-PEESE
    (``chosen`` flags the one PET-PEESE picks)."""
    k_studies, k_effects = data["study_id"].nunique(), len(data)
    base = {"analysis": name, "k_studies": k_studies, "k_effects": k_effects}
    low_power = power_note(k_studies)
    sandwich = egger_test(data["yi"], data["vi"], study=data["study_id"], rho=settings.rho)
    composite = aggregate(data["yi"], data["vi"], data["study_id"], rho=settings.rho)
    yi, vi = composite["yi"], composite["vi"]
    plain = random_effects(yi, vi, method=settings.method)
    egger, rank = egger_test(yi, vi), rank_test(yi, vi)
    filled = trim_and_fill(yi, vi, estimator="L0", method=settings.method)
    pet = pet_peese(yi, vi)
    small_df = "; robust test unreliable (Satterthwaite df < 4)" if sandwich.df < 4 else ""
    rows = [
        {**base, "model": "che", "test": "egger_sandwich", "stat": sandwich.stat,
         "df": sandwich.df, "pvalue": sandwich.pvalue, "quantity": LIMIT,
         "estimate": sandwich.limit_estimate, "ci_low": sandwich.limit_ci_low,
         "ci_high": sandwich.limit_ci_high, "note": low_power + small_df},
        {**base, "model": "aggregate", "test": "random_effects", "stat": plain.stat,
         "pvalue": plain.pvalue, "quantity": "estimate", "estimate": plain.estimate,
         "ci_low": plain.ci_low, "ci_high": plain.ci_high,
         "note": "the estimate trim-and-fill and PET-PEESE start from (z test)"},
        {**base, "model": "aggregate", "test": "egger", "stat": egger.stat,
         "pvalue": egger.pvalue, "quantity": LIMIT, "estimate": egger.limit_estimate,
         "ci_low": egger.limit_ci_low, "ci_high": egger.limit_ci_high, "note": low_power},
        {**base, "model": "aggregate", "test": "rank", "stat": rank.tau,
         "pvalue": rank.pvalue, "note": low_power},
        {**base, "model": "aggregate", "test": "trim_and_fill", "quantity": "adjusted estimate",
         "estimate": filled.estimate, "ci_low": filled.ci_low, "ci_high": filled.ci_high,
         "k0": filled.k0, "side": filled.side,
         "note": f"{fmt_count(filled.k0, 'study')} imputed on the "
                 f"{filled.side}; " + low_power},
    ]
    for model in ("PET", "PEESE"):
        prefix = model.lower()
        chosen = pet.chosen == model
        rows.append({
            **base, "model": "aggregate", "test": prefix,
            **{c: getattr(pet, f"{prefix}_{c}") for c in ("stat", "pvalue")}, "df": pet.df,
            "quantity": LIMIT,
            **{c: getattr(pet, f"{prefix}_{c}") for c in ("estimate", "ci_low", "ci_high")},
            "note": low_power + ("; chosen by PET-PEESE" if chosen else ""), "chosen": chosen,
        })
    return rows


def influence(review: Review) -> None:
    """results/leave_one_out.csv (every study left out in turn, per analysis of
    ``table2_analyses``) and figures/cumulative.* (by publication year)."""
    from metaally.plots.cumulative import cumulative_plot

    effects = review.effects()
    subsets = table2_analyses(effects, review.components)
    table = pd.DataFrame([row for name, data in subsets.items()
                          for row in leave_one_out_rows(name, data, review.settings)],
                         columns=LEAVE_ONE_OUT_COLUMNS)
    review.write(table, "leave_one_out.csv")
    included = subsets["overall"]
    fit = multilevel(included["yi"], included["vi"], included["citation"],
                     es_id=included["es_id"], rho=review.settings.rho,
                     method=review.settings.method)
    with warnings.catch_warnings():  # the first step has one study: sigma2_study is fixed at 0
        warnings.filterwarnings("ignore", message="Single-level factor")
        steps = cumulative(fit, order=included["year"].to_numpy())
    fig = cumulative_plot(steps, title="Cumulative meta-analysis by publication year",
                          xlabel="Hedges' g (CHE model, model-based 95% CI)")
    review.save(fig, "cumulative")


def leave_one_out_rows(name: str, data: pd.DataFrame, settings: AnalysisSettings) -> list[dict]:
    """The pooled estimate of ``data`` (CHE, CR2 robust) with no study, then with each study,
    left out — all of its effects with it: the library refits the same robust model
    (``leave_one_out`` of the ``multilevel(...).robust()`` result)."""
    if settings.model != "che":
        raise ValueError("leave-one-study-out of the review uses the CHE model (model='che')")
    full = multilevel(data["yi"], data["vi"], data["study_id"], es_id=data["es_id"],
                      rho=settings.rho, method=settings.method).robust(adjust="CR2")
    citations = data.drop_duplicates("study_id").set_index("study_id")["citation"]
    fields = ["estimate", "se", "ci_low", "ci_high", "df", "pvalue", "sigma2_study",
              "sigma2_within", "i2"]
    rows = [{"analysis": name, "omitted": "(none)", "citation": "",
             "k_studies": full.n_clusters, "k_effects": full.k,
             **{c: getattr(full, c) for c in fields}}]
    for fit in leave_one_out(full).itertuples(index=False):
        rows.append({"analysis": name, "omitted": fit.omitted,
                     "citation": citations[fit.omitted], "k_studies": fit.n_clusters,
                     "k_effects": fit.k, **{c: getattr(fit, c) for c in fields}})
    for row in rows:
        row["change"] = row["estimate"] - full.estimate
        row["note"] = NOTE_SMALL_DF if row["df"] < 4 else ""
    return rows


def summary_sections(review: Review) -> list[str]:
    """The sections of summary.md after the component tables, from the results tables:
    the Bayesian few-study answer, what works best (by technique and as a network),
    sensitivity, small-study effects, publication bias, planning the next studies, and
    the methods with the PRISMA 2020 synthesis items."""
    t = review.table
    studies = load_studies(review.studies_csv)
    effects = review.effects()
    findings = t("summary_of_findings.csv")
    bayes = t("bayes_by_component.csv")
    bayes_sens = t("bayes_prior_sensitivity.csv")
    return [
        "\n".join(["## Few studies: what the data say (Bayesian)", "",
                    bayes_sentences(bayes_facts(bayes, bayes_sens)), "",
                    "Prior sensitivity (the default prior first):", "",
                    bayes_sensitivity_table(bayes_sens)]),
        what_works_section(t("pooled_by_technique.csv"), t("pooled_by_outcome_component.csv"),
                           t("technique_differences.csv"), labels=review.labels),
        network_section(studies, effects, review.settings.rho),
        sensitivity_markdown(t("sensitivity.csv"), labels=review.labels),
        small_study_section(t("small_study.csv"), t("leave_one_out.csv"), effects,
                            labels=review.labels),
        publication_bias_markdown(t("publication_bias.csv")),
        planning_section(t("studies_needed.csv"), t("coverage_small_k.csv"),
                         labels=review.labels),
        methods_markdown(
            studies, effects, t("pooled_by_component.csv"),
            findings[findings["grouping"] != "overall"], review.settings,
            {"technique": t("pooled_by_technique.csv"),
             "outcome component": t("pooled_by_outcome_component.csv")}),
    ]


def summary(review: Review) -> None:
    """results/summary.md from the results tables and the settings used."""
    t = review.table
    path = write_summary(
        review.results / "summary.md",
        pooled=t("pooled_by_component.csv"), differences=t("component_differences.csv"),
        effects=review.effects(), settings=review.settings, labels=review.labels,
        extra_sections=summary_sections(review),
    )
    print(f"wrote {path.relative_to(review.root)}")


def changes(review: Review) -> None:
    """results/changes.md: this run's results against the previous (committed) ones."""
    names = ["effects.csv", *POOLED_TABLES, *TEST_TABLES]
    before = {name: previous_table(review.results, name) for name in names}
    after = {name: review.table(name) for name in names}
    text = changes_markdown(before, after, previous_source(review.results, "effects.csv"),
                            pooled=POOLED_TABLES, tests=TEST_TABLES, labels=review.labels)
    path = write_changes(review.results / "changes.md", text)
    print(f"wrote {path.relative_to(review.root)}")


STEPS: dict[str, Callable[[Review], None]] = {
    "effects_table": effects_table,
    "pool_by_component": pool_by_components,
    "pool_by_technique": pool_by_techniques,
    "forest_plots": forest_plots,
    "forest_by_technique": forest_by_technique,
    "funnel_plot": funnel,
    "evidence_gap_map": evidence_gap_map,
    "sensitivity": sensitivity,
    "small_study": small_study,
    "influence": influence,
    "summary_report": summary,
    "changes": changes,
}


def run(step: str, root: str | Path) -> None:
    """Run one step (the name of its ``analyses/`` script) for the project at ``root``."""
    STEPS[step](Review(Path(root)))
