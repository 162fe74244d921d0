"""Planning the next study: new studies needed per targeted component, and the coverage the
report's small-k intervals actually reach.

- results/studies_needed.csv: for every targeted component (all-inclusivity included), the
  number of new two-arm studies of the median Table 2 size that bring the power of the
  updated random-effects test of g = 0 (HKSJ: t on k − 1 df, Jackson & Turner 2017)
  to 80%, if the true effect is g = 0.2 (a small
  effect, Cohen 1988) or the component's current estimate (conditional power, Roloff,
  Higgins & Sutton 2013; ``ma.studies_needed``).  Current studies enter as one composite per
  study (``ma.aggregate``, rho as the main analysis); tau² is the REML estimate from all
  studies' composites, since a component's own tau² from 2–4 studies is unreliable.
- results/coverage_small_k.csv: simulated coverage and power (``ma.simulate``) of the
  intervals the report prints — REML + Wald z, REML + HKSJ, CHE + CR2 with Satterthwaite df
  — for k = 2 … 10 studies shaped like Table 2's (median n, tau 0.2, true g = 0.3; CHE with
  3 effects per study, rho 0.6, omega 0.1; the univariate ones with one effect per study),
  with Monte Carlo standard errors.

Run by ``make figures``; uses only the public API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
# the words declared beside the data (data/vocabulary.csv), not the packaged copy's
VOCABULARY = ma.load_vocabulary(ROOT / "data" / "vocabulary.csv")
COMPONENTS = VOCABULARY.levels("components")
SETTINGS = ma.AnalysisSettings()
SMALL_EFFECT = 0.2
TARGET = 0.8
K_GRID = [2, 3, 4, 5, 10]
REPS = {"reml_z": 20_000, "reml_knha": 20_000, "che_cr2": 400}
SEED = 20261204


def studies_needed_table(effects: pd.DataFrame) -> pd.DataFrame:
    included = effects[effects["included"].astype(bool)]
    sizes = included.groupby("study_id")[["n1", "n2"]].first().sum(axis=1)
    n_new = float(np.median(sizes))
    composite = ma.aggregate(included["yi"], included["vi"], included["study_id"],
                             rho=SETTINGS.rho)
    tau2 = ma.random_effects(composite["yi"], composite["vi"], method=SETTINGS.method).tau2
    targets = included.groupby("study_id")["components"].first().str.split(";")
    rows = []
    for component in COMPONENTS:
        studies = targets.index[targets.apply(lambda names, c=component: c in names)]
        current = composite[composite["study"].isin(studies)]
        yi = current["yi"] if len(current) else None
        vi = current["vi"] if len(current) else None
        estimate = (ma.random_effects(yi, vi, method=SETTINGS.method).estimate
                    if len(current) else np.nan)
        for label, effect in (("small effect g = 0.2", SMALL_EFFECT),
                              ("current estimate", estimate)):
            if not np.isfinite(effect):
                continue
            res = ma.studies_needed(effect, n_new, yi=yi, vi=vi, tau2=tau2, target=TARGET,
                                    test="knha")
            rows.append({
                "component": component, "k_studies": len(current), "assumed_effect": label,
                "effect": effect, "tau2": tau2, "n_per_new_study": n_new, "target_power": TARGET,
                "significant_now": bool(res.power.iloc[0] >= 0.5) if len(current) else False,
                "studies_needed": res.studies if res.studies is not None else np.nan,
                "power_with_5_more": res.power[5], "power_with_10_more": res.power[10],
            })
    return pd.DataFrame(rows)


def coverage_table(effects: pd.DataFrame) -> pd.DataFrame:
    included = effects[effects["included"].astype(bool)]
    n = float(np.median(included.groupby("study_id")[["n1", "n2"]].first().sum(axis=1)))
    design = {"effect": 0.3, "k": K_GRID, "n": n, "tau": 0.2, "m": 3, "omega": 0.1,
              "rho": SETTINGS.rho, "sampling": "smd"}
    # the univariate analyses see one effect per study (as on aggregate composites)
    one_per_study = {**design, "m": 1, "omega": 0.0}
    frames = [ma.simulate(design if analysis == "che_cr2" else one_per_study, analysis,
                          n_reps=reps, seed=SEED, workers=1).to_frame()
              for analysis, reps in REPS.items()]
    return pd.concat(frames, ignore_index=True).sort_values(["k", "analysis"], kind="stable")


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    for name, table in [("studies_needed", studies_needed_table(effects)),
                        ("coverage_small_k", coverage_table(effects))]:
        path = ma.write_csv(table, ROOT / "results" / f"{name}.csv")
        print(f"wrote {path.relative_to(ROOT)} ({len(table)} rows)")


if __name__ == "__main__":
    main()
