"""Bayesian random effects by quadrature: independent integrals, MCMC, limits, Bayes factors.

Every check computes the expected value by a different route than metaally.models.bayes:
scipy.integrate.quad on the textbook densities, a seeded Gibbs/Metropolis sampler on the
un-collapsed model, the frequentist engine in the limits, and the Savage-Dickey density ratio
for the Bayes factors (Dickey 1971; Wagenmakers et al. 2010, Cogn Psychol 60:158-189).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

import metaally as ma


def data(k: int, seed: int, tau: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.08, k)
    return rng.normal(0.3, np.sqrt(v + tau**2)), v


# --- independent quadrature -------------------------------------------------------------------


def _quad_posterior(y, v, mu_prior, tau_prior):
    """Marginal posterior of tau from the plain multivariate-normal density, by quad."""
    def logml(tau: float) -> float:
        cov = np.diag(v + tau**2)
        if mu_prior is None:  # flat: restricted likelihood (constant dropped)
            w = 1 / (v + tau**2)
            m = w @ y / w.sum()
            return float(-0.5 * (np.sum(np.log(v + tau**2)) + math.log(w.sum())
                                 + w @ (y - m) ** 2))
        mean = np.full(y.size, mu_prior.mean())
        return float(stats.multivariate_normal(mean, cov + mu_prior.var()).logpdf(y))

    def cond(tau: float) -> tuple[float, float]:
        w = 1 / (v + tau**2)
        prec, num = w.sum(), w @ y
        if mu_prior is not None:
            prec, num = prec + 1 / mu_prior.var(), num + mu_prior.mean() / mu_prior.var()
        return num / prec, 1 / math.sqrt(prec)

    peak = max(logml(t) for t in np.linspace(0, 2, 41))

    def dens(tau: float) -> float:
        return math.exp(logml(tau) - peak) * tau_prior.pdf(tau)

    opts = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}
    norm = integrate.quad(dens, 0, np.inf, **opts)[0]

    def expect(f):
        return integrate.quad(lambda t: dens(t) * f(t), 0, np.inf, **opts)[0] / norm

    return {
        "mu_mean": expect(lambda t: cond(t)[0]),
        "mu_var": expect(lambda t: cond(t)[0] ** 2 + cond(t)[1] ** 2),
        "tau_mean": expect(lambda t: t),
        "p_mu_gt_0.2": expect(lambda t: stats.norm.sf(0.2, *cond(t))),
        "log_evidence": peak + math.log(norm),
    }


CASES = [
    ("k5-normal-halfnormal", 5, 1, stats.norm(0, 1), stats.halfnorm(scale=0.5)),
    ("k3-flat-halfnormal", 3, 2, None, stats.halfnorm(scale=0.5)),
    ("k8-normal-halfcauchy", 8, 3, stats.norm(0.1, 0.5), stats.halfcauchy(scale=0.3)),
    ("k4-normal-invgamma", 4, 4, stats.norm(0, 1), stats.invgamma(1.0, scale=0.15)),
    ("k2-flat-lognormal", 2, 5, None, stats.lognorm(1.0, scale=0.2)),
]


@pytest.mark.parametrize(("name", "k", "seed", "mu_prior", "tau_prior"), CASES,
                         ids=[c[0] for c in CASES])
def test_matches_independent_quadrature(name, k, seed, mu_prior, tau_prior) -> None:
    y, v = data(k, seed)
    res = ma.bayes_random_effects(y, v, mu_prior=mu_prior, tau_prior=tau_prior)
    ref = _quad_posterior(y, v, mu_prior, tau_prior)
    assert res.table.loc["mu", "mean"] == pytest.approx(ref["mu_mean"], rel=1e-6)
    mu_var = ref["mu_var"] - ref["mu_mean"] ** 2
    assert res.se == pytest.approx(math.sqrt(mu_var), rel=1e-6)
    assert res.table.loc["tau", "mean"] == pytest.approx(ref["tau_mean"], rel=1e-6)
    assert res.prob_greater(0.2) == pytest.approx(ref["p_mu_gt_0.2"], rel=1e-6, abs=1e-9)
    if mu_prior is not None:
        assert res.log_marginal_likelihood == pytest.approx(ref["log_evidence"], abs=1e-6)


# --- MCMC on the un-collapsed model -----------------------------------------------------------


def _gibbs(y, v, mu_sd, tau_scale, chains=2000, burn=400, draws=600, seed=20):
    """Gibbs for theta and mu, random-walk Metropolis on log tau, many independent chains.

    theta_i | . ~ N((y_i/v_i + mu/tau^2)/(1/v_i + 1/tau^2), 1/(1/v_i + 1/tau^2)),
    mu | . ~ N(sum theta / tau^2 / (k/tau^2 + 1/mu_sd^2), 1/(k/tau^2 + 1/mu_sd^2)),
    tau | . ∝ halfnormal(tau; tau_scale) prod N(theta_i; mu, tau^2)  (Metropolis on log tau).
    Returns per-chain means of mu, tau and 1{mu > 0}.
    """
    rng = np.random.default_rng(seed)
    k = y.size
    mu = np.zeros(chains)
    tau = np.full(chains, tau_scale)
    sums = np.zeros((3, chains))

    def log_target(t, theta, mu):
        return (-0.5 * (t / tau_scale) ** 2 - k * np.log(t)
                - 0.5 * ((theta - mu[:, None]) ** 2).sum(1) / t**2 + np.log(t))  # + Jacobian

    for it in range(burn + draws):
        prec = 1 / v + 1 / tau[:, None] ** 2
        theta = rng.normal((y / v + mu[:, None] / tau[:, None] ** 2) / prec, 1 / np.sqrt(prec))
        prec_mu = k / tau**2 + 1 / mu_sd**2
        mu = rng.normal(theta.sum(1) / tau**2 / prec_mu, 1 / np.sqrt(prec_mu))
        for _ in range(3):
            prop = tau * np.exp(rng.normal(0, 0.5, chains))
            accept = np.log(rng.uniform(size=chains)) < (log_target(prop, theta, mu)
                                                         - log_target(tau, theta, mu))
            tau = np.where(accept, prop, tau)
        if it >= burn:
            sums += [mu, tau, mu > 0]
    return sums / draws


def test_agrees_with_mcmc_within_monte_carlo_error() -> None:
    y, v = data(6, seed=7, tau=0.3)
    res = ma.bayes_random_effects(y, v, mu_prior=stats.norm(0, 1),
                                  tau_prior=stats.halfnorm(scale=0.5))
    chain_means = _gibbs(y, v, mu_sd=1.0, tau_scale=0.5)
    estimates = chain_means.mean(axis=1)
    mc_se = chain_means.std(axis=1, ddof=1) / math.sqrt(chain_means.shape[1])
    exact = [res.table.loc["mu", "mean"], res.table.loc["tau", "mean"], res.prob_greater(0.0)]
    z = (estimates - exact) / mc_se
    assert np.all(np.abs(z) < 4.5), (estimates, exact, mc_se)


# --- limits -----------------------------------------------------------------------------------


def test_tau_prior_at_zero_gives_fixed_effect_posterior() -> None:
    y, v = data(7, seed=8)
    res = ma.bayes_random_effects(y, v, tau_prior=stats.halfnorm(scale=1e-10))
    fe = ma.random_effects(y, v, method="FE")
    assert res.estimate == pytest.approx(fe.estimate, rel=1e-9)
    assert res.table.loc["mu", "mean"] == pytest.approx(fe.estimate, rel=1e-9)
    assert res.se == pytest.approx(fe.se, rel=1e-8)
    assert [res.ci_low, res.ci_high] == pytest.approx([fe.ci_low, fe.ci_high], rel=1e-8)


def test_uniform_tau_prior_mode_is_reml() -> None:
    """With a flat mu prior, p(y | tau) is the restricted likelihood: under a uniform prior the
    posterior mode of tau is the REML estimate (Röver 2020, §2.2), for any k."""
    y, v = data(12, seed=9, tau=0.3)
    res = ma.bayes_random_effects(y, v, tau_prior=stats.uniform(0, 3))
    mode = optimize.minimize_scalar(lambda t: -float(res.density("tau", t)), bounds=(1e-6, 2),
                                    method="bounded", options={"xatol": 1e-10}).x
    assert mode == pytest.approx(math.sqrt(ma.random_effects(y, v).tau2), rel=1e-6)


def test_large_k_approaches_reml() -> None:
    y, v = data(3000, seed=10, tau=0.3)
    res = ma.bayes_random_effects(y, v, tau_prior=stats.uniform(0, 3))
    reml = ma.random_effects(y, v)
    assert abs(res.estimate - reml.estimate) < 0.01 * reml.se
    assert res.se == pytest.approx(reml.se, rel=0.01)
    assert res.table.loc["tau", "median"] == pytest.approx(math.sqrt(reml.tau2), rel=0.01)


# --- Bayes factors: Savage-Dickey density ratios ---------------------------------------------


def test_bayes_factors_equal_savage_dickey_ratios() -> None:
    """BF01 = p(mu = 0 | y) / p(mu = 0) and p(tau = 0 | y) / p(tau = 0) for nested point nulls
    with independent priors (Dickey 1971)."""
    y, v = data(5, seed=11)
    mu_prior, tau_prior = stats.norm(0, 1), stats.halfnorm(scale=0.5)
    res = ma.bayes_random_effects(y, v, mu_prior=mu_prior, tau_prior=tau_prior)
    assert 1 / res.bf_effect == pytest.approx(float(res.density("mu", 0.0)) / mu_prior.pdf(0),
                                              rel=1e-8)
    assert 1 / res.bf_heterogeneity == pytest.approx(
        float(res.density("tau", 0.0)) / tau_prior.pdf(0), rel=1e-8)


def test_flat_mu_prior_gives_no_bayes_factors() -> None:
    y, v = data(4, seed=12)
    res = ma.bayes_random_effects(y, v)
    assert math.isnan(res.bf_effect) and math.isnan(res.bf_heterogeneity)
    assert math.isnan(res.pvalue) and "no p-value" in res.pvalue_note
    assert math.isnan(res.df) and res.k == 4


# --- result object ----------------------------------------------------------------------------


def test_result_protocol_and_intervals() -> None:
    y, v = data(5, seed=13)
    res = ma.bayes_random_effects(y, v, mu_prior=ma.SMD_MU_PRIOR, level=0.9)
    frame = res.to_frame()
    assert list(frame["parameter"]) == ["mu", "tau", "theta_new"]
    assert list(frame.columns[1:]) == ["mean", "sd", "median", "ci_low", "ci_high", "hpd_low",
                                       "hpd_high"]
    assert res.estimate == res.table.loc["mu", "median"]
    assert res.mu.cdf(res.ci_high) - res.mu.cdf(res.ci_low) == pytest.approx(0.9, abs=1e-10)
    for row in ("mu", "theta_new"):
        r = res.table.loc[row]
        assert r.hpd_high - r.hpd_low <= r.ci_high - r.ci_low + 1e-12
    assert res.prob_greater(0.1) == pytest.approx(1 - res.mu.cdf(0.1), abs=1e-12)
    grid = np.linspace(-3, 3, 20001)
    assert np.trapezoid(res.density("mu", grid), grid) == pytest.approx(1, abs=1e-8)
    assert "marginal posterior summary" in res.summary()
    assert "BF(mu != 0)" in str(res)


def test_shrinkage_at_a_fixed_tau_is_the_textbook_formula() -> None:
    """tau fixed (a prior on [0.3, 0.3 + 1e-12]): theta_i | y ~ N((1 - B_i) y_i + B_i m,
    (1 - B_i) v_i + B_i^2 s^2), B_i = v_i/(v_i + tau^2) (Gelman et al. 2014, eq. 5.17)."""
    y, v = data(6, seed=14)
    tau = 0.3
    res = ma.bayes_random_effects(y, v, mu_prior=stats.norm(0, 1),
                                  tau_prior=stats.uniform(tau, 1e-12))
    w = 1 / (v + tau**2)
    prec = w.sum() + 1.0
    m, s2 = (w @ y) / prec, 1 / prec
    b = v / (v + tau**2)
    rows = res.shrinkage()
    assert rows["mean"].to_numpy() == pytest.approx((1 - b) * y + b * m, rel=1e-9)
    assert rows["sd"].to_numpy() == pytest.approx(np.sqrt((1 - b) * v + b**2 * s2), rel=1e-9)
    assert rows["yi"].to_numpy() == pytest.approx(y, rel=1e-12)


def test_shrinkage_with_tau_at_zero_pools_completely() -> None:
    y, v = data(5, seed=15)
    res = ma.bayes_random_effects(y, v, tau_prior=stats.halfnorm(scale=1e-10))
    fe = ma.random_effects(y, v, method="FE")
    rows = res.shrinkage()
    assert rows["mean"].to_numpy() == pytest.approx(np.full(5, fe.estimate), rel=1e-8)
    assert rows["sd"].to_numpy() == pytest.approx(np.full(5, fe.se), rel=1e-7)


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(-2, 2), seed=st.integers(0, 10**6))
def test_location_equivariance_with_flat_prior(shift: float, seed: int) -> None:
    y, v = data(4, seed)
    a = ma.bayes_random_effects(y, v)
    b = ma.bayes_random_effects(y + shift, v)
    assert b.estimate == pytest.approx(a.estimate + shift, abs=1e-9)
    assert b.table.loc["tau", "median"] == pytest.approx(a.table.loc["tau", "median"], rel=1e-9)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tau_prior": stats.norm(0, 1)}, "tau_prior"),
    ({"tau_prior": 0.5}, "tau_prior"),
    ({"mu_prior": stats.cauchy(0, 1)}, "mu_prior"),
    ({"level": 150}, "level"),
    ({"integration": "mcmc"}, "integration"),
])
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ma.bayes_random_effects([0.1, 0.2], [0.01, 0.02], **kwargs)
