"""Publication bias in Table 2, side by side: selection model (3PSM), Egger's test and PET-PEESE
with the modified SE of an SMD and with the vi-based SE, and trim-and-fill.

For all included effects and each targeted component: with fewer than MIN_STUDIES studies the
selection model is not fitted and every other row is flagged (Sterne et al. 2011, BMJ
343:d4002: tests for funnel-plot asymmetry should not be used with fewer than 10 studies; with
fewer than 3 studies nothing is computed); otherwise, on ``ma.aggregate``
composites (one effect per study, rho 0.6):
- 3PSM: ``ma.selection_model`` (metafor's selmodel, stepfun, steps 0.025, one-sided);
  also on every effect with the study as cluster (composite likelihood, cluster-robust SEs);
- Egger and PET-PEESE with the modified SE sqrt((n1 + n2)/(n1 n2)) (Pustejovsky & Rodgers
  2019; the default for SMDs: sqrt(vi) contains g) and with sqrt(vi) (for comparison);
- trim-and-fill (L0, REML).
Writes results/publication_bias.csv and figures/selection_function.{png,svg}.  Run by
``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import metaally as ma
import metaally.allyship as ally

ROOT = Path(__file__).resolve().parents[1]
# the words declared beside the data (data/vocabulary.csv), not the packaged copy's
COMPONENTS = ma.load_vocabulary(ROOT / "data" / "vocabulary.csv").levels("components")
SETTINGS = ma.AnalysisSettings()
MIN_STUDIES = 10
THRESHOLD_NOTE = (f"fewer than {MIN_STUDIES} studies: too few for any publication-bias method "
                  "(Sterne et al. 2011, BMJ 343:d4002)")
COLUMNS = ["analysis", "k_studies", "k_effects", "method", "se_type", "estimate", "ci_low",
           "ci_high", "stat", "pvalue", "delta", "lrt", "lrt_pvalue", "k_per_interval", "k0",
           "note"]


def selection_rows(base: dict, yi, vi, study=None) -> list[dict]:
    model = ma.random_effects(yi, vi, method="ML")
    label = "selection_3psm" if study is None else "selection_3psm_clustered"
    try:
        sel = ma.selection_model(model, study=study)
    except ValueError as err:
        return [{**base, "method": label, "note": f"not estimable: {err}"}]
    return [{**base, "method": label, "se_type": "sqrt(vi)", "estimate": sel.estimate,
             "ci_low": sel.ci_low, "ci_high": sel.ci_high, "stat": sel.stat,
             "pvalue": sel.pvalue, "delta": sel.delta[1], "lrt": sel.lrt,
             "lrt_pvalue": sel.lrt_pvalue,
             "k_per_interval": ";".join(str(int(n)) for n in sel.interval_counts),
             "note": (f"cluster-robust SEs, {sel.n_clusters} studies; robust Wald p of delta = 1: "
                      f"{sel.delta_pvalue[1]:.4f}") if study is not None
             else "adjusted estimate; delta = weight of p > .025 relative to p <= .025"}]


def rows_for(name: str, data: pd.DataFrame) -> list[dict]:
    k_studies = data["study_id"].nunique()
    base = {"analysis": name, "k_studies": k_studies, "k_effects": len(data)}
    if k_studies < 3:
        return [{**base, "method": "none", "note": THRESHOLD_NOTE}]
    few = k_studies < MIN_STUDIES
    mod_v = ma.modified_se(data["n1"], data["n2"]) ** 2
    composite = ma.aggregate(data["yi"], data["vi"], data["study_id"], rho=SETTINGS.rho)
    mod_composite = ma.aggregate(data["yi"], mod_v, data["study_id"], rho=SETTINGS.rho)
    yi, vi = composite["yi"].to_numpy(), composite["vi"].to_numpy()
    sei = {"modified": np.sqrt(mod_composite["vi"].to_numpy()), "sqrt(vi)": None}
    if few:
        rows = [{**base, "method": "selection_3psm", "note": THRESHOLD_NOTE}]
    else:
        rows = selection_rows(base, yi, vi) + selection_rows(
            base, data["yi"].to_numpy(), data["vi"].to_numpy(),
            study=data["study_id"].to_numpy())
    for se_type, se in sei.items():
        egger = ma.egger_test(yi, vi, sei=se)
        rows.append({**base, "method": "egger", "se_type": se_type,
                     "estimate": egger.limit_estimate, "ci_low": egger.limit_ci_low,
                     "ci_high": egger.limit_ci_high, "stat": egger.stat, "pvalue": egger.pvalue,
                     "note": "limit estimate (se -> 0); z test of the slope"
                     + ("" if se is not None else
                        "; sqrt(vi) contains g: asymmetry can be an artefact")})
        pet = ma.pet_peese(yi, vi, sei=se)
        rows.append({**base, "method": "pet_peese", "se_type": se_type, "estimate": pet.estimate,
                     "ci_low": pet.ci_low, "ci_high": pet.ci_high,
                     "pvalue": pet.pet_pvalue_one_sided, "note": f"{pet.chosen} chosen"})
    filled = ma.trim_and_fill(yi, vi, estimator="L0", method=SETTINGS.method)
    rows.append({**base, "method": "trim_and_fill", "se_type": "sqrt(vi)",
                 "estimate": filled.estimate, "ci_low": filled.ci_low, "ci_high": filled.ci_high,
                 "pvalue": filled.pvalue, "k0": filled.k0,
                 "note": f"{filled.k0} imputed on the {filled.side}"})
    if few:   # shown for transparency (the review reports them), flagged as uninformative
        for row in rows[1:]:
            row["note"] = f"{row['note']}; {THRESHOLD_NOTE}"
    return rows


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    subsets = ally.table2_analyses(effects, COMPONENTS, min_studies=0)
    rows = [row for name, data in subsets.items() for row in rows_for(name, data)]
    ma.write_csv(pd.DataFrame(rows, columns=COLUMNS), ROOT / "results" / "publication_bias.csv")
    data = subsets["overall"]
    composite = ma.aggregate(data["yi"], data["vi"], data["study_id"], rho=SETTINGS.rho)
    yi, vi = composite["yi"].to_numpy(), composite["vi"].to_numpy()
    sel = ma.selection_model(ma.random_effects(yi, vi, method="ML"))
    pvalues = 1 - __import__("scipy").stats.norm.cdf(yi / np.sqrt(vi))
    fig = ma.selection_plot(sel, pvalues=pvalues,
                            title="Estimated selection function (3PSM, all studies)")
    ma.save_figure(fig, ROOT / "figures" / "selection_function")


if __name__ == "__main__":
    main()
