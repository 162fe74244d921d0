"""Bayesian CHE model and model averaging: reductions, a dense 2-D quad, closed forms.

Expected values come from other routes: the univariate quadrature (reductions), dense
per-study covariance matrices integrated by scipy.integrate.dblquad, closed-form normal
marginal likelihoods, and 1-D quad for the random-effects null.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import metaally as ma

HN = stats.halfnorm(scale=0.5)


def dependent(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    study = np.array([1, 1, 2, 2, 2, 3, 4, 4])
    v = rng.uniform(0.01, 0.06, study.size)
    return rng.normal(0.3, 0.25, study.size), v, study


# --- reductions -------------------------------------------------------------------------------


def test_one_effect_per_study_reduces_to_univariate() -> None:
    """Only tau_s^2 + tau_w^2 is identified; with iid half-normal(s) priors on both,
    sqrt(tau_s^2 + tau_w^2) ~ Rayleigh(s): the univariate model with that prior."""
    rng = np.random.default_rng(1)
    y, v = rng.normal(0.3, 0.3, 6), rng.uniform(0.01, 0.05, 6)
    che = ma.bayes_multilevel(y, v, np.arange(6), mu_prior=stats.norm(0, 1),
                              tau_study_prior=HN, tau_within_prior=HN)
    uni = ma.bayes_random_effects(y, v, mu_prior=stats.norm(0, 1),
                                  tau_prior=stats.rayleigh(scale=0.5))
    for row in ("mu", "theta_new"):
        assert che.table.loc[row].to_numpy() == pytest.approx(uni.table.loc[row].to_numpy(),
                                                              rel=1e-8)
    assert che.log_marginal_likelihood == pytest.approx(uni.log_marginal_likelihood, abs=1e-8)
    assert che.bf_effect == pytest.approx(uni.bf_effect, rel=1e-8)
    assert che.bf_heterogeneity == pytest.approx(uni.bf_heterogeneity, rel=1e-8)


def test_one_effect_per_study_and_no_within_component_is_univariate() -> None:
    rng = np.random.default_rng(2)
    y, v = rng.normal(0.3, 0.3, 5), rng.uniform(0.01, 0.05, 5)
    che = ma.bayes_multilevel(y, v, list("abcde"), tau_study_prior=HN, tau_within_prior=None)
    uni = ma.bayes_random_effects(y, v, tau_prior=HN)
    assert che.table.loc["mu"].to_numpy() == pytest.approx(uni.table.loc["mu"].to_numpy(),
                                                           rel=1e-10)
    assert list(che.table.index) == ["mu", "tau_study", "theta_new"]


def test_within_prior_at_zero_equals_no_within_component() -> None:
    y, v, study = dependent(3)
    tiny = ma.bayes_multilevel(y, v, study, tau_within_prior=stats.halfnorm(scale=1e-10))
    none = ma.bayes_multilevel(y, v, study, tau_within_prior=None)
    assert tiny.table.loc["mu"].to_numpy() == pytest.approx(none.table.loc["mu"].to_numpy(),
                                                            rel=1e-7)


# --- a dense, independent 2-D integral -------------------------------------------------------


def _dense_logml(y, v, study, rho, tau_s, tau_w, mu_sd):
    """log N(y; 0, blockdiag(Sigma_j) + mu_sd^2 J) with dense k x k matrices, for arrays of
    (tau_s, tau_w) at once; mu ~ N(0, mu_sd^2) integrated out."""
    k = y.size
    same = study[:, None] == study[None, :]
    sd = np.sqrt(v)
    base = np.where(same, rho * np.outer(sd, sd), 0.0) + mu_sd**2
    base[np.diag_indices(k)] = v + mu_sd**2
    cov = (base + same * (tau_s**2)[:, None, None]
           + np.eye(k) * (tau_w**2)[:, None, None])
    _, logdet = np.linalg.slogdet(cov)
    quad = np.einsum("i,nij,j->n", y, np.linalg.inv(cov), y)
    return -0.5 * (k * math.log(2 * math.pi) + logdet + quad)


def test_che_matches_dense_double_integral() -> None:
    """Against a fixed 400 x 400 Gauss-Legendre product rule on [0, 3]^2 with dense
    covariance matrices (the half-normal(0.5) mass beyond 3 is 2e-9 before the likelihood)."""
    rng = np.random.default_rng(4)
    study = np.array([1, 1, 2, 2, 3])
    v = rng.uniform(0.01, 0.06, study.size)
    y = rng.normal(0.3, 0.25, study.size)
    rho = 0.6
    res = ma.bayes_multilevel(y, v, study, rho=rho, mu_prior=stats.norm(0, 1),
                              tau_study_prior=HN, tau_within_prior=HN)
    x, w = np.polynomial.legendre.leggauss(200)
    nodes = np.concatenate([0.75 * (x + 1), 1.5 + 0.75 * (x + 1)])
    weights = np.concatenate([0.75 * w, 0.75 * w]) * HN.pdf(nodes)
    ts, tw = (a.ravel() for a in np.meshgrid(nodes, nodes, indexing="ij"))
    cell = np.outer(weights, weights).ravel()
    dens = np.exp(_dense_logml(y, v, study, rho, ts, tw, 1.0)) * cell
    evidence = dens.sum()
    assert res.log_marginal_likelihood == pytest.approx(math.log(evidence), abs=1e-9)
    assert res.table.loc["tau_study", "mean"] == pytest.approx((dens * ts).sum() / evidence,
                                                               rel=1e-8)
    assert res.table.loc["tau_within", "mean"] == pytest.approx((dens * tw).sum() / evidence,
                                                                rel=1e-8)


def test_che_shrinkage_rows_are_studies() -> None:
    y, v, study = dependent(5)
    res = ma.bayes_multilevel(y, v, study)
    rows = res.shrinkage()
    assert list(rows["study"]) == [1, 2, 3, 4]
    # a study's observed composite: its GLS mean under V_j + tau_within^2 I, tau_within at
    # its posterior median
    idx = np.flatnonzero(study == 2)
    sd = np.sqrt(v[idx])
    cov = 0.6 * np.outer(sd, sd)
    cov[np.diag_indices(idx.size)] = v[idx]
    cov += res.table.loc["tau_within", "median"] ** 2 * np.eye(idx.size)
    w = np.linalg.solve(cov, np.ones(idx.size))
    assert rows.loc[1, "yi"] == pytest.approx(w @ y[idx] / w.sum(), rel=1e-12)
    assert rows.loc[1, "sei"] == pytest.approx(1 / math.sqrt(w.sum()), rel=1e-12)


def test_bad_rho() -> None:
    y, v, study = dependent(6)
    with pytest.raises(ValueError, match="rho"):
        ma.bayes_multilevel(y, v, study, rho=1.0)


# --- model averaging --------------------------------------------------------------------------


def test_model_average_marginal_likelihoods() -> None:
    rng = np.random.default_rng(7)
    y, v = rng.normal(0.2, 0.25, 5), rng.uniform(0.01, 0.05, 5)
    res = ma.bayes_model_average(y, v, mu_prior=stats.norm(0, 1), tau_prior=HN)
    logml = res.models.set_index("model")["log_marginal_likelihood"]
    assert logml["fixed_H0"] == pytest.approx(stats.norm(0, np.sqrt(v)).logpdf(y).sum(), abs=1e-10)
    fixed_h1 = stats.multivariate_normal(np.zeros(5), np.diag(v) + 1.0).logpdf(y)
    assert logml["fixed_H1"] == pytest.approx(fixed_h1, abs=1e-10)
    random_h0 = integrate.quad(
        lambda t: math.exp(stats.norm(0, np.sqrt(v + t**2)).logpdf(y).sum()) * HN.pdf(t),
        0, np.inf, epsabs=0, epsrel=1e-12)[0]
    assert logml["random_H0"] == pytest.approx(math.log(random_h0), abs=1e-8)
    single = ma.bayes_random_effects(y, v, mu_prior=stats.norm(0, 1), tau_prior=HN)
    assert logml["random_H1"] == pytest.approx(single.log_marginal_likelihood, abs=1e-12)
    post = res.models["posterior_prob"].to_numpy()
    expected = np.exp(logml.to_numpy() - logml.max())
    assert post == pytest.approx(expected / expected.sum(), rel=1e-12)
    assert res.bf_effect == pytest.approx((post[1] + post[3]) / (post[0] + post[2]), rel=1e-12)
    assert res.bf_heterogeneity == pytest.approx((post[2] + post[3]) / (post[0] + post[1]),
                                                 rel=1e-12)


def test_model_average_mixes_the_effect_models() -> None:
    rng = np.random.default_rng(8)
    y, v = rng.normal(0.2, 0.25, 4), rng.uniform(0.01, 0.05, 4)
    res = ma.bayes_model_average(y, v, prior_probs=(0.1, 0.2, 0.3, 0.4))
    post = res.models.set_index("model")["posterior_prob"]
    w_fixed = post["fixed_H1"] / (post["fixed_H1"] + post["random_H1"])
    fe = ma.random_effects(y, v, method="FE")
    prec = 1 / fe.se**2 + 1.0
    fixed_mean = fe.estimate / fe.se**2 / prec  # posterior mean under N(0, 1), tau = 0
    random_mean = ma.bayes_random_effects(y, v, mu_prior=ma.SMD_MU_PRIOR).table.loc["mu", "mean"]
    assert res.mu.mean == pytest.approx(w_fixed * fixed_mean + (1 - w_fixed) * random_mean,
                                        rel=1e-10)
    prior_odds_effect = (0.2 + 0.4) / (0.1 + 0.3)
    assert res.bf_effect == pytest.approx(
        (post["fixed_H1"] + post["random_H1"]) / (post["fixed_H0"] + post["random_H0"])
        / prior_odds_effect, rel=1e-12)
    assert "Inclusion Bayes factor" in res.summary()


def test_model_average_needs_a_proper_mu_prior() -> None:
    with pytest.raises(ValueError, match="mu_prior"):
        ma.bayes_model_average([0.1, 0.3], [0.01, 0.02], mu_prior=None)
    with pytest.raises(ValueError, match="prior_probs"):
        ma.bayes_model_average([0.1, 0.3], [0.01, 0.02], prior_probs=(0.5, 0.5))


def test_prior_sensitivity_grid() -> None:
    y, v, study = dependent(9)
    table = ma.bayes_prior_sensitivity(y, v, study)
    assert len(table) == len(ma.SMD_TAU_PRIORS) * len(ma.SMD_MU_PRIORS)
    assert {"estimate", "ci_low", "ci_high", "p_gt_0", "p_gt_0.2", "bf_effect"} <= set(table)
    flat = table[table["mu_prior"] == "flat"]
    assert flat["bf_effect"].isna().all()
    row = table.iloc[0]
    direct = ma.bayes_multilevel(y, v, study, mu_prior=ma.SMD_MU_PRIOR)
    assert row["estimate"] == pytest.approx(direct.estimate, rel=1e-12)
