"""Funnel plot of every included effect size around the overall pooled estimate.

Writes figures/funnel.png and figures/funnel.svg.  Run by ``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ma.AnalysisSettings()


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    overall = ma.pool_groups(effects, None, model=SETTINGS.model, rho=SETTINGS.rho,
                             method=SETTINGS.method)[0]
    fig = ma.funnel_plot(effects[effects["included"]], center=overall.estimate,
                         title=f"Funnel plot ({overall.k_effects} effects, "
                               f"{overall.k_studies} studies)")
    paths = ma.save_figure(fig, ROOT / "figures" / "funnel")
    print(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")


if __name__ == "__main__":
    main()
