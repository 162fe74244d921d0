"""metaally: random-effects meta-analysis of intervention effect sizes.

The public API follows the order a meta-analyst works in (as metafor's
``escalc -> rma -> forest`` chain does)::

    studies = ma.load_table2()                 # data: validated Table 2 rows
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
    "load_studies": "metaally.data.studies",
    "load_table2": "metaally.data.studies",
    "StudiesValidationError": "metaally.data.studies",
    "validate_file": "metaally.data.studies",
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
    "pool_by_component": "metaally.models.pooling",
    "pool_groups": "metaally.models.pooling",
    "pool_cells": "metaally.models.pooling",
    "differences_by": "metaally.models.pooling",
    "component_differences": "metaally.models.pooling",
    "level_label": "metaally.models.pooling",
    "COMPONENTS": "metaally.data.studies",
    "TECHNIQUES": "metaally.data.studies",
    "OUTCOME_COMPONENTS": "metaally.data.studies",
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
    "AnalysisSettings": "metaally.report.summary",
    "write_csv": "metaally.report.summary",
    "write_summary": "metaally.report.summary",
    "what_works_section": "metaally.report.summary",
    "small_study_section": "metaally.report.summary",
    # publication bias: selection models and the modified SE for SMDs (issue 19)
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
