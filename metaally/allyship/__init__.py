"""The allyship review (Table 2) as a user of the general library.

``review``: its packaged data and vocabulary, its pooled tables and sensitivity scenarios;
``report``: the prose of ``results/summary.md``; ``pipeline``: the steps ``make figures``
runs (one per ``analyses/`` script).  Nothing else in ``metaally`` imports this package.
"""

from metaally.allyship.report import (
    methods_paragraph,
    small_study_section,
    summary_markdown,
    what_works_section,
    write_summary,
)
from metaally.allyship.review import (
    COMPONENTS,
    LABELS,
    OUTCOME_COMPONENTS,
    TECHNIQUES,
    component_differences,
    load_table2,
    pool_by_component,
    table2_analyses,
    table2_scenarios,
)

__all__ = [
    "COMPONENTS", "LABELS", "OUTCOME_COMPONENTS", "TECHNIQUES", "component_differences",
    "load_table2", "methods_paragraph", "pool_by_component", "small_study_section",
    "summary_markdown", "table2_analyses", "table2_scenarios", "what_works_section",
    "write_summary",
]
