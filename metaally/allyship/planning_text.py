"""The "Planning the next studies" section of summary.md, from results/studies_needed.csv and
results/coverage_small_k.csv (``analyses/planning.py``).

Every number is read from those tables: studies needed per component for 80% power of the
updated HKSJ test (conditional power, Roloff, Higgins & Sutton 2013, Stat Med 32(1); the
t approximation of Jackson & Turner 2017, Res Synth Methods 8(3)), and the coverage and
power that simulated Table 2-like meta-analyses measured for each k (``metaally.simulate``),
which is what the report's small-k warnings rest on.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from metaally.allyship.review import LABELS
from metaally.models.pooling import level_label
from metaally.models.printing import fmt_count

__all__ = ["planning_section", "coverage_sentence"]

ANALYSIS_NAMES = {"che_cr2": "CHE + CR2 (the report's default)",
                  "reml_knha": "REML + HKSJ on one effect per study",
                  "reml_z": "REML + Wald z on one effect per study"}


def _needed(value: float) -> str:
    if pd.isna(value):
        return "more than 500"
    return "none needed" if int(value) == 0 else f"{int(value)}"


def coverage_sentence(coverage: pd.DataFrame, analysis: str = "che_cr2") -> str:
    """What the simulation measured for ``analysis`` at each k: coverage and power with their
    Monte Carlo standard errors, in words."""
    rows = coverage[coverage["analysis"] == analysis].sort_values("k")
    if rows.empty:
        return ""
    first = rows.iloc[0]
    parts = [f"k = {int(r.k)}: coverage {100 * r.coverage:.1f}% "
             f"(MC SE {100 * r.coverage_mcse:.1f}), power {100 * r.power:.0f}%"
             for r in rows.itertuples()]
    return (f"In {int(first.reps):,} simulated meta-analyses per k shaped like Table 2 (true "
            f"g = {first.effect:g}, τ = {first.tau:g}, n = {first.n:g} per study"
            + (f", {int(first.m)} effects per study, ρ = {first.rho:g}" if first.m > 1 else "")
            + f"), the 95% interval of {ANALYSIS_NAMES.get(analysis, analysis)} gave "
            + "; ".join(parts) + ".")


def planning_section(needed: pd.DataFrame, coverage: pd.DataFrame,
                     labels: Mapping[str, str] | None = None) -> str:
    """Markdown section: studies needed per component and the measured small-k coverage."""
    labels = LABELS if labels is None else labels
    small = needed[needed["assumed_effect"].str.startswith("small")]
    current = needed[needed["assumed_effect"] == "current estimate"].set_index("component")
    first = needed.iloc[0]
    lines = [
        "## Planning the next studies",
        "",
        f"How many new two-arm studies of n = {first['n_per_new_study']:g} participants (the "
        "median Table 2 study) would give the updated random-effects test 80% power, given the "
        "studies already in hand (conditional power, Roloff, Higgins & Sutton 2013; HKSJ t test "
        "on k − 1 df, Jackson & Turner 2017), with the between-study variance of all studies "
        f"(τ² = {first['tau2']:.3f}):",
        "",
        "| Component | Studies now | Significant now (HKSJ, one composite per study)? | "
        "New studies if g = 0.2 | New studies if g = current estimate |",
        "|---|---|---|---|---|",
    ]
    for r in small.itertuples():
        name = level_label(r.component, labels)
        if r.component in current.index:
            cur = current.loc[r.component]
            at_current = f"{_needed(cur['studies_needed'])} (g = {cur['effect']:.2f})"
        else:
            at_current = "— (no estimate)"
        lines.append(f"| {name} | {r.k_studies} | {'yes' if r.significant_now else 'no'} | "
                     f"{_needed(r.studies_needed)} | {at_current} |")
    empty = small[small["k_studies"] == 0]
    lines.append("")
    for r in empty.itertuples():
        count = (fmt_count(int(r.studies_needed), "new study") if pd.notna(r.studies_needed)
                 else "more than 500 new studies")
        lines.append(
            f"{level_label(r.component, labels)} has no study yet: {count} "
            f"of this size would give 80% power to detect g = 0.2 "
            f"(5 studies: {100 * r.power_with_5_more:.0f}%, 10 studies: "
            f"{100 * r.power_with_10_more:.0f}%).")
    lines += [
        "",
        "### How far to trust intervals from few studies",
        "",
        coverage_sentence(coverage, "che_cr2"),
        coverage_sentence(coverage, "reml_z"),
        coverage_sentence(coverage, "reml_knha"),
        "",
        _verdict(coverage),
        "Full tables: `results/studies_needed.csv`, `results/coverage_small_k.csv`.",
    ]
    return "\n".join(line for line in lines if line is not None)


def _verdict(coverage: pd.DataFrame) -> str:
    """One sentence on the CR2 intervals below k = 5, from the simulated coverage."""
    che = coverage[(coverage["analysis"] == "che_cr2") & (coverage["k"] < 5)]
    wald = coverage[(coverage["analysis"] == "reml_z") & (coverage["k"] < 5)]
    if che.empty:
        return ""
    near = ((che["coverage"] - 0.95).abs() <= 2 * che["coverage_mcse"] + 0.01).all()
    text = ("With 2–4 studies the CR2 intervals kept close to their 95% coverage"
            if near else "With 2–4 studies the CR2 intervals missed their 95% coverage")
    text += (f" but are wide: power to detect the simulated effect was "
             f"{100 * che['power'].min():.0f}–{100 * che['power'].max():.0f}%. ")
    if not wald.empty:
        text += (f"The Wald z interval covered only {100 * wald['coverage'].min():.0f}–"
                 f"{100 * wald['coverage'].max():.0f}% there. ")
    if near:
        return (text + "This is what the flag \"robust CI unreliable (df < 4)\" means in this "
                "report: an interval that may be honest but says little.")
    return (text + "The flag \"robust CI unreliable (df < 4)\" means in this report: an "
            "interval whose stated coverage is not reached.")
