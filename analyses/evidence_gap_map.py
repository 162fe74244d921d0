"""Evidence gap map: targeted component x outcome component, pooled where >= 2 studies.

Writes figures/evidence_gap_map.png and .svg.
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.evidence_gap_map``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("evidence_gap_map", Path(__file__).resolve().parents[1])
