"""The whole analysis of one studies CSV, for any review in the schema: ``run_report``.

data → effect sizes → a pooled table and forest plots per coding column → every effect
and a funnel plot → summary of findings → ``summary.md`` and the self-contained
``report.html``.  This is what ``metaally report FILE --out DIR`` runs; the outputs it
writes are listed in ``OUTPUTS``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metaally import __version__
from metaally.data.reading import load_studies
from metaally.data.studies import resolve_vocabulary
from metaally.effects.compute import compute_effects
from metaally.models.pooling import PooledGroup, level_label, pool_by, pool_groups
from metaally.models.progress import progress_bar
from metaally.report.findings import summary_of_findings
from metaally.report.html import FigureFile, ReportSection, write_html
from metaally.report.tables import write_csv

__all__ = [
    "CODING_COLUMNS",
    "OUTPUTS",
    "ReportRun",
    "run_report",
]

#: coding columns pooled level by level; their levels are the words the vocabulary beside
#: the CSV declares (shown even when no study uses them), else those the data use
CODING_COLUMNS: tuple[str, ...] = ("components", "technique", "outcome_component",
                                   "outcome_domain")

OUTPUTS: dict[str, str] = {
    "effects.csv": "one row per effect size: Hedges' g (yi), variance (vi), provenance",
    "pooled_by_<column>.csv": "pooled estimate per level of each coding column, plus overall",
    "summary_of_findings.csv": "GRADE-style summary of findings per level and overall",
    "figures/forest_by_<column>.png|svg|pdf": "forest plot, one panel per level "
                                              "(numbered pages when long)",
    "figures/forest_effects.png|svg|pdf": "every effect size, grouped by study, with the "
                                          "overall diamond",
    "figures/funnel.png|svg|pdf": "funnel plot of every effect around the overall estimate",
    "summary.md": "the written summary (Markdown)",
    "report.html": "everything above in one self-contained HTML file (opens offline)",
}


@dataclass(frozen=True)
class ReportRun:
    """What ``run_report`` wrote: the output folder and every file, in writing order."""

    out: Path
    files: tuple[Path, ...]
    k_studies: int
    k_effects: int


def run_report(
    path: str | Path,
    out: str | Path,
    *,
    model: str = "che",
    rho: float = 0.6,
    method: str = "REML",
    columns: Sequence[str] | None = None,
    progress: bool | None = None,
) -> ReportRun:
    """Analyse the studies CSV ``path`` and write ``OUTPUTS`` under ``out``.

    ``columns``: the coding columns to pool by (default: those of ``CODING_COLUMNS``
    present in the file).  ``model``/``rho``/``method`` as in ``pool_groups``.
    Raises ``StudiesValidationError`` (every problem, ``PATH:LINE: …``) for invalid data
    and ``ValueError`` for a bad argument; ``progress`` follows metaally's progress-bar
    policy (``metaally.models.progress``).
    """
    from metaally.plots.export import save_figure, save_pages
    from metaally.plots.forest import forest_pages, forest_plot
    from metaally.plots.funnel import funnel_plot

    path, out = Path(path), Path(out)
    studies = load_studies(path)
    vocabulary = resolve_vocabulary(path)
    chosen = [c for c in (columns if columns is not None else CODING_COLUMNS)
              if c in studies.columns]
    unknown = [c for c in (columns or []) if c not in studies.columns]
    if unknown:
        raise ValueError(f"columns: not in {path.name}: {', '.join(unknown)}")
    figures_dir = out / "figures"
    bar = progress_bar(len(chosen) + 4, "metaally report", "step", progress)
    files: list[Path] = []
    fit = {"model": model, "rho": rho, "method": method}
    try:
        effects = compute_effects(studies)
        files.append(write_csv(effects, out / "effects.csv"))
        bar.update()
        sections_by_column = []
        findings = []
        for column in chosen:
            levels = vocabulary.levels(column) or None
            pooled = pool_by(effects, column, levels=levels, **fit)
            files.append(write_csv(pooled, out / f"pooled_by_{column}.csv"))
            groups = pool_groups(effects, column, levels=levels, **fit)
            pages = forest_pages(groups)
            written = save_pages(pages, figures_dir / f"forest_by_{column}")
            files += written
            findings.append(summary_of_findings(effects, column, levels=levels,
                                                participants=studies, overall=False, **fit))
            sections_by_column.append((column, pooled, [p for p in written
                                                        if p.suffix == ".svg"]))
            bar.update()
        overall = pool_groups(effects, None, **fit)[0]
        findings.append(summary_of_findings(effects, None, participants=studies, **fit))
        table = pd.concat(findings, ignore_index=True)
        files.append(write_csv(table, out / "summary_of_findings.csv"))
        bar.update()
        included = effects[effects["included"].astype(bool)]
        several = included["study_id"].duplicated().any()
        forest = forest_plot(included, group="study_id" if several else None,
                             label="outcome" if several else None, pooled=overall, width=9.0,
                             title=f"Every effect size (k = {len(included)})")
        files += save_figure(forest, figures_dir / "forest_effects")
        funnel = funnel_plot(included, center=overall.estimate,
                             title="Funnel plot of every effect size")
        files += save_figure(funnel, figures_dir / "funnel")
        bar.update()
        summary = _summary_markdown(path, effects, overall, table, fit)
        summary_path = out / "summary.md"
        tmp = summary_path.with_name(".summary.md.tmp")
        tmp.write_text(summary, encoding="utf-8")
        tmp.replace(summary_path)
        files.append(summary_path)
        sections = [ReportSection("Summary", summary.split("\n", 1)[1])]  # no second title
        sections.append(ReportSection("Summary of findings",
                                      "Rules: `metaally.report.findings`.",
                                      {"Summary of findings": table}))
        for column, pooled, pages in sections_by_column:
            sections.append(ReportSection(
                f"Pooled by {column}", tables={f"Pooled by {column}": pooled},
                figures=[FigureFile(p, f"Forest plot by {column}"
                                    + (f", page {i + 1}" if len(pages) > 1 else ""))
                         for i, p in enumerate(pages)]))
        sections.append(ReportSection("Every effect", tables={"Effect sizes": effects},
                                      figures=[FigureFile(figures_dir / "forest_effects.svg",
                                                          "Every effect size"),
                                               FigureFile(figures_dir / "funnel.svg",
                                                          "Funnel plot")]))
        files.append(write_html(
            out / "report.html", f"Meta-analysis of {path.name}", sections,
            data=studies.drop(columns=["source_line"], errors="ignore"),
            provenance=_provenance(path, studies),
            settings={**fit, "effect size": "Hedges' g (exact J), variance LS",
                      "metaally": __version__}))
        bar.update()
    finally:
        bar.close()
    return ReportRun(out, tuple(files), int(included["study_id"].nunique()), len(included))


def _provenance(path: Path, studies: pd.DataFrame) -> dict[str, str]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"source file": path.name, "SHA-256": digest, "rows": str(len(studies)),
            "studies": str(studies["study_id"].nunique()),
            "validated": "yes (metaally validate: no problems)"}


def _summary_markdown(path: Path, effects: pd.DataFrame,
                      overall: PooledGroup, findings: pd.DataFrame, fit: dict) -> str:
    included = effects[effects["included"].astype(bool)]
    rows = findings[["grouping", "level", "k_studies", "k_effects", "estimate", "ci_low",
                     "ci_high", "pi_low", "pi_high", "df", "loo_ci_includes_0"]].copy()
    rows["level"] = [level_label(str(v)) for v in rows["level"]]
    lines = [
        f"# Results for {path.name}",
        "",
        f"{included['study_id'].nunique()} studies contribute {len(included)} effect sizes "
        f"(Hedges' g); {len(effects) - len(included)} more rows are recorded but not pooled.",
        "",
        f"All effects together: g = {overall.estimate:.2f} (95% CI {overall.ci_low:.2f} to "
        f"{overall.ci_high:.2f}"
        + (f"; 95% prediction interval {overall.pi_low:.2f} to {overall.pi_high:.2f}"
           if overall.k_studies >= 2 else "")
        + f"; {overall.k_studies} studies).",
        "",
        f"Model: {fit['model']} (ρ = {fit['rho']:g}, {fit['method']}). "
        "Levels with one study report that study's own effect; intervals with fewer than 4 "
        "robust degrees of freedom are unreliable.",
        "",
        "## Pooled estimates",
        "",
        _markdown_table(rows),
        "",
    ]
    return "\n".join(lines)


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "" if v != v else f"{v:.2f}"
        return str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in
            frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])
