"""Pool results/effects.csv by targeted component and Table 2 group; test differences.

Writes results/pooled_by_component.csv and results/component_differences.csv.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.pool_by_components``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("pool_by_component", Path(__file__).resolve().parents[1])
