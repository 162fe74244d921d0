"""Write results/summary.md from the results tables and the settings used.

Run by ``make figures`` after pool_by_component.py, pool_by_technique.py,
sensitivity.py, small_study.py and influence.py; uses only the public API.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def main() -> None:
    path = ma.write_summary(
        RESULTS / "summary.md",
        pooled=pd.read_csv(RESULTS / "pooled_by_component.csv"),
        differences=pd.read_csv(RESULTS / "component_differences.csv"),
        effects=pd.read_csv(RESULTS / "effects.csv"),
        settings=ma.AnalysisSettings(),
        extra_sections=[
            ma.what_works_section(pd.read_csv(RESULTS / "pooled_by_technique.csv"),
                                  pd.read_csv(RESULTS / "pooled_by_outcome_component.csv"),
                                  pd.read_csv(RESULTS / "technique_differences.csv")),
            ma.sensitivity_markdown(pd.read_csv(RESULTS / "sensitivity.csv")),
            ma.small_study_section(pd.read_csv(RESULTS / "small_study.csv"),
                                   pd.read_csv(RESULTS / "leave_one_out.csv"),
                                   pd.read_csv(RESULTS / "effects.csv")),
        ],
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
