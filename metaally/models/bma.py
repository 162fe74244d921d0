"""Bayesian model averaging over fixed/random effects x no effect/effect, and prior sensitivity.

Model averaging as metaBMA (Gronau et al. 2017, "A Bayesian model-averaged meta-analysis of
the power pose effect", Compr Results Soc Psychol 2:123-138; Heck, Gronau & Wagenmakers,
R package metaBMA): four models

    fixed H0: mu = 0, tau = 0          fixed H1: mu ~ p(mu), tau = 0
    random H0: mu = 0, tau ~ p(tau)    random H1: mu ~ p(mu), tau ~ p(tau)

with prior probabilities pi_m (default 1/4 each).  Their marginal likelihoods p(y | M) are
closed-form for the fixed models and one- (or, for the CHE structure, two-) dimensional
integrals over the variance components for the random ones, computed by the adaptive
quadrature of :mod:`metaally.models.bayes`.  Posterior model probabilities are
pi_m p(y | M) / sum_n pi_n p(y | n); the inclusion Bayes factor for the effect is the
posterior odds of {fixed H1, random H1} against {fixed H0, random H0} divided by their prior
odds, and that for heterogeneity the same for {random H0, random H1} against the fixed pair.
The model-averaged posterior of mu mixes the posteriors of mu under fixed H1 and random H1
with weights proportional to their posterior probabilities (metaBMA's ``bma``/``meta_bma``
average over the models with an effect).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.bayes import (
    NO_PVALUE,
    SMD_MU_PRIOR,
    SMD_TAU_PRIOR,
    MuPrior,
    NormalMixture,
    StudyTerms,
    _Axis,
    bayes_random_effects,
    conditional,
    describe_prior,
    integrate,
)
from metaally.models.bayes_multilevel import bayes_multilevel, che_terms
from metaally.models.blocks import cluster_blocks
from metaally.models.inputs import check_level, effect_arrays
from metaally.models.printing import Printable, fmt_num

__all__ = [
    "MODELS",
    "ModelAverageResult",
    "SMD_MU_PRIORS",
    "SMD_TAU_PRIORS",
    "bayes_model_average",
    "bayes_prior_sensitivity",
]

MODELS = ("fixed_H0", "fixed_H1", "random_H0", "random_H1")


@dataclass(frozen=True, eq=False)
class ModelAverageResult(Printable):
    """Bayesian model-averaged meta-analysis (metaBMA's ``meta_bma``).

    Protocol fields describe the model-averaged mu: ``estimate`` its posterior median,
    ``se`` its posterior sd, ``ci_low``/``ci_high`` the equal-tailed interval at ``level``;
    ``pvalue`` NaN (see ``pvalue_note``), ``df`` NaN.  ``models`` has one row per model
    (prior and posterior probability, log marginal likelihood, posterior median and interval
    of mu); ``bf_effect`` and ``bf_heterogeneity`` are the inclusion Bayes factors.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    df: float
    k: int
    n_clusters: int
    level: float
    bf_effect: float
    bf_heterogeneity: float
    models: pd.DataFrame
    mu_prior: str
    tau_prior: str
    structure: str
    mu: NormalMixture = field(repr=False)
    pvalue_note: str = NO_PVALUE

    def prob_greater(self, x: float = 0.0) -> float:
        """Model-averaged posterior probability P(mu > x | y, an effect exists)."""
        return float(self.mu.sf(x))

    def to_frame(self) -> pd.DataFrame:
        """One row per model (``models``)."""
        return self.models.copy()

    def summary(self) -> str:
        """Printout in the spirit of metaBMA's ``print(meta_bma(...))``."""
        lines = [
            f"Bayesian model averaging over fixed/random x H0/H1 (k = {self.k}; "
            f"{self.structure})",
            "",
            f"mu prior (H1): {self.mu_prior}",
            f"tau prior (random): {self.tau_prior}",
            "",
            f"{'model':<11}{'prior':>8}{'posterior':>11}{'logml':>11}"
            f"{'median':>9}{'ci.lb':>9}{'ci.ub':>9}",
        ]
        for row in self.models.itertuples():
            lines.append(
                f"{row.model:<11}{fmt_num(row.prior_prob, 3):>8}"
                f"{fmt_num(row.posterior_prob, 4):>11}{fmt_num(row.log_marginal_likelihood, 3):>11}"
                f"{fmt_num(row.median):>9}{fmt_num(row.ci_low):>9}{fmt_num(row.ci_high):>9}"
            )
        lines += [
            "",
            f"Inclusion Bayes factor, effect (H1 vs H0): {self.bf_effect:.4g}",
            f"Inclusion Bayes factor, heterogeneity (random vs fixed): "
            f"{self.bf_heterogeneity:.4g}",
            "",
            f"Model-averaged mu (over fixed H1 and random H1): median {fmt_num(self.estimate)}, "
            f"sd {fmt_num(self.se)}, {100 * self.level:g}% CrI "
            f"[{fmt_num(self.ci_low)}, {fmt_num(self.ci_high)}]",
            f"P(mu > 0) = {fmt_num(self.prob_greater(0.0))}",
        ]
        return "\n".join(lines)


def _terms(yi: Any, vi: Any, study: Any, rho: float) -> StudyTerms:
    if study is None:
        y, v, _, _ = effect_arrays(yi, vi)
        return StudyTerms.independent(y, v)
    if not (np.ndim(rho) == 0 and -1.0 < float(rho) < 1.0):
        raise ValueError(f"rho must be a number between -1 and 1; got {rho!r}")
    y, v, (labels,), _ = effect_arrays(yi, vi, np.asarray(study, dtype=object).reshape(-1),
                                       names=["study"])
    blocks = cluster_blocks(labels)
    return che_terms(y, v, blocks.codes, blocks.n_clusters, float(rho))


def bayes_model_average(
    yi: Any,
    vi: Any,
    study: Any = None,
    *,
    rho: float = 0.6,
    mu_prior: Any = SMD_MU_PRIOR,
    tau_prior: Any = SMD_TAU_PRIOR,
    prior_probs: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
    level: float = 0.95,
) -> ModelAverageResult:
    """Average the fixed/random x no-effect/effect models (metaBMA; Gronau et al. 2017).

    ``mu_prior`` must be a proper normal (frozen ``scipy.stats.norm``; default N(0, 1),
    :data:`metaally.models.bayes.SMD_MU_PRIOR`), ``tau_prior`` any proper prior on tau >= 0
    (default half-normal, scale 0.5).  With ``study`` the effects are dependent: the random
    models are the CHE model (tau_study and tau_within, both with ``tau_prior``; sampling
    correlation ``rho`` within a study, as :func:`bayes_multilevel`) and the fixed models
    keep the correlated sampling errors with both components at 0.  ``prior_probs`` are the
    prior probabilities of fixed H0, fixed H1, random H0, random H1.  See the module
    docstring for the formulas.
    """
    level = check_level(level)
    prior = MuPrior.from_arg(mu_prior)
    if prior.flat:
        raise ValueError("mu_prior must be a proper normal prior: Bayes factors need one")
    probs = np.asarray(prior_probs, dtype=float)
    if probs.shape != (4,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
        raise ValueError("prior_probs must be four non-negative numbers summing to 1 "
                         f"(fixed H0, fixed H1, random H0, random H1); got {prior_probs!r}")
    terms = _terms(yi, vi, study, rho)
    second = _Axis.make("tau_within", None if study is None else tau_prior)
    axes = (_Axis.make("tau", tau_prior), second)
    zero = np.zeros(1)
    null = MuPrior(0.0, 0.0)
    log_fixed_h0 = float(conditional(terms, null, zero, zero)[0][0, 0])
    loglik_h1, m_fixed, s_fixed, _ = conditional(terms, prior, zero, zero)
    log_random_h0 = integrate(terms, null, axes).log_evidence
    random_h1 = integrate(terms, prior, axes)
    logml = np.array([log_fixed_h0, float(loglik_h1[0, 0]), log_random_h0,
                      random_h1.log_evidence])
    with np.errstate(divide="ignore"):
        log_post = np.log(probs) + logml
    post = np.exp(log_post - np.max(log_post))
    post /= post.sum()
    fixed_mix = NormalMixture(m_fixed.ravel(), s_fixed.ravel(), np.ones(1))
    random_mix = random_h1.grid.mixture
    h1 = post[1] + post[3]
    averaged = NormalMixture(
        np.concatenate([fixed_mix.means, random_mix.means]),
        np.concatenate([fixed_mix.sds, random_mix.sds]),
        np.concatenate([fixed_mix.weights * post[1] / h1, random_mix.weights * post[3] / h1]),
    )
    nan = math.nan
    rows = []
    for name, p_prior, lml, p_post, mix in zip(
        MODELS, probs, logml, post, [None, fixed_mix, None, random_mix], strict=True
    ):
        # under H0 mu is 0: a point mass
        lo, hi = mix.interval(level) if mix is not None else (0.0, 0.0)
        rows.append({"model": name, "prior_prob": p_prior, "log_marginal_likelihood": lml,
                     "posterior_prob": p_post, "median": mix.quantile(0.5) if mix else 0.0,
                     "ci_low": lo, "ci_high": hi})
    lo, hi = averaged.interval(level)
    return ModelAverageResult(
        estimate=averaged.quantile(0.5), se=averaged.sd, ci_low=lo, ci_high=hi, pvalue=nan,
        df=nan, k=terms.k, n_clusters=int(terms.lam.shape[0]), level=level,
        bf_effect=_inclusion(post, probs, [1, 3]), bf_heterogeneity=_inclusion(post, probs, [2, 3]),
        models=pd.DataFrame(rows), mu_prior=prior.describe(),
        tau_prior=describe_prior(tau_prior),
        structure="independent effects" if study is None else f"CHE, rho = {rho:g}",
        mu=averaged,
    )


def _inclusion(post: np.ndarray, prior: np.ndarray, members: list[int]) -> float:
    """Posterior odds of the models in ``members`` against the rest over their prior odds."""
    inside = np.zeros(4, dtype=bool)
    inside[members] = True
    prior_odds = prior[inside].sum() / prior[~inside].sum()
    with np.errstate(divide="ignore"):
        return float(post[inside].sum() / post[~inside].sum() / prior_odds)


#: Heterogeneity priors of the sensitivity table (SMD scale), with their sources.
SMD_TAU_PRIORS: dict[str, Any] = {
    "half-normal(0.5)": SMD_TAU_PRIOR,  # default; Röver et al. 2021
    "half-normal(0.25)": stats.halfnorm(scale=0.25),  # more sceptical of heterogeneity
    "half-Cauchy(0.5)": stats.halfcauchy(scale=0.5),  # heavy tail (Gelman 2006)
    "inverse-gamma(1, 0.15)": stats.invgamma(1.0, scale=0.15),  # Gronau et al. 2017; metaBMA
}
#: Effect priors of the sensitivity table: the weakly informative default and a flat prior.
SMD_MU_PRIORS: dict[str, Any] = {"normal(0, 1)": SMD_MU_PRIOR, "flat": None}


def bayes_prior_sensitivity(
    yi: Any,
    vi: Any,
    study: Any = None,
    *,
    rho: float = 0.6,
    tau_priors: Mapping[str, Any] | None = None,
    mu_priors: Mapping[str, Any] | None = None,
    thresholds: Sequence[float] = (0.0, 0.2),
    level: float = 0.95,
) -> pd.DataFrame:
    """The posterior of mu under every combination of heterogeneity and effect priors.

    One row per (tau prior, mu prior): posterior median, sd and equal-tailed interval of mu,
    P(mu > t) for each of ``thresholds`` (columns ``p_gt_<t>``), the posterior median of tau
    (of tau_study with ``study``), and BF(mu != 0), BF(tau > 0) (NaN for a flat mu prior).
    Defaults: :data:`SMD_TAU_PRIORS` x :data:`SMD_MU_PRIORS`.  With ``study`` each fit is
    :func:`bayes_multilevel` with the tau prior on both components, else
    :func:`bayes_random_effects`.
    """
    tau_priors = SMD_TAU_PRIORS if tau_priors is None else dict(tau_priors)
    mu_priors = SMD_MU_PRIORS if mu_priors is None else dict(mu_priors)
    rows = []
    for tau_name, tau_prior in tau_priors.items():
        for mu_name, mu_prior in mu_priors.items():
            if study is None:
                res = bayes_random_effects(yi, vi, mu_prior=mu_prior, tau_prior=tau_prior,
                                           level=level)
            else:
                res = bayes_multilevel(yi, vi, study, rho=rho, mu_prior=mu_prior,
                                       tau_study_prior=tau_prior, tau_within_prior=tau_prior,
                                       level=level)
            row = {"tau_prior": tau_name, "mu_prior": mu_name, "estimate": res.estimate,
                   "se": res.se, "ci_low": res.ci_low, "ci_high": res.ci_high}
            row |= {f"p_gt_{t:g}": res.prob_greater(t) for t in thresholds}
            row |= {"tau_median": res.tau_median(),
                    "bf_effect": res.bf_effect, "bf_heterogeneity": res.bf_heterogeneity}
            rows.append(row)
    return pd.DataFrame(rows)
