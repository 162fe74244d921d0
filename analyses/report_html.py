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


# figures shown first, in this order, with a caption a reader can use; any other follows
CAPTIONS = {
    "forest_by_component": "Forest plot by targeted component (CHE model, CR2 robust CIs; "
                           "diamond: pooled estimate, bar: 95% prediction interval)",
    "forest_awareness": "Forest plot: awareness",
    "forest_authentic_motivation": "Forest plot: authentic motivation",
    "forest_action_orientation": "Forest plot: action orientation",
    "forest_all_inclusivity": "Forest plot: all-inclusivity",
    "forest_by_technique": "Forest plot by intervention technique",
    "forest_effects": "Every effect size, grouped by study, with the overall CHE estimate",
    "forest_bayes": "Bayesian random effects: observed and shrunken study estimates per "
                    "component",
    "evidence_gap_map": "Evidence gap map: targeted component by the component the outcome "
                        "measures",
    "sensitivity": "Sensitivity of the pooled estimates to the analysis choices",
    "funnel": "Funnel plot of every effect size",
    "funnel_trimfill": "Funnel plot of one composite effect per study, with trim-and-fill",
    "cumulative": "Cumulative meta-analysis by publication year",
    "network_graph": "Network of techniques (all outcomes)",
    "network_forest": "Network meta-analysis: every technique vs control",
    "network_league": "Network meta-analysis: league table of every pair of techniques",
    "network_ranking": "Network meta-analysis: ranking by P-score",
}


def _figures() -> list[ma.FigureFile]:
    """Every PNG in figures/ (its SVG embedded when there is one): the known figures in
    ``CAPTIONS`` order with their captions, pages of one figure together ("page 1 of 2")."""
    pngs = sorted(FIGURES.glob("*.png"), key=lambda p: p.stem)
    found: dict[str, list[Path]] = {}
    for png in pngs:
        base, _, page = png.stem.rpartition("-")
        found.setdefault(base if page.isdigit() else png.stem, []).append(png)
    order = [s for s in CAPTIONS if s in found] + [s for s in found if s not in CAPTIONS]
    out = []
    for stem in order:
        pages = sorted(found[stem], key=lambda p: (len(p.stem), p.stem))
        caption = CAPTIONS.get(stem, stem.replace("_", " "))
        for i, png in enumerate(pages, start=1):
            svg = png.with_suffix(".svg")
            text = caption + (f" (page {i} of {len(pages)})" if len(pages) > 1 else "")
            out.append(ma.FigureFile(svg if svg.is_file() else png, text))
    return out


def main() -> None:
    studies = ma.load_studies(DATA)
    summary = (RESULTS / "summary.md").read_text(encoding="utf-8")
    csvs = [RESULTS / name for name in TABLES if (RESULTS / name).is_file()]
    csvs += sorted(p for p in RESULTS.glob("*.csv") if p.name not in TABLES)
    tables = {TABLES.get(p.name, p.stem.replace("_", " ")) + f" ({p.name})": pd.read_csv(p)
              for p in csvs}
    figures = _figures()
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
