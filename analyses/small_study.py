"""Small-study effects in Table 2: Egger's sandwich on every effect, and the classic tests
on one composite effect per study.

For all included effects and each targeted component with >= 3 studies:
- Egger's sandwich (Rodgers & Pustejovsky 2021): CHE model (rho 0.6) with the effect's
  standard error as moderator, CR2 robust t test of its slope, Satterthwaite df;
- on ``ma.aggregate`` composites (one effect per study, rho 0.6): the random-effects
  estimate (REML, z), Egger's regression test, Begg & Mazumdar's rank test, trim-and-fill
  (L0, REML) and PET-PEESE.
Writes results/small_study.csv and figures/funnel_trimfill.{png,svg} (all studies,
aggregated, with the effects trim-and-fill imputes).  Run by ``make figures``; public API.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()
MIN_STUDIES = 3
LIMIT = "limit estimate (se -> 0)"


def table2_analyses(effects: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The included effects, overall and per targeted component with >= MIN_STUDIES studies."""
    included = effects[effects["included"].astype(bool)]
    targets = included["components"].str.split(";")
    subsets = {"overall": included}
    for component in ma.COMPONENTS:
        rows = included[targets.apply(lambda names, c=component: c in names)]
        if rows["study_id"].nunique() >= MIN_STUDIES:
            subsets[component] = rows
    return subsets


def power_note(k: int) -> str:
    if k < 10:
        return (f"{k} studies: fewer than the 10 Sterne et al. (2011) recommend as a minimum; "
                "almost no power")
    return f"{k} studies: little power (Sterne et al. 2011 recommend at least 10)"


def rows_for(name: str, data: pd.DataFrame) -> list[dict]:
    k_studies, k_effects = data["study_id"].nunique(), len(data)
    base = {"analysis": name, "k_studies": k_studies, "k_effects": k_effects}
    low_power = power_note(k_studies)
    sandwich = ma.egger_test(data["yi"], data["vi"], study=data["study_id"], rho=SETTINGS.rho)
    composite = ma.aggregate(data["yi"], data["vi"], data["study_id"], rho=SETTINGS.rho)
    yi, vi = composite["yi"], composite["vi"]
    plain = ma.random_effects(yi, vi, method=SETTINGS.method)
    egger, rank = ma.egger_test(yi, vi), ma.rank_test(yi, vi)
    filled = ma.trim_and_fill(yi, vi, estimator="L0", method=SETTINGS.method)
    pet = ma.pet_peese(yi, vi)
    small_df = "; robust test unreliable (Satterthwaite df < 4)" if sandwich.df < 4 else ""
    rows = [
        {**base, "model": "che", "test": "egger_sandwich", "stat": sandwich.stat,
         "df": sandwich.df, "pvalue": sandwich.pvalue, "quantity": LIMIT,
         "estimate": sandwich.limit_estimate, "ci_low": sandwich.limit_ci_low,
         "ci_high": sandwich.limit_ci_high, "note": low_power + small_df},
        {**base, "model": "aggregate", "test": "random_effects", "stat": plain.stat,
         "pvalue": plain.pvalue, "quantity": "estimate", "estimate": plain.estimate,
         "ci_low": plain.ci_low, "ci_high": plain.ci_high,
         "note": "the estimate trim-and-fill and PET-PEESE start from (z test)"},
        {**base, "model": "aggregate", "test": "egger", "stat": egger.stat,
         "pvalue": egger.pvalue, "quantity": LIMIT, "estimate": egger.limit_estimate,
         "ci_low": egger.limit_ci_low, "ci_high": egger.limit_ci_high, "note": low_power},
        {**base, "model": "aggregate", "test": "rank", "stat": rank.tau,
         "pvalue": rank.pvalue, "note": low_power},
        {**base, "model": "aggregate", "test": "trim_and_fill", "quantity": "adjusted estimate",
         "estimate": filled.estimate, "ci_low": filled.ci_low, "ci_high": filled.ci_high,
         "k0": filled.k0, "side": filled.side,
         "note": f"{filled.k0} {'study' if filled.k0 == 1 else 'studies'} imputed on the "
                 f"{filled.side}; " + low_power},
    ]
    for model in ("PET", "PEESE"):
        prefix = model.lower()
        chosen = "; chosen by PET-PEESE" if pet.chosen == model else ""
        rows.append({
            **base, "model": "aggregate", "test": prefix,
            **{c: getattr(pet, f"{prefix}_{c}") for c in ("stat", "pvalue")}, "df": pet.df,
            "quantity": LIMIT,
            **{c: getattr(pet, f"{prefix}_{c}") for c in ("estimate", "ci_low", "ci_high")},
            "note": low_power + chosen,
        })
    return rows


COLUMNS = ["analysis", "model", "test", "k_studies", "k_effects", "stat", "df", "pvalue",
           "quantity", "estimate", "ci_low", "ci_high", "k0", "side", "note"]


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    subsets = table2_analyses(effects)
    table = pd.DataFrame([row for name, data in subsets.items() for row in rows_for(name, data)])
    table = table.reindex(columns=COLUMNS).astype({"k0": "Int64"})
    path = ma.write_csv(table, ROOT / "results" / "small_study.csv")
    print(f"wrote {path.relative_to(ROOT)} ({len(table)} rows)")

    overall = subsets["overall"]
    composite = ma.aggregate(overall["yi"], overall["vi"], overall["study_id"], rho=SETTINGS.rho)
    filled = ma.trim_and_fill(composite["yi"], composite["vi"], method=SETTINGS.method)
    fig = ma.funnel_plot(filled, center_label="random-effects estimate",
                         title=f"Funnel plot: {filled.k} studies, one composite effect each, "
                               "with trim-and-fill (L0)")
    paths = ma.save_figure(fig, ROOT / "figures" / "funnel_trimfill")
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")


if __name__ == "__main__":
    main()
