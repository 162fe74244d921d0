"""Write results/changes.md: what this run changed against the committed results.

Studies and effects added or removed, each pooled estimate before -> after, and the
conclusions that flipped (git HEAD in a checkout, else the previous run's copy).
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.changes``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("changes", Path(__file__).resolve().parents[1])
