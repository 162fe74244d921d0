"""Pool results/effects.csv by targeted component and Table 2 group; test differences.

Writes results/pooled_by_component.csv and results/component_differences.csv.
Run by ``make figures``; uses only the public API.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    pooled = ma.pool_by_component(effects, model=SETTINGS.model, rho=SETTINGS.rho,
                                  method=SETTINGS.method)
    differences = ma.component_differences(effects, rho=SETTINGS.rho, method=SETTINGS.method)
    for name, table in [("pooled_by_component", pooled),
                        ("component_differences", differences.to_frame())]:
        path = ma.write_csv(table, ROOT / "results" / f"{name}.csv")
        print(f"wrote {path.relative_to(ROOT)} ({len(table)} rows)")


if __name__ == "__main__":
    main()
