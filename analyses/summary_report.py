"""Write results/summary.md from the results tables and the settings used.

Runs after pool_by_component.py, pool_by_technique.py, sensitivity.py, small_study.py
and influence.py.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.summary``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("summary_report", Path(__file__).resolve().parents[1])
