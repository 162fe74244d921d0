"""Which techniques work, on which outcomes: pool by technique and by outcome component,
and test whether the techniques differ.

Writes results/pooled_by_technique.csv, results/pooled_by_outcome_component.csv and
results/technique_differences.csv.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.pool_by_techniques``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("pool_by_technique", Path(__file__).resolve().parents[1])
