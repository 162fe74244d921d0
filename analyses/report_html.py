"""Write results/report.html: the whole review in one self-contained file.

The written summary (results/summary.md, which holds the Methods and the PRISMA
checklist), the summary of findings, every results table, every
figure in figures/ (embedded), the data with its provenance, and the settings used.
Opens offline in any browser.  Run by ``make figures`` last; public API only.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
FIGURES = ROOT / "figures"
DATA = ROOT / "data" / "table2.csv"
SETTINGS = ma.AnalysisSettings()

# results tables shown first, in this order, with a caption; any other CSV follows
TABLES = {
    "summary_of_findings.csv": "Summary of findings (GRADE domains the data can speak to)",
    "pooled_by_component.csv": "Pooled by targeted component and Table 2 group",
    "component_differences.csv": "Do the components differ?",
    "pooled_by_outcome_component.csv": "Pooled by the component the outcome measures",
    "pooled_by_technique.csv": "Pooled by technique",
    "technique_differences.csv": "Do the techniques differ?",
    "sensitivity.csv": "Sensitivity analyses",
    "small_study.csv": "Small-study effects and publication bias",
    "leave_one_out.csv": "Leave one study out",
    "effects.csv": "Every effect size (analysis table)",
}


def _figure(path: Path) -> ma.FigureFile:
    svg = path.with_suffix(".svg")
    return ma.FigureFile(svg if svg.is_file() else path, path.stem.replace("_", " "))


def main() -> None:
    studies = ma.load_studies(DATA)
    summary = (RESULTS / "summary.md").read_text(encoding="utf-8")
    csvs = [RESULTS / name for name in TABLES if (RESULTS / name).is_file()]
    csvs += sorted(p for p in RESULTS.glob("*.csv") if p.name not in TABLES)
    tables = {TABLES.get(p.name, p.stem.replace("_", " ")) + f" ({p.name})": pd.read_csv(p)
              for p in csvs}
    figures = [_figure(p) for p in sorted(FIGURES.glob("*.png"))]
    sections = [
        ma.ReportSection("Summary", summary.split("\n", 1)[1] if summary.startswith("# ")
                         else summary),
        ma.ReportSection("Figures", figures=figures),
        ma.ReportSection("Tables", "Click a column header to sort.", tables),
    ]
    provenance = {
        "source": "data/table2.csv: Table 2 of the review, one row per reported result "
                  "(codebook: data/README.md)",
        "SHA-256": hashlib.sha256(DATA.read_bytes()).hexdigest(),
        "rows": len(studies), "studies": studies["study_id"].nunique(),
        "validated": "metaally validate: no problems",
    }
    path = ma.write_html(
        RESULTS / "report.html",
        "Which components of allyship do interventions move? A meta-analysis of Table 2",
        sections, data=studies.drop(columns=["source_line"], errors="ignore"),
        provenance=provenance,
        settings={**asdict(SETTINGS), "metaally": ma.__version__})
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB, "
          f"{len(figures)} figures, {len(tables)} tables)")


if __name__ == "__main__":
    main()
