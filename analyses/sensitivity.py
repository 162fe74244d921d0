"""Sensitivity of the pooled estimates by component to the analysis choices.

Recomputes the effect sizes and pools them by component under every scenario of
the review (rho, range policy, studies left out, model, per-arm n, design); writes
results/sensitivity.csv and figures/sensitivity.{png,svg}.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.sensitivity``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("sensitivity", Path(__file__).resolve().parents[1])
