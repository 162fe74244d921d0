"""Bayesian estimates per level of a coding column, as :func:`metaally.pool_by` groups them.

``bayes_by(effects, by)`` selects the included effects of each level exactly as ``pool_by``
does (a ";"-list puts an effect in every level it names; a level without studies gives a
"no studies yet" row) and fits, per level:

* the Bayesian CHE model (:func:`metaally.bayes_multilevel`, tau_study and tau_within) when a
  study contributes several effects, else the univariate model
  (:func:`metaally.bayes_random_effects`); the posterior median of mu, its equal-tailed
  interval, P(mu > t) for each threshold and the posterior median of tau_study (tau);
* the model average over fixed/random x H0/H1 (:func:`metaally.bayes_model_average`, same
  dependence structure): inclusion Bayes factors for the effect and for heterogeneity and the
  posterior probability that an effect exists.

With one study the between-study heterogeneity is informed by its prior alone: the row says
so in ``note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from metaally.models.bayes import SMD_MU_PRIOR, SMD_TAU_PRIOR, BayesResult, bayes_random_effects
from metaally.models.bayes_multilevel import bayes_multilevel
from metaally.models.bma import bayes_model_average
from metaally.models.pooling import (
    NOTE_NO_STUDIES,
    check_effects,
    coding_cells,
    coding_levels,
    level_mask,
)

__all__ = [
    "BAYES_COLUMNS",
    "NOTE_ONE_STUDY",
    "bayes_by",
    "bayes_fit",
]

NOTE_ONE_STUDY = "one study: between-study heterogeneity from its prior alone"

BAYES_COLUMNS: list[str] = [
    "grouping", "level", "k_studies", "k_effects", "model", "estimate", "sd", "ci_low",
    "ci_high", "p_gt_0", "p_gt_0.2", "tau_median", "bf_effect", "bf_heterogeneity",
    "post_prob_effect", "note",
]


def bayes_fit(data: pd.DataFrame, *, rho: float = 0.6, mu_prior: Any = SMD_MU_PRIOR,
              tau_prior: Any = SMD_TAU_PRIOR, level: float = 0.95) -> BayesResult:
    """The Bayesian model of one group: CHE when a study has several effects, else
    univariate (``data`` has columns yi, vi, study_id)."""
    if data["study_id"].duplicated().any():
        return bayes_multilevel(data["yi"], data["vi"], data["study_id"], rho=rho,
                                mu_prior=mu_prior, tau_study_prior=tau_prior,
                                tau_within_prior=tau_prior, level=level)
    return bayes_random_effects(data["yi"], data["vi"], mu_prior=mu_prior, tau_prior=tau_prior,
                                level=level, slab=data["study_id"])


def bayes_by(
    effects: pd.DataFrame,
    by: str | None,
    levels: Sequence[str] | None = None,
    *,
    rho: float = 0.6,
    mu_prior: Any = SMD_MU_PRIOR,
    tau_prior: Any = SMD_TAU_PRIOR,
    thresholds: Sequence[float] = (0.0, 0.2),
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per level of ``by`` (``None``: all included effects, level "overall").

    Columns ``BAYES_COLUMNS`` (``p_gt_<t>`` for each of ``thresholds``): k studies and
    effects, the model ("che" or "univariate"), the posterior median (``estimate``), sd and
    equal-tailed interval of mu, P(mu > t), the posterior median of tau_study (tau), the
    inclusion Bayes factors ``bf_effect`` and ``bf_heterogeneity`` and the posterior
    probability of an effect from the model average, and a ``note``.  ``mu_prior`` must be
    proper (the Bayes factors need it).
    """
    check_effects(effects, [] if by is None else [by])
    included = effects[effects["included"].astype(bool)]
    if by is None:
        groups = [("overall", "overall", included)]
    else:
        levels = coding_levels(effects[by], levels)
        cells = coding_cells(included[by])
        groups = [(by, lv, included[level_mask(cells, lv)]) for lv in levels]
    probs = [f"p_gt_{t:g}" for t in thresholds]
    at = BAYES_COLUMNS.index("p_gt_0")
    columns = BAYES_COLUMNS[:at] + probs + BAYES_COLUMNS[at + 2:]
    rows = [_row(grouping, lv, data, rho, mu_prior, tau_prior, thresholds, level)
            for grouping, lv, data in groups]
    return pd.DataFrame(rows, columns=columns)


def _row(grouping: str, lv: str, data: pd.DataFrame, rho: float, mu_prior: Any, tau_prior: Any,
         thresholds: Sequence[float], level: float) -> dict[str, Any]:
    k_studies = int(data["study_id"].nunique())
    row: dict[str, Any] = {"grouping": grouping, "level": lv, "k_studies": k_studies,
                           "k_effects": len(data)}
    if k_studies == 0:
        return row | {"model": "", "note": NOTE_NO_STUDIES}
    several = bool(data["study_id"].duplicated().any())
    fit = bayes_fit(data, rho=rho, mu_prior=mu_prior, tau_prior=tau_prior, level=level)
    bma = bayes_model_average(data["yi"], data["vi"], data["study_id"] if several else None,
                              rho=rho, mu_prior=mu_prior, tau_prior=tau_prior, level=level)
    post = bma.models.set_index("model")["posterior_prob"]
    return row | {
        "model": "che" if several else "univariate",
        "estimate": fit.estimate, "sd": fit.se, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
        **{f"p_gt_{t:g}": fit.prob_greater(t) for t in thresholds},
        "tau_median": fit.tau_median(),
        "bf_effect": bma.bf_effect, "bf_heterogeneity": bma.bf_heterogeneity,
        "post_prob_effect": float(post["fixed_H1"] + post["random_H1"]),
        "note": NOTE_ONE_STUDY if k_studies == 1 else "",
    }
