"""Does one study drive the Table 2 results?  Leave-one-out and cumulative meta-analysis.

results/leave_one_out.csv: for all included effects and each targeted component with
>= 3 studies, the CHE estimate (rho 0.6, REML, CR2 robust CI, Satterthwaite df) with every
study left out in turn, all of its effects with it (first row per analysis: no study left
out; the analyses are those of small_study.py).  figures/cumulative.{png,svg}: the CHE
estimate as studies are added in order of publication year.  Run by ``make figures``;
the library does the refits (``leave_one_out`` of the robust CHE result).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from small_study import table2_analyses

import metaally as ma
from metaally.models.pooling import NOTE_SMALL_DF

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()
COLUMNS = ["analysis", "omitted", "citation", "k_studies", "k_effects", "estimate", "se",
           "ci_low", "ci_high", "df", "pvalue", "sigma2_study", "sigma2_within", "i2",
           "change", "note"]


def che_fit(data: pd.DataFrame):
    """The default (CHE, CR2 robust) pooled estimate of ``data``'s included effects."""
    return ma.multilevel(data["yi"], data["vi"], data["study_id"], es_id=data["es_id"],
                         rho=SETTINGS.rho, method=SETTINGS.method).robust(adjust="CR2")


def leave_one_out_rows(name: str, data: pd.DataFrame) -> list[dict]:
    """The full fit, then one row per study left out: the library refits the same robust
    CHE model without all of that study's effects (``ma.leave_one_out``)."""
    full = che_fit(data)
    citations = data.drop_duplicates("study_id").set_index("study_id")["citation"]
    fields = ["estimate", "se", "ci_low", "ci_high", "df", "pvalue", "sigma2_study",
              "sigma2_within", "i2"]
    first = {"analysis": name, "omitted": "(none)", "citation": "", "k_studies": full.n_clusters,
             "k_effects": full.k, **{c: getattr(full, c) for c in fields}}
    rows = [first]
    for fit in ma.leave_one_out(full).itertuples(index=False):
        rows.append({"analysis": name, "omitted": fit.omitted,
                     "citation": citations[fit.omitted], "k_studies": fit.n_clusters,
                     "k_effects": fit.k, **{c: getattr(fit, c) for c in fields}})
    for row in rows:
        row["change"] = row["estimate"] - full.estimate
        row["note"] = NOTE_SMALL_DF if row["df"] < 4 else ""
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
