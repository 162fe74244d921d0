"""The review's paragraph on the Bayesian few-study estimates, as facts and as sentences.

``bayes_facts`` turns the tables of analyses/bayes_by_component.py (results/bayes_by_component.csv
and results/bayes_prior_sensitivity.csv, as DataFrames) into one :class:`BayesFacts` per
component; ``bayes_sentences`` words them for summary.md.  Nothing here computes a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from metaally.allyship.review import LABELS
from metaally.models.pooling import level_label

__all__ = [
    "BayesFacts",
    "bayes_facts",
    "bayes_sensitivity_table",
    "bayes_sentences",
]


@dataclass(frozen=True)
class BayesFacts:
    """What the Bayesian analysis says about one component (NaN where it has no studies).

    ``median``/``ci_low``/``ci_high``: posterior median and 95% credible interval of the mean
    effect g; ``p_gt_0``/``p_gt_02``: P(g > 0), P(g > 0.2); ``bf_effect``,
    ``bf_heterogeneity``: inclusion Bayes factors (model averaging); ``sens_*``: the range of
    P(g > 0) and of the median over the prior-sensitivity table.
    """

    level: str
    label: str
    k_studies: int
    k_effects: int
    model: str
    median: float
    ci_low: float
    ci_high: float
    p_gt_0: float
    p_gt_02: float
    tau_median: float
    bf_effect: float
    bf_heterogeneity: float
    sens_p_gt_0_low: float
    sens_p_gt_0_high: float
    sens_median_low: float
    sens_median_high: float
    n_priors: int
    note: str


def bayes_facts(table: pd.DataFrame, sensitivity: pd.DataFrame,
                grouping: str = "component") -> list[BayesFacts]:
    """One :class:`BayesFacts` per row of ``table`` with ``grouping``, in table order."""
    facts = []
    for row in table[table["grouping"] == grouping].to_dict("records"):
        sens = sensitivity[(sensitivity["grouping"] == grouping)
                           & (sensitivity["level"] == row["level"])]
        (p_low, p_high), (m_low, m_high) = _span(sens, "p_gt_0"), _span(sens, "estimate")
        facts.append(BayesFacts(
            level=row["level"], label=LABELS.get(row["level"], level_label(row["level"])),
            k_studies=int(row["k_studies"]), k_effects=int(row["k_effects"]),
            model=_text(row["model"]), median=row["estimate"], ci_low=row["ci_low"],
            ci_high=row["ci_high"], p_gt_0=row["p_gt_0"], p_gt_02=row["p_gt_0.2"],
            tau_median=row["tau_median"], bf_effect=row["bf_effect"],
            bf_heterogeneity=row["bf_heterogeneity"], sens_p_gt_0_low=p_low,
            sens_p_gt_0_high=p_high, sens_median_low=m_low, sens_median_high=m_high,
            n_priors=len(sens), note=_text(row["note"]),
        ))
    return facts


def _span(sens: pd.DataFrame, column: str) -> tuple[float, float]:
    """Smallest and largest value of ``column`` over the prior combinations (NaN if none)."""
    if not len(sens):
        return math.nan, math.nan
    return float(sens[column].min()), float(sens[column].max())


def _text(value: object) -> str:
    """A text cell; empty for a missing one (NaN after a CSV round trip)."""
    return value if isinstance(value, str) else ""


def _bf(bf: float, what: str) -> str:
    if bf >= 1:
        return f"{_num(bf)} in favour of {what}"
    return f"{_num(bf)} (i.e. {_num(1 / bf)} against {what})"


def _num(x: float) -> str:
    if x >= 1000:
        exponent = math.floor(math.log10(x))
        return f"{x / 10**exponent:.1f} × 10^{exponent}"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


def bayes_sentences(facts: Sequence[BayesFacts]) -> str:
    """A paragraph for summary.md: per component the posterior median and 95% CrI of g,
    P(g > 0), P(g > 0.2), the inclusion Bayes factors and how much the prior moves P(g > 0)."""
    parts = [
        "Bayesian random-effects estimates (CHE structure where studies report several "
        "effects; heterogeneity prior half-normal(0.5), effect prior normal(0, 1), both on "
        "the Hedges' g scale) say what the few studies support:"
    ]
    for f in facts:
        if f.k_studies == 0:
            parts.append(f"{f.label}: no studies yet.")
            continue
        studies = f"{f.k_studies} {'study' if f.k_studies == 1 else 'studies'}"
        text = (f"{f.label} ({studies}, {f.k_effects} effects): g = {f.median:.2f} "
                f"(95% CrI {f.ci_low:.2f} to {f.ci_high:.2f}); P(g > 0) = {f.p_gt_0:.2f}, "
                f"P(g > 0.2) = {f.p_gt_02:.2f}; inclusion Bayes factor "
                f"{_bf(f.bf_effect, 'an effect')}, "
                f"{_bf(f.bf_heterogeneity, 'heterogeneity')}")
        if f.n_priors:
            text += (f"; across {f.n_priors} prior combinations P(g > 0) ranges from "
                     f"{f.sens_p_gt_0_low:.2f} to {f.sens_p_gt_0_high:.2f} and the median "
                     f"from {f.sens_median_low:.2f} to {f.sens_median_high:.2f}")
        if f.note:
            text += f" ({f.note})"
        parts.append(text + ".")
    return " ".join(parts)


def bayes_sensitivity_table(sensitivity: pd.DataFrame) -> str:
    """The prior-sensitivity table as Markdown: one row per (component, tau prior, mu prior)
    with the posterior median and 95% CrI of g, P(g > 0), P(g > 0.2) and BF(mu != 0)."""
    lines = ["| component | τ prior | μ prior | g (95% CrI) | P(g > 0) | P(g > 0.2) | BF(μ ≠ 0) |",
             "|---|---|---|---|---|---|---|"]
    for row in sensitivity.to_dict("records"):
        bf = row["bf_effect"]
        lines.append(
            f"| {LABELS.get(row['level'], level_label(row['level']))} "
            f"| {row['tau_prior']} | {row['mu_prior']} "
            f"| {row['estimate']:.2f} ({row['ci_low']:.2f} to {row['ci_high']:.2f}) "
            f"| {row['p_gt_0']:.3f} | {row['p_gt_0.2']:.3f} "
            f"| {'—' if math.isnan(bf) else _num(bf)} |")
    return "\n".join(lines)
