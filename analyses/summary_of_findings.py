"""Summary of findings (GRADE style) per targeted component and overall.

Writes results/summary_of_findings.csv: k studies and participants (Table 2's study n),
pooled g with CI and PI, leave-one-out fragility, and the certainty domains the data can
speak to (rules in ``metaally.report.findings``).  Run by ``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
# the words declared beside the data (data/vocabulary.csv), not the packaged copy's
VOCABULARY = ma.load_vocabulary(ROOT / "data" / "vocabulary.csv")
COMPONENTS = VOCABULARY.levels("components")
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    studies = ma.load_studies(ROOT / "data" / "table2.csv")
    table = ma.summary_of_findings(effects, "components", levels=COMPONENTS,
                                   model=SETTINGS.model, rho=SETTINGS.rho,
                                   method=SETTINGS.method, participants=studies)
    path = ma.write_csv(table, ROOT / "results" / "summary_of_findings.csv")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
