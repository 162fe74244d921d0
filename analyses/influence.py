"""Does one study drive the Table 2 results?  Leave-one-out and cumulative meta-analysis.

results/leave_one_out.csv: for all included effects and each targeted component with
>= 3 studies, the CHE estimate (rho 0.6, REML, CR2 robust CI, Satterthwaite df) with every
study left out in turn, all of its effects with it (first row per analysis: no study left
out; the analyses are those of small_study.py).  figures/cumulative.{png,svg}: the CHE
estimate as studies are added in order of publication year.  Run by ``make figures``;
public API only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from small_study import table2_analyses

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()
COLUMNS = ["analysis", "omitted", "citation", "k_studies", "k_effects", "estimate", "se",
           "ci_low", "ci_high", "df", "pvalue", "sigma2_study", "sigma2_within", "i2",
           "change", "note"]


def pooled(data: pd.DataFrame):
    """The default (CHE) pooled estimate of ``data``'s included effects."""
    return ma.pool_groups(data, None, model=SETTINGS.model, rho=SETTINGS.rho,
                          method=SETTINGS.method)[0]


def leave_one_out_rows(name: str, data: pd.DataFrame) -> list[dict]:
    full = pooled(data)
    citations = data.drop_duplicates("study_id").set_index("study_id")["citation"]
    rows = []
    for omitted in [None, *citations.index]:
        fit = full if omitted is None else pooled(data[data["study_id"] != omitted])
        rows.append({
            "analysis": name, "omitted": omitted or "(none)",
            "citation": "" if omitted is None else citations[omitted],
            **{c: getattr(fit, c) for c in COLUMNS[3:-2]},
            "change": fit.estimate - full.estimate, "note": fit.note,
        })
    return rows


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    subsets = table2_analyses(effects)
    table = pd.DataFrame([row for name, data in subsets.items()
                          for row in leave_one_out_rows(name, data)], columns=COLUMNS)
    path = ma.write_csv(table, ROOT / "results" / "leave_one_out.csv")
    print(f"wrote {path.relative_to(ROOT)} ({len(table)} rows)")

    included = subsets["overall"]
    fit = ma.multilevel(included["yi"], included["vi"], included["citation"],
                        es_id=included["es_id"], rho=SETTINGS.rho, method=SETTINGS.method)
    with warnings.catch_warnings():  # the first step has one study: sigma2_study is fixed at 0
        warnings.filterwarnings("ignore", message="Single-level factor")
        steps = ma.cumulative(fit, order=included["year"].to_numpy())
    fig = ma.cumulative_plot(steps, title="Cumulative meta-analysis by publication year",
                             xlabel="Hedges' g (CHE model, model-based 95% CI)")
    paths = ma.save_figure(fig, ROOT / "figures" / "cumulative")
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")


if __name__ == "__main__":
    main()
