"""Does one study drive the results?  Leave-one-out and cumulative meta-analysis.

Writes results/leave_one_out.csv (analyses as in small_study.py) and
figures/cumulative.{png,svg}.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.influence``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("influence", Path(__file__).resolve().parents[1])
