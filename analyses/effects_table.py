"""Write results/effects.csv: one row per effect size of data/table2.csv.

Sorted and written with a fixed float format, so adding a study shows up as a clean diff.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.effects_table``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("effects_table", Path(__file__).resolve().parents[1])
