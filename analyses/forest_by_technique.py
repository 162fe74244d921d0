"""Forest plot with one panel per intervention technique (studies, pooled diamond, PI).

Writes figures/forest_by_technique.png and .svg.  Run by ``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    groups = ma.pool_groups(effects, "technique", model=SETTINGS.model, rho=SETTINGS.rho,
                            method=SETTINGS.method, levels=ma.TECHNIQUES)
    paths = ma.save_figure(ma.forest_panels(groups), ROOT / "figures" / "forest_by_technique")
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")


if __name__ == "__main__":
    main()
