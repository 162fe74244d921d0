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
    "load_studies": "metaally.studies",
    "load_table2": "metaally.studies",
    "StudiesValidationError": "metaally.studies",
    "validate_file": "metaally.studies",
    # effect sizes
    "compute_effects": "metaally.effects",
    # univariate models
    "random_effects": "metaally.univariate",
    "RandomEffectsResult": "metaally.univariate",
    # dependent effects
    "multilevel": "metaally.che",
    "MultilevelResult": "metaally.che",
    "RobustResult": "metaally.robust",
    "aggregate": "metaally.composite",
    # pooling by coding column
    "pool_by": "metaally.pooling",
    "pool_by_component": "metaally.pooling",
    "pool_groups": "metaally.pooling",
    "pool_cells": "metaally.pooling",
    "differences_by": "metaally.pooling",
    "component_differences": "metaally.pooling",
    "level_label": "metaally.pooling",
    "COMPONENTS": "metaally.studies",
    "TECHNIQUES": "metaally.studies",
    "OUTCOME_COMPONENTS": "metaally.studies",
    # diagnostics
    "egger_test": "metaally.bias",
    "rank_test": "metaally.bias",
    "trim_and_fill": "metaally.bias",
    "pet_peese": "metaally.bias",
    "leave_one_out": "metaally.diagnostics",
    "influence": "metaally.diagnostics",
    "cumulative": "metaally.diagnostics",
    "sensitivity_analysis": "metaally.sensitivity",
    "default_scenarios": "metaally.sensitivity",
    "Scenario": "metaally.sensitivity",
    "sensitivity_markdown": "metaally.sensitivity",
    "scenario_effects": "metaally.sensitivity",
    # scale
    "random_effects_batch": "metaally.batch",
    "gosh": "metaally.subsets",
    "GoshResult": "metaally.subsets",
    "permutation_test": "metaally.permutation",
    "PermutationResult": "metaally.permutation",
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
    "AnalysisSettings": "metaally.report",
    "write_csv": "metaally.report",
    "write_summary": "metaally.report",
    "what_works_section": "metaally.report",
    "small_study_section": "metaally.report",
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
