"""Forest plots: all components in one figure, one figure per component, every effect.

Writes figures/forest_by_component.*, figures/forest_<component>.* and
figures/forest_effects.* (PNG 200 dpi + SVG).
Run by ``make figures``; the step itself is ``metaally.allyship.pipeline.forest_plots``.
"""

from pathlib import Path

from metaally.allyship.pipeline import run

if __name__ == "__main__":
    run("forest_plots", Path(__file__).resolve().parents[1])
