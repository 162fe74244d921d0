"""Evidence gap map: targeted component x outcome component, pooled where >= 2 studies.

Writes figures/evidence_gap_map.png and .svg.  Run by ``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    cells = ma.pool_cells(effects, "components", "outcome_component",
                          model=SETTINGS.model, rho=SETTINGS.rho, method=SETTINGS.method,
                          row_levels=ma.COMPONENTS,
                          column_levels=[*ma.COMPONENTS, "other"])
    fig = ma.evidence_gap_map(
        cells, title="Evidence gap map: what the interventions target and what their "
                     "outcomes measure",
        note="Other: outcomes outside the four components (e.g. modern sexism, ingroup "
             "esteem). CHE model, CR2 robust CIs.")
    paths = ma.save_figure(fig, ROOT / "figures" / "evidence_gap_map")
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")


if __name__ == "__main__":
    main()
