"""metaally: random-effects meta-analysis of intervention effect sizes.

The public API follows the order a meta-analyst works in (as metafor's
``escalc -> rma -> forest`` chain does)::

    studies = ma.load_studies("data/studies.csv")  # data: validated rows + vocabulary
    effects = ma.compute_effects(studies)      # effect sizes: Hedges' g, vi
    res = ma.random_effects(yi, vi)            # models: univariate random effects
    m = ma.multilevel(yi, vi, study)           # models: CHE working model
    ma.forest_plot(res)                        # plots

Names are imported lazily (PEP 562) so that ``import metaally`` stays fast and
never pulls in matplotlib unless a plot is drawn.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # data
    "load_studies": "metaally.data.reading",
    "StudiesValidationError": "metaally.data.studies",
    "validate_file": "metaally.data.reading",
    # effect sizes
    "compute_effects": "metaally.effects.compute",
    # univariate models
    "random_effects": "metaally.models.univariate",
    "RandomEffectsResult": "metaally.models.univariate",
    # dependent effects
    "multilevel": "metaally.models.multilevel",
    "MultilevelResult": "metaally.models.multilevel",
    "RobustResult": "metaally.models.robust",
    "aggregate": "metaally.models.aggregate",
    # pooling by coding column
    "pool_by": "metaally.models.pooling",
    "pool_groups": "metaally.models.pooling",
    "pool_cells": "metaally.models.pooling",
    "differences_by": "metaally.models.pooling",
    "level_label": "metaally.models.pooling",
    # diagnostics
    "egger_test": "metaally.diagnostics.bias",
    "rank_test": "metaally.diagnostics.bias",
    "trim_and_fill": "metaally.diagnostics.bias",
    "pet_peese": "metaally.diagnostics.bias",
    "leave_one_out": "metaally.diagnostics.influence",
    "influence": "metaally.diagnostics.influence",
    "cumulative": "metaally.diagnostics.influence",
    "sensitivity_analysis": "metaally.diagnostics.sensitivity",
    "default_scenarios": "metaally.diagnostics.sensitivity",
    "AnalysisSettings": "metaally.diagnostics.sensitivity",
    "Scenario": "metaally.diagnostics.sensitivity",
    "sensitivity_markdown": "metaally.diagnostics.sensitivity",
    "scenario_effects": "metaally.diagnostics.sensitivity",
    # scale
    "random_effects_batch": "metaally.models.batch",
    "gosh": "metaally.diagnostics.subsets",
    "GoshResult": "metaally.diagnostics.subsets",
    "permutation_test": "metaally.diagnostics.permutation",
    "PermutationResult": "metaally.diagnostics.permutation",
    # plots
    "forest_plot": "metaally.plots.forest",
    "forest_panels": "metaally.plots.forest",
    "save_figure": "metaally.plots.export",
    "funnel_plot": "metaally.plots.funnel",
    "cumulative_plot": "metaally.plots.cumulative",
    "gosh_plot": "metaally.plots.gosh",
    "sensitivity_plot": "metaally.plots.sensitivity",
    "evidence_gap_map": "metaally.plots.gap_map",
    # reports
    "write_csv": "metaally.report.tables",
    # --- the review as a user of the library (vocabularies, atomic outputs, changes) ---
    "load_vocabulary": "metaally.data.vocabulary",
    "Vocabulary": "metaally.data.vocabulary",
    "atomic_write": "metaally.data.files",
    "markdown_table": "metaally.report.tables",
    "pooled_markdown": "metaally.report.tables",
    "write_changes": "metaally.report.changes",
    "changes_markdown": "metaally.report.changes",
    # network meta-analysis
    "network_meta_analysis": "metaally.models.network",
    "NetworkResult": "metaally.models.network",
    "InconsistencyTest": "metaally.models.network",
    "network_components": "metaally.models.network",
    "arm_contrasts": "metaally.effects.covariance",
    "shared_arm_covariance": "metaally.effects.covariance",
    "Contrasts": "metaally.effects.covariance",
    "network_graph": "metaally.plots.network",
    "league_heatmap": "metaally.plots.network",
    "network_forest": "metaally.plots.network",
    "ranking_plot": "metaally.plots.network",
    # planning: power, studies needed, simulation
    "meta_power": "metaally.models.power",
    "subgroup_power": "metaally.models.power",
    "studies_needed": "metaally.models.power",
    "StudiesNeeded": "metaally.models.power",
    "simulate": "metaally.diagnostics.simulation",
    "SimulationResult": "metaally.diagnostics.simulation",
    # effect sizes from what papers report: metafor's escalc and the converters
    "escalc": "metaally.effects.escalc",
    "MEASURES": "metaally.effects.escalc",
    "mean_sd_from_median": "metaally.effects.converters",
    "se_from_ci": "metaally.effects.converters",
    "cluster_adjust": "metaally.effects.converters",
    # publishable report: forest pages, multi-page export, HTML report, findings
    "forest_pages": "metaally.plots.forest",
    "save_pages": "metaally.plots.export",
    "render_html": "metaally.report.html",
    "write_html": "metaally.report.html",
    "ReportSection": "metaally.report.html",
    "FigureFile": "metaally.report.html",
    "summary_of_findings": "metaally.report.findings",
    "optimal_information_size": "metaally.report.findings",
    "run_report": "metaally.report.pipeline",
    # Bayesian random effects, CHE and model averaging
    "bayes_random_effects": "metaally.models.bayes",
    "BayesResult": "metaally.models.bayes",
    "NormalMixture": "metaally.models.bayes",
    "SMD_TAU_PRIOR": "metaally.models.bayes",
    "SMD_MU_PRIOR": "metaally.models.bayes",
    "bayes_multilevel": "metaally.models.bayes_multilevel",
    "bayes_model_average": "metaally.models.bma",
    "ModelAverageResult": "metaally.models.bma",
    "bayes_prior_sensitivity": "metaally.models.bma",
    "SMD_TAU_PRIORS": "metaally.models.bma",
    "SMD_MU_PRIORS": "metaally.models.bma",
    "bayes_by": "metaally.models.bayes_pooling",
    "bayes_fit": "metaally.models.bayes_pooling",
    "BAYES_COLUMNS": "metaally.models.bayes_pooling",
    "shrinkage_plot": "metaally.plots.shrinkage",
    "shrinkage_panels": "metaally.plots.shrinkage",
    # result protocol (docs/api.md): the fields every fitted model shares
    "FitResult": "metaally.models.protocol",
    "FittedModel": "metaally.models.protocol",
    "ClusteredModel": "metaally.models.protocol",
    # publication bias: selection models and the modified SE for SMDs
    "selection_model": "metaally.diagnostics.selection",
    "SelectionModelResult": "metaally.diagnostics.selection",
    "selection_plot": "metaally.plots.selection",
    "modified_se": "metaally.diagnostics.bias",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'metaally' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
