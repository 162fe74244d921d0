"""Small-study effects: Egger's sandwich on every effect, and the classic tests on one
composite effect per study (overall and per component with >= 3 studies).

Writes results/small_study.csv and figures/funnel_trimfill.{png,svg}.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.small_study``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("small_study", Path(__file__).resolve().parents[1])
