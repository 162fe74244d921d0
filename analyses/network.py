"""Which technique works best: network meta-analysis of Table 2's techniques.

Every contrast joins the technique of the intervention arm and what the comparison arm
received (``comparator_technique``); each connected part of the network is analysed on its
own (all outcomes together, then each outcome domain).  Writes
results/network_coef.csv (every technique vs the part's reference, model-based and CR2),
results/network_pscores.csv (P-scores and SUCRA), results/network_league.csv (every
pairwise contrast), and figures/network_graph, network_league, network_forest,
network_ranking (.png/.svg) for the part holding control, all outcomes.  Run by
``make figures``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

import metaally as ma
from metaally.allyship.network_text import PartFit, fit_network, node_label

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    studies = ma.load_studies(ROOT / "data" / "table2.csv")
    effects = ma.compute_effects(studies)
    net, fits = fit_network(studies, effects, rho=SETTINGS.rho)
    every = [f for parts in fits.values() for f in parts]
    tables = {"network_coef": coef_table(every), "network_pscores": pscore_table(every),
              "network_league": league_table(every)}
    for name, table in tables.items():
        path = ma.write_csv(table, ROOT / "results" / f"{name}.csv")
        print(f"wrote {path.relative_to(ROOT)} ({len(table)} rows)")
    draw(net, fits["all outcomes"])


def _part_columns(f: PartFit) -> dict[str, object]:
    return {"network": f.network, "part": f.part, "reference": f.reference, "k": f.k,
            "n_studies": f.n_studies}


def coef_table(fits: list[PartFit]) -> pd.DataFrame:
    """One row per technique and part: model-based estimate and CR2 (clubSandwich) columns;
    a part that cannot be fitted gets one row naming why."""
    rows = []
    for f in fits:
        if f.result is None:
            rows.append({**_part_columns(f), "treatment": "; ".join(f.nodes),
                         "note": f"not analysed: {f.reason}"})
            continue
        with warnings.catch_warnings():  # single-study coefficients: robust se is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            robust = f.result.robust().coef
        for t, row in f.result.coef.iterrows():
            rows.append({**_part_columns(f), "treatment": t, "estimate": row["estimate"],
                         "se": row["se"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                         "pvalue": row["pvalue"], "se_cr2": robust.loc[t, "se"],
                         "df_cr2": robust.loc[t, "df"], "pvalue_cr2": robust.loc[t, "pvalue"],
                         "tau2": f.result.tau2, "note": ""})
    return pd.DataFrame(rows)


def pscore_table(fits: list[PartFit]) -> pd.DataFrame:
    rows = []
    for f in fits:
        if f.result is None:
            continue
        p, sucra = f.result.pscores(), f.result.sucra()
        for rank, (t, value) in enumerate(p.sort_values(ascending=False, kind="stable").items(),
                                          start=1):
            rows.append({**_part_columns(f), "treatment": t, "pscore": value,
                         "sucra": sucra[t], "rank": rank})
    return pd.DataFrame(rows)


def league_table(fits: list[PartFit]) -> pd.DataFrame:
    frames = [f.result.league_table().assign(**_part_columns(f)) for f in fits if f.result]
    league = pd.concat(frames, ignore_index=True)
    first = ["network", "part", "reference", "k", "n_studies"]
    return league[first + [c for c in league.columns if c not in first]]


def draw(net, parts: list[PartFit]) -> None:
    main = next(f for f in parts if f.result is not None and f.reference == "control")
    res = main.result
    figures = {
        "network_graph": ma.network_graph(
            net.frame["study_id"], net.frame["treat1"], net.frame["treat2"],
            participants=net.participants(), labels=node_label, center="control",
            title="Table 2 as a network of techniques (all outcomes)"),
        "network_league": ma.league_heatmap(res, labels=node_label),
        "network_forest": ma.network_forest(res, labels=node_label),
        "network_ranking": ma.ranking_plot(res, labels=node_label),
    }
    for name, fig in figures.items():
        paths = ma.save_figure(fig, ROOT / "figures" / name)
        print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in paths))


if __name__ == "__main__":
    main()
