"""Forest plots: all components in one figure, one figure per component, every effect.

Writes figures/forest_by_component.*, figures/forest_<component>.* and
figures/forest_effects.* (PNG 200 dpi + SVG).  Run by ``make figures``; public API only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
SETTINGS = ma.AnalysisSettings()


def effect_labels(effects: pd.DataFrame, width: int = 60) -> pd.Series:
    """Outcome (shortened) and the reported value; the technique too where the same
    outcome and value occur twice in a study (e.g. two arms of ref 161)."""
    metric = effects["metric"].replace({"f2": "f²"})
    tag = metric + " = " + effects["value_used"].map("{:g}".format)
    twins = effects.duplicated(["study_id", "outcome", "value_used"], keep=False)
    technique = effects["technique"].str.replace(";", " + ").str.replace("_", " ")
    tag = tag.where(~twins, technique + "; " + tag)
    labels = []
    for outcome, t in zip(effects["outcome"], tag, strict=True):
        room = width - len(t) - 3
        short = outcome if len(outcome) <= room else outcome[: room - 1].rstrip() + "…"
        labels.append(f"{short} ({t})")
    return pd.Series(labels, index=effects.index)


def main() -> None:
    effects = pd.read_csv(ROOT / "results" / "effects.csv")
    fit = {"model": SETTINGS.model, "rho": SETTINGS.rho, "method": SETTINGS.method}
    groups = ma.pool_groups(effects, "components", levels=ma.COMPONENTS, **fit)
    ma.save_figure(ma.forest_panels(groups), FIGURES / "forest_by_component")
    for group in groups:
        ma.save_figure(ma.forest_plot(group, title=ma.level_label(group.level)),
                       FIGURES / f"forest_{group.level}")
    included = effects[effects["included"]].assign(label=effect_labels)
    overall = ma.pool_groups(effects, None, **fit)[0]
    fig = ma.forest_plot(included, group="study_id", label="label", pooled=overall, width=9.0,
                         title=f"Every effect size, grouped by study (k = {len(included)})")
    ma.save_figure(fig, FIGURES / "forest_effects")
    print(f"wrote {len(groups) + 2} forest plots to {FIGURES.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
