"""The allyship review (Table 2): its data, vocabulary, groupings and analysis choices.

Everything here is specific to this one review and built from the general library:
the packaged copy of ``data/table2.csv`` and of the vocabulary declared beside it
(``vocabulary.csv``: the four components of allyship, the techniques, what the outcomes
measure, with their display labels), the tables the review reports (pooled by targeted
component and by Table 2 group) and its sensitivity scenarios (the one-at-a-time grid of
``default_scenarios`` plus leaving out the active-comparator studies, the preprint and
Bonam et al. (2019, ref 73), the largest single-study contribution).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from metaally.data.reading import load_studies
from metaally.data.studies import VocabularyArg
from metaally.data.vocabulary import Vocabulary, load_vocabulary
from metaally.diagnostics.sensitivity import AnalysisSettings, Scenario, default_scenarios
from metaally.models.pooling import (
    DifferencesResult,
    check_effects,
    coding_cells,
    coding_levels,
    differences_by,
    level_mask,
    pool_by,
)

__all__ = [
    "PACKAGED_VOCABULARY", "COMPONENTS", "TECHNIQUES", "OUTCOME_COMPONENTS", "LABELS",
    "load_table2", "table2_scenarios", "pool_by_component",
    "component_differences", "table2_analyses", "MIN_STUDIES",
]


def _packaged(name: str) -> Path:
    return Path(str(resources.files("metaally").joinpath("allyship", name)))


#: the vocabulary declared beside the packaged Table 2 (a copy of ``data/vocabulary.csv``)
PACKAGED_VOCABULARY: Vocabulary = load_vocabulary(_packaged("vocabulary.csv"))
COMPONENTS: tuple[str, ...] = PACKAGED_VOCABULARY.levels("components")
TECHNIQUES: tuple[str, ...] = PACKAGED_VOCABULARY.levels("technique")
OUTCOME_COMPONENTS: tuple[str, ...] = PACKAGED_VOCABULARY.levels("outcome_component")
LABELS: dict[str, str] = PACKAGED_VOCABULARY.labels()
#: per-component small-study and influence analyses need at least this many studies
MIN_STUDIES = 3


def load_table2(vocabulary: VocabularyArg = None) -> pd.DataFrame:
    """Load the packaged copy of ``data/table2.csv`` (Table 2 of the review), checked
    against the vocabulary beside it (or ``vocabulary``)."""
    return load_studies(_packaged("table2.csv"), vocabulary)


#: the study left out on its own in the sensitivity analyses (Table 2's ref 73)
LARGEST_REF = 73


@cache
def _citation(ref: int) -> str:
    """"Author et al. (year)" of Table 2's reference number ``ref`` (from the data)."""
    from metaally.plots.forest import study_label

    rows = load_table2()
    rows = rows[rows["ref"] == ref]
    if rows.empty:
        raise ValueError(f"ref: no study with ref {ref} in Table 2")
    return study_label(rows["citation"].iloc[0], rows["year"].iloc[0])


def table2_scenarios(base: AnalysisSettings | None = None) -> list[Scenario]:
    """The review's sensitivity scenarios: ``default_scenarios(base)`` plus three
    leave-outs: the active-comparator studies, the preprint, and ref 73 (named by its
    authors, "without Bonam et al. (2019)": the study with the largest effects)."""
    return default_scenarios(base, leave_out=[
        Scenario("without active comparators", "", leave_out=("comparator", "active")),
        Scenario("without the preprint", "", leave_out=("peer_reviewed", False)),
        Scenario(f"without {_citation(LARGEST_REF)}", "", leave_out=("ref", LARGEST_REF)),
    ])


def pool_by_component(
    effects: pd.DataFrame,
    model: str = "che",
    rho: float = 0.6,
    method: str = "REML",
    components: tuple[str, ...] | list[str] = COMPONENTS,
) -> pd.DataFrame:
    """The review's pooled table: one row per targeted component, per Table 2 group, and
    overall.

    ``components`` fixes the components and their order (the declared vocabulary's);
    ``table_group`` gives Table 2's group labels in the order of the data file's rows when
    ``source_line`` is present, with rows whose group is blank (studies added after the
    review) as the group "ungrouped".  ``grouping`` is "component", "table_group" or
    "overall"; the level is in ``component``.
    """
    check_effects(effects, ["components", "table_group"])
    groups = effects["table_group"]
    if "source_line" in effects:  # Table 2's order: the order of the rows in the data file
        groups = groups.iloc[np.argsort(effects["source_line"].to_numpy(), kind="stable")]
    fit = {"model": model, "rho": rho, "method": method}
    table = pd.concat(
        [
            pool_by(effects, "components", levels=list(components), overall=False, **fit),
            pool_by(effects, "table_group", levels=coding_levels(groups), **fit),
        ],
        ignore_index=True,
    )
    table["grouping"] = table["grouping"].replace({"components": "component"})
    return table.rename(columns={"level": "component"})


def component_differences(
    effects: pd.DataFrame, rho: float = 0.6, method: str = "REML",
    components: tuple[str, ...] | list[str] = COMPONENTS,
) -> DifferencesResult:
    """``differences_by`` over the targeted components (``components`` column)."""
    return differences_by(effects, "components", rho, method, levels=list(components))


def table2_analyses(
    effects: pd.DataFrame, components: tuple[str, ...] | list[str] = COMPONENTS,
    min_studies: int = MIN_STUDIES,
) -> dict[str, pd.DataFrame]:
    """The included effects, overall and per targeted component with at least
    ``min_studies`` studies (default ``MIN_STUDIES``: the analyses of the small-study and
    influence tables; 0 keeps every component).  A study belongs to each component its
    ``components`` cell names (``coding_cells``/``level_mask``, as ``pool_by`` decides)."""
    included = effects[effects["included"].astype(bool)]
    cells = coding_cells(included["components"])
    subsets = {"overall": included}
    for component in components:
        rows = included[level_mask(cells, component)]
        if rows["study_id"].nunique() >= min_studies:
            subsets[component] = rows
    return subsets
