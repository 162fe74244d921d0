"""Which techniques work, on which outcomes: pool by technique and by outcome component,
and test whether the techniques differ.

Writes results/pooled_by_technique.csv, results/pooled_by_outcome_component.csv and
results/technique_differences.csv.  Run by ``make figures``; uses only the public API.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    fit = {"model": SETTINGS.model, "rho": SETTINGS.rho, "method": SETTINGS.method}
    tables = {
        "pooled_by_technique": ma.pool_by(effects, "technique", levels=ma.TECHNIQUES, **fit),
        "pooled_by_outcome_component": ma.pool_by(effects, "outcome_component",
                                                  levels=ma.OUTCOME_COMPONENTS, **fit),
        "technique_differences": ma.differences_by(
            effects, "technique", rho=SETTINGS.rho, method=SETTINGS.method,
            levels=ma.TECHNIQUES).to_frame(),
    }
    for name, table in tables.items():
        path = ma.write_csv(table, ROOT / "results" / f"{name}.csv")
        print(f"wrote {path.relative_to(ROOT)} ({len(table)} rows)")


if __name__ == "__main__":
    main()
