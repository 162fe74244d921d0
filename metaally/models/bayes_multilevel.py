"""Bayesian CHE model for dependent effects: two variance components integrated numerically.

The correlated-and-hierarchical-effects working model of :mod:`metaally.models.multilevel`
(Pustejovsky & Tipton 2022, Prev Sci 23:425-438) with priors::

    y_ij = mu + u_j + w_ij + e_ij,  u_j ~ N(0, tau_study^2),  w_ij ~ N(0, tau_within^2),
    Var(e_j) = V_j (v_a on the diagonal, rho sqrt(v_a v_b) off it),
    mu ~ flat or N(m0, s0^2),  tau_study ~ p_s,  tau_within ~ p_w (independent).

Given (tau_study, tau_within) the model is Gaussian and mu is integrated analytically
(Sigma_j = V_j + tau_within^2 I + tau_study^2 11'; see :func:`metaally.models.bayes.conditional`,
which uses each V_j's eigendecomposition so that a grid point costs O(k)); the two
components are integrated on an adaptive tensor Gauss-Legendre grid
(:func:`metaally.models.bayes.integrate`).  With one effect per study only
tau_study^2 + tau_within^2 enters the likelihood, and the model is the univariate one with
the prior of tau = sqrt(tau_study^2 + tau_within^2) (e.g. two half-normal(s) priors give
tau ~ Rayleigh(s)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metaally.models.bayes import (
    SMD_TAU_PRIOR,
    BayesResult,
    StudyTerms,
    _Axis,
    fit,
)
from metaally.models.blocks import cluster_blocks, cs_covariance
from metaally.models.inputs import effect_arrays

__all__ = [
    "bayes_multilevel",
    "che_terms",
]


def che_terms(y: np.ndarray, v: np.ndarray, codes: np.ndarray, n_studies: int,
              rho: float) -> StudyTerms:
    """Each study's V_j = Q diag(lam) Q' with u = Q'1 and z = Q'y_j, padded to the largest
    study (the form :class:`StudyTerms` needs)."""
    sizes = np.bincount(codes, minlength=n_studies)
    width = int(sizes.max())
    lam = np.ones((n_studies, width))
    u = np.zeros((n_studies, width))
    z = np.zeros((n_studies, width))
    mask = np.zeros((n_studies, width), dtype=bool)
    for j in range(n_studies):
        rows = np.flatnonzero(codes == j)
        m = rows.size
        vals, vecs = np.linalg.eigh(cs_covariance(v[rows][None, :], rho)[0])
        lam[j, :m] = vals
        u[j, :m] = vecs.sum(axis=0)
        z[j, :m] = vecs.T @ y[rows]
        mask[j, :m] = True
    if np.any(lam[mask] <= 0):
        raise ValueError("the sampling covariance of a study is not positive definite (check rho)")
    return StudyTerms(lam, u, z, mask, int(y.size))


def bayes_multilevel(
    yi: Any,
    vi: Any,
    study: Any,
    *,
    rho: float = 0.6,
    mu_prior: Any = None,
    tau_study_prior: Any = SMD_TAU_PRIOR,
    tau_within_prior: Any = SMD_TAU_PRIOR,
    level: float = 0.95,
) -> BayesResult:
    """Bayesian CHE meta-analysis of dependent effects (study and within-study components).

    ``study`` labels the study of each effect; sampling errors within a study are correlated
    by ``rho`` (compound symmetry, as :func:`metaally.multilevel`).  Priors: ``mu_prior``
    None (flat) or a frozen ``scipy.stats.norm``; ``tau_study_prior`` and
    ``tau_within_prior`` frozen scipy distributions on [0, inf) (default half-normal, scale
    0.5, each; :data:`metaally.models.bayes.SMD_TAU_PRIOR`), or ``tau_within_prior=None`` to
    fix tau_within at 0 (one random effect per study).  The result's table has rows mu,
    tau_study, tau_within and theta_new (a new study's true effect, variance
    tau_study^2 + tau_within^2); ``shrinkage()`` gives each study's true mean effect.
    Bayes factors: BF(mu != 0) and BF(tau > 0) against tau_study = tau_within = 0.
    """
    if not (np.ndim(rho) == 0 and -1.0 < float(rho) < 1.0):
        raise ValueError(f"rho must be a number between -1 and 1; got {rho!r}")
    y, v, (labels,), _ = effect_arrays(yi, vi, np.asarray(study, dtype=object).reshape(-1),
                                       names=["study"])
    blocks = cluster_blocks(labels)
    terms = che_terms(y, v, blocks.codes, blocks.n_clusters, float(rho))
    axes = (_Axis.make("tau_study", tau_study_prior), _Axis.make("tau_within", tau_within_prior))
    if axes[0].fixed:
        raise ValueError("tau_study_prior must be a proper prior distribution")
    return fit(terms, mu_prior, axes, level, yi=y, vi=v, study=blocks.labels,
               model="multilevel", rho=float(rho))
