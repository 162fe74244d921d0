"""Summary of findings (GRADE style): one row per group, and only what the data can say.

For each level of a coding column (and all effects together) the table gives k studies
and effects, participants, the pooled g with its confidence and prediction intervals, and
the GRADE certainty domains that pooled numbers can speak to.  Each domain is reported as
the numbers behind it plus a ``*_concern`` column ("yes" / "no" / "not assessable") set by
the rule stated below — never by judgement.  Domains that need judgement are said to be
not assessed, and the overall certainty is not rated.

Rules (GRADE handbook, Schünemann et al. 2013; Guyatt et al. 2011, *J. Clin. Epidemiol.*
series "GRADE guidelines"):

* **Risk of bias** (GRADE 4: Guyatt et al. 2011, *J Clin Epidemiol* 64:407–415) needs a
  study-by-study appraisal.  Without ``risk_of_bias`` it is "not assessed".  With a frame
  of ``study_id`` and ``risk_of_bias`` (RoB 2 overall judgements "low", "some concerns",
  "high"; Sterne et al. 2019, *BMJ* 366:l4898) the counts and the share of the pooled
  weight at high risk are reported; no concern is derived from them.
* **Inconsistency** (GRADE 7: Guyatt et al. 2011, *J Clin Epidemiol* 64:1294–1302):
  I² and the prediction interval.  Concern when I² >= 50 % ("may represent substantial
  heterogeneity", Cochrane Handbook v6.4 §10.10.2) or when the prediction interval
  includes 0 while the confidence interval excludes it (the effect in a new setting may
  be null or reversed; IntHout et al. 2016, *BMJ Open* 6:e010247).  Not assessable with
  fewer than 2 studies.
* **Imprecision** (GRADE 6: Guyatt et al. 2011, *J Clin Epidemiol* 64:1283–1293): the
  confidence interval, its degrees of freedom and the optimal information size.  Concern
  when the CI includes 0; when the (Satterthwaite) df are below 4, where cluster-robust
  intervals are unreliable (Tipton 2015, *Psychol Methods* 20:375–393); or when the
  participants fall short of the optimal information size
  OIS = 4 (z₁₋α/₂ + z₁₋β)² / δ², the total two-arm sample a single trial needs to detect a
  standardised difference δ (``smallest_effect``) with α = 0.05 two-sided and power
  1 − β = 0.8 (Cohen 1988, ch. 2; GRADE 6's OIS criterion).
* **Publication bias** (GRADE 5: Guyatt et al. 2011, *J Clin Epidemiol* 64:1277–1282):
  small-study tests need at least 10 studies (Sterne et al. 2011, *BMJ* 343:d4002); below
  that "not assessable".  From 10 studies, Egger's regression test on every effect with
  cluster-robust (CR2) inference, "Egger's sandwich" (Rodgers & Pustejovsky 2021,
  *Psychol Methods* 26:141–160); concern when p < 0.10 (Egger et al. 1997, *BMJ*
  315:629–634).
* **Indirectness** needs a comparison of the studies' populations, interventions and
  outcomes with the review question: "not assessed".

``loo_ci_includes_0`` counts the studies whose omission alone leaves a confidence
interval that includes 0 (leave-one-out, each fit with the same model); a reader sees
how fragile the interval is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from metaally.diagnostics.bias import egger_test
from metaally.models.pooling import PooledGroup, pool_groups

__all__ = [
    "EGGER_ALPHA",
    "FINDINGS_COLUMNS",
    "I2_SUBSTANTIAL",
    "MIN_DF",
    "MIN_STUDIES_BIAS",
    "RISK_LEVELS",
    "optimal_information_size",
    "summary_of_findings",
]

FINDINGS_COLUMNS: list[str] = [
    "grouping", "level", "k_studies", "k_effects", "participants", "estimate", "ci_low",
    "ci_high", "pi_low", "pi_high", "df", "i2", "loo_ci_includes_0", "risk_of_bias",
    "inconsistency", "inconsistency_concern", "imprecision", "imprecision_concern",
    "publication_bias", "publication_bias_concern", "indirectness", "certainty",
]

I2_SUBSTANTIAL = 50.0
MIN_DF = 4.0
MIN_STUDIES_BIAS = 10
EGGER_ALPHA = 0.10
RISK_LEVELS = ("low", "some concerns", "high")


def optimal_information_size(smallest_effect: float, alpha: float = 0.05,
                             power: float = 0.8) -> float:
    """Total two-arm sample size OIS = 4 (z₁₋α/₂ + z_power)² / δ² that detects a
    standardised mean difference δ = ``smallest_effect`` (Cohen 1988, ch. 2)."""
    if not (math.isfinite(smallest_effect) and smallest_effect > 0):
        raise ValueError(f"smallest_effect must be a positive number; got {smallest_effect!r}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie strictly between 0 and 1")
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return 4 * z**2 / smallest_effect**2


def summary_of_findings(
    effects: pd.DataFrame,
    by: str | None,
    *,
    levels: Sequence[str] | None = None,
    model: str = "che",
    rho: float = 0.6,
    method: str = "REML",
    participants: pd.DataFrame | None = None,
    risk_of_bias: pd.DataFrame | None = None,
    smallest_effect: float = 0.2,
    overall: bool = True,
) -> pd.DataFrame:
    """The summary-of-findings table (columns ``FINDINGS_COLUMNS``), one row per level of
    ``by`` (as ``pool_groups(effects, by, model, rho, method, levels)`` pools them) and,
    with ``overall``, one for all included effects.  Rules: module docstring.

    ``participants``: a frame with ``study_id`` and ``n`` (a study's total sample; the first
    row per study is used); without it a study counts ``max(n1 + n2)`` over its effects
    (the participants in its largest comparison).  ``risk_of_bias``: optional frame with
    ``study_id`` and ``risk_of_bias`` (one of ``RISK_LEVELS``).  ``smallest_effect``: the
    smallest standardised difference worth detecting, for the optimal information size.
    """
    ois = optimal_information_size(smallest_effect)
    sizes = _study_sizes(effects, participants)
    risks = _risks(risk_of_bias)
    groups = [] if by is None else pool_groups(effects, by, model, rho, method, levels)
    if overall or by is None:
        groups += pool_groups(effects, None, model, rho, method)
    rows = []
    fragility: dict[tuple, float] = {}  # levels holding the same effects share one count
    for group in groups:
        members = _members(effects, group)
        key = tuple(members["es_id"])
        if key not in fragility:
            fragility[key] = _fragility(members, group, model, rho, method)
        studies = list(group.studies["study_id"]) if group.k_studies else []
        n = float(sum(sizes.get(s, math.nan) for s in studies)) if studies else 0.0
        rows.append({
            "grouping": group.grouping, "level": group.level,
            "k_studies": group.k_studies, "k_effects": group.k_effects, "participants": n,
            "estimate": group.estimate, "ci_low": group.ci_low, "ci_high": group.ci_high,
            "pi_low": group.pi_low, "pi_high": group.pi_high, "df": group.df, "i2": group.i2,
            "loo_ci_includes_0": fragility[key],
            "risk_of_bias": _risk_text(group, risks),
            **_inconsistency(group), **_imprecision(group, n, ois, smallest_effect),
            **_publication_bias(members, group, rho),
            "indirectness": "not assessed (needs a judgement of populations, interventions "
                            "and outcomes against the question)",
            "certainty": "not rated: risk of bias and indirectness need judgement",
        })
    return pd.DataFrame(rows, columns=FINDINGS_COLUMNS)


# --- the domains ------------------------------------------------------------------------


def _includes_zero(low: float, high: float) -> bool:
    return low <= 0 <= high


def _interval(low: float, high: float) -> str:
    return f"{low:.2f} to {high:.2f}"


def _inconsistency(g: PooledGroup) -> dict[str, str]:
    if g.k_studies < 2:
        return {"inconsistency": "one study or none: no between-study variation to assess",
                "inconsistency_concern": "not assessable"}
    reasons = []
    text = f"I² = {g.i2:.0f}%"
    if g.i2 >= I2_SUBSTANTIAL:
        reasons.append(f"I² >= {I2_SUBSTANTIAL:.0f}%")
    if math.isfinite(g.pi_low) and math.isfinite(g.pi_high):
        pi_zero = _includes_zero(g.pi_low, g.pi_high)
        text += (f"; 95% PI {_interval(g.pi_low, g.pi_high)}"
                 + (" includes 0" if pi_zero else " excludes 0"))
        if pi_zero and not _includes_zero(g.ci_low, g.ci_high):
            reasons.append("PI includes 0 while the CI excludes it")
    return {"inconsistency": text + ("" if not reasons else f" ({'; '.join(reasons)})"),
            "inconsistency_concern": "yes" if reasons else "no"}


def _imprecision(g: PooledGroup, n: float, ois: float, delta: float) -> dict[str, str]:
    if g.k_studies == 0:
        return {"imprecision": "no studies", "imprecision_concern": "not assessable"}
    reasons = []
    text = f"95% CI {_interval(g.ci_low, g.ci_high)}"
    if _includes_zero(g.ci_low, g.ci_high):
        reasons.append("CI includes 0")
    if math.isfinite(g.df):
        text += f"; df = {g.df:.1f}"
        if g.df < MIN_DF:
            reasons.append(f"df < {MIN_DF:.0f}")
    if math.isfinite(n):
        text += f"; {n:,.0f} participants (OIS for g = {delta:g}: {math.ceil(ois):,})"
        if n < ois:
            reasons.append("participants below the OIS")
    return {"imprecision": text + ("" if not reasons else f" ({'; '.join(reasons)})"),
            "imprecision_concern": "yes" if reasons else "no"}


def _publication_bias(members: pd.DataFrame, g: PooledGroup, rho: float) -> dict[str, str]:
    if g.k_studies < MIN_STUDIES_BIAS:
        return {"publication_bias": f"{g.k_studies} studies: small-study tests need at least "
                                    f"{MIN_STUDIES_BIAS}",
                "publication_bias_concern": "not assessable"}
    test = egger_test(members["yi"], members["vi"], study=members["study_id"], rho=rho)
    return {"publication_bias": f"Egger's sandwich test p = {test.pvalue:.3f} "
                                f"(df = {test.df:.1f})",
            "publication_bias_concern": "yes" if test.pvalue < EGGER_ALPHA else "no"}


def _risk_text(g: PooledGroup, risks: dict[str, str] | None) -> str:
    if risks is None:
        return "not assessed"
    if g.k_studies == 0:
        return "no studies"
    studies = g.studies
    judged = [risks.get(s, "not appraised") for s in studies["study_id"]]
    counts = [f"{judged.count(level)} {level}" for level in (*RISK_LEVELS, "not appraised")
              if judged.count(level)]
    weight = studies["weight"].to_numpy(dtype=float)
    high = weight[np.array([j == "high" for j in judged])].sum() / weight.sum() * 100
    return f"{', '.join(counts)}; {high:.0f}% of the weight at high risk"


def _fragility(members: pd.DataFrame, g: PooledGroup, model: str, rho: float,
               method: str) -> float:
    """Studies whose omission alone leaves a CI that includes 0 (NaN below 2 studies)."""
    if g.k_studies < 2:
        return math.nan
    count = 0
    for study in g.studies["study_id"]:
        rest = members[members["study_id"] != study]
        fit = pool_groups(rest, None, model, rho, method)[0]
        count += _includes_zero(fit.ci_low, fit.ci_high)
    return float(count)


# --- inputs -----------------------------------------------------------------------------


def _members(effects: pd.DataFrame, g: PooledGroup) -> pd.DataFrame:
    included = effects[effects["included"].astype(bool)]
    if g.grouping == "overall":
        return included
    cells = included[g.grouping].fillna("").astype(str).str.split(";")
    return included[cells.apply(lambda names: g.level in [n.strip() for n in names])]


def _study_sizes(effects: pd.DataFrame, participants: pd.DataFrame | None) -> dict[str, float]:
    if participants is not None:
        missing = [c for c in ("study_id", "n") if c not in participants]
        if missing:
            raise ValueError(f"participants is missing column(s) {', '.join(missing)}")
        first = participants.drop_duplicates("study_id")
        return dict(zip(first["study_id"], pd.to_numeric(first["n"], errors="coerce"),
                        strict=True))
    if "n1" not in effects or "n2" not in effects:
        return {}
    total = pd.to_numeric(effects["n1"], errors="coerce") + pd.to_numeric(effects["n2"],
                                                                          errors="coerce")
    return total.groupby(effects["study_id"]).max().to_dict()


def _risks(frame: pd.DataFrame | None) -> dict[str, str] | None:
    if frame is None:
        return None
    missing = [c for c in ("study_id", "risk_of_bias") if c not in frame]
    if missing:
        raise ValueError(f"risk_of_bias is missing column(s) {', '.join(missing)}")
    values = frame["risk_of_bias"].astype(str).str.strip().str.lower()
    bad = sorted(set(values) - set(RISK_LEVELS))
    if bad:
        raise ValueError(f"risk_of_bias: unknown judgement(s) {', '.join(bad)} "
                         f"(expected {', '.join(RISK_LEVELS)})")
    return dict(zip(frame["study_id"], values, strict=True))
