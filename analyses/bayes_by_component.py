"""Few-study inference: Bayesian estimates per component and technique, prior sensitivity,
and a shrinkage forest plot.

Writes results/bayes_by_component.csv (per component, per technique and overall, grouped as
``pool_by`` groups them: posterior median and 95% credible interval of g, P(g > 0),
P(g > 0.2), posterior median of tau, inclusion Bayes factors for an effect and for
heterogeneity), results/bayes_prior_sensitivity.csv (every component with studies, and
overall, under 4 heterogeneity priors x 2 effect priors) and figures/forest_bayes.*
(observed vs posterior study effects per component).  Run by ``make figures``; public API.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma
import metaally.allyship as ally

ROOT = Path(__file__).resolve().parents[1]
# the words declared beside the data (data/vocabulary.csv), not the packaged copy's
VOCABULARY = ma.load_vocabulary(ROOT / "data" / "vocabulary.csv")
COMPONENTS = VOCABULARY.levels("components")
TECHNIQUES = VOCABULARY.levels("technique")
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    rho = SETTINGS.rho
    table = pd.concat([
        ma.bayes_by(effects, "components", COMPONENTS, rho=rho),
        ma.bayes_by(effects, "technique", TECHNIQUES, rho=rho),
        ma.bayes_by(effects, None, rho=rho),
    ], ignore_index=True)
    table["grouping"] = table["grouping"].replace({"components": "component"})
    subsets = ally.table2_analyses(effects, COMPONENTS, min_studies=0)
    members = {level: subsets[level] for level in COMPONENTS} | {"overall": subsets["overall"]}
    sensitivity = pd.concat([
        ma.bayes_prior_sensitivity(data["yi"], data["vi"], data["study_id"], rho=rho)
        .assign(grouping="overall" if level == "overall" else "component", level=level,
                k_studies=data["study_id"].nunique(), k_effects=len(data))
        for level, data in members.items() if len(data)
    ], ignore_index=True)
    front = ["grouping", "level", "k_studies", "k_effects"]
    sensitivity = sensitivity[front + [c for c in sensitivity if c not in front]]
    for name, frame in [("bayes_by_component", table), ("bayes_prior_sensitivity", sensitivity)]:
        path = ma.write_csv(frame, ROOT / "results" / f"{name}.csv")
        print(f"wrote {path.relative_to(ROOT)} ({len(frame)} rows)")

    fits = {level: ma.bayes_fit(data, rho=rho) for level, data in members.items()
            if level != "overall" and len(data)}
    labels = dict(zip(effects["study_id"], effects["citation"], strict=True))
    fig = ma.shrinkage_panels(list(fits.values()), [ma.level_label(lv) for lv in fits],
                              labels=labels)
    ma.save_figure(fig, ROOT / "figures" / "forest_bayes")
    print("wrote figures/forest_bayes.png, figures/forest_bayes.svg")


if __name__ == "__main__":
    main()
