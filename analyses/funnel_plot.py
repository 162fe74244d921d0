"""Funnel plot of every included effect size around the overall pooled estimate.

Writes figures/funnel.png and figures/funnel.svg.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.funnel``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("funnel_plot", Path(__file__).resolve().parents[1])
