"""Sensitivity of the pooled estimates by component to the analysis choices (issue 6).

Recomputes the effect sizes and pools them by component under every scenario of
``ma.default_scenarios()`` (rho, range policy, studies left out, model, per-arm n,
design); writes results/sensitivity.csv and figures/sensitivity.{png,svg}.
Run by ``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    studies = ma.load_studies(ROOT / "data" / "table2.csv")
    table = ma.sensitivity_analysis(studies, base=ma.AnalysisSettings())
    path = ma.write_csv(table, ROOT / "results" / "sensitivity.csv")
    print(f"wrote {path.relative_to(ROOT)} ({table['scenario'].nunique()} analyses, "
          f"{len(table)} rows)")
    paths = ma.save_figure(ma.sensitivity_plot(table), ROOT / "figures" / "sensitivity")
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")


if __name__ == "__main__":
    main()
