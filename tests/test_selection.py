"""selection_model: behaviour that the metafor reference values do not cover (bad input, empty
p-value intervals, REML input, the cluster-robust version for dependent effects, the plot)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import metaally as ma


def _data(k: int = 40, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.02, 0.2, k)
    yi = 0.3 + rng.normal(0, 0.2, k) + rng.normal(0, np.sqrt(vi))
    return yi, vi


def test_empty_interval_is_an_error_not_a_number():
    """No p-value above 0.025: the weight of that interval is not identified (the likelihood
    only grows as it goes to 0), so metafor stops; so do we, naming the interval."""
    vi = np.full(10, 0.01)
    yi = np.linspace(0.3, 0.6, 10)          # every z >= 3: every one-sided p < 0.025
    res = ma.random_effects(yi, vi, method="ML")
    with pytest.raises(ValueError, match=r"steps: no observed p-value in the interval\(s\) "
                                         r"\(0.025, 1\]"):
        ma.selection_model(res)


def test_empty_side_of_a_threshold_is_an_error():
    vi = np.full(10, 0.01)
    res = ma.random_effects(np.linspace(0.3, 0.6, 10), vi, method="ML")
    with pytest.raises(ValueError, match="threshold 0.05"):
        ma.selection_model(res, type="negexp", steps=0.05)


def test_delta_at_its_bound_warns():
    """Three non-significant effects that fit no heterogeneous normal with the rest: their
    weight δ₂ runs to the bound 100 - a warning and a NaN SE, never a silent number with a
    meaningless SE (metafor warns the same way)."""
    yi = np.array([0.5, 0.55, 0.6, 0.65, 0.7, 0.58, 0.62, 0.1, 0.12, 0.11])
    vi = np.full(10, 0.01)
    res = ma.random_effects(yi, vi, method="ML")
    with pytest.warns(RuntimeWarning, match="bound"):
        sel = ma.selection_model(res)
    assert sel.delta[1] > 99
    assert np.isnan(sel.delta_se[1])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"type": "probit"}, "type must be one of"),
    ({"alternative": "both"}, "alternative must be one of"),
    ({"steps": [0.5, 2.0]}, "steps must be numbers between 0 and 1"),
    ({"type": "beta", "steps": 0.05}, "takes no steps"),
    ({"type": "negexp", "steps": [0.05, 0.5]}, "single threshold"),
])
def test_bad_arguments_are_named(kwargs, match):
    res = ma.random_effects(*_data(), method="ML")
    with pytest.raises(ValueError, match=match):
        ma.selection_model(res, **kwargs)


def test_needs_a_random_effects_result():
    with pytest.raises(ValueError, match="result must be"):
        ma.selection_model({"yi": [1, 2]})


def test_reml_input_is_refitted_by_ml():
    yi, vi = _data()
    a = ma.selection_model(ma.random_effects(yi, vi, method="REML"))
    b = ma.selection_model(ma.random_effects(yi, vi, method="ML"))
    assert a.estimate == pytest.approx(b.estimate, rel=1e-12)
    assert a.loglik0 == pytest.approx(b.loglik0, rel=1e-12)


def test_3psm_without_selection_in_the_data_is_close_to_ml():
    """δ₂ = 1 is the random-effects model: the LRT equals 2(ll − ll0) ≥ 0 and the p-value is the
    χ²(1) tail."""
    sel = ma.selection_model(ma.random_effects(*_data(), method="ML"))
    assert sel.lrt == pytest.approx(max(0.0, 2 * (sel.loglik - sel.loglik0)))
    assert sel.lrt_pvalue == pytest.approx(stats.chi2.sf(sel.lrt, 1))
    assert sel.delta[0] == 1.0 and np.isnan(sel.delta_se[0])


def test_one_effect_per_study_gives_the_same_estimates():
    yi, vi = _data()
    res = ma.random_effects(yi, vi, method="ML")
    plain = ma.selection_model(res)
    robust = ma.selection_model(res, study=np.arange(yi.size))
    assert robust.estimate == plain.estimate
    assert robust.delta == pytest.approx(plain.delta)
    assert robust.vcov_type == "robust" and robust.n_clusters == yi.size


def test_sandwich_equals_an_independent_numerical_sandwich():
    """H⁻¹ (Σ_c g_c g_c') H⁻¹ with H and the per-study scores from finite differences of the
    likelihood of each study's effects (fitted with ``tau2`` and δ fixed at the estimates by
    evaluating the model on subsets)."""
    yi, vi = _data(30, seed=5)
    study = np.repeat(np.arange(10), 3)
    res = ma.random_effects(yi, vi, method="ML")
    sel = ma.selection_model(res, study=study)
    theta = np.array([sel.estimate, sel.tau2, sel.delta[1]])

    def loglik(t, rows):
        beta, tau2, d2 = t
        y, v = yi[rows], vi[rows]
        tot = v + tau2
        crit = stats.norm.isf(0.025) * np.sqrt(v)
        p_sig = stats.norm.sf(crit, beta, np.sqrt(tot))
        area = p_sig + d2 * (1 - p_sig)
        w = np.where(y >= crit, 1.0, d2)
        return np.sum(np.log(w) + stats.norm.logpdf(y, beta, np.sqrt(tot)) - np.log(area))

    def grad(t, rows, h=1e-6):
        return np.array([(loglik(t + e, rows) - loglik(t - e, rows)) / (2 * h)
                         for e in np.eye(3) * h])

    everything = np.arange(yi.size)
    hess = np.array([(grad(theta + e, everything) - grad(theta - e, everything)) / 2e-5
                     for e in np.eye(3) * 1e-5])
    g = np.array([grad(theta, np.flatnonzero(study == c)) for c in range(10)])
    bread = np.linalg.inv(hess)
    sandwich = bread @ (g.T @ g) @ bread
    assert sel.se == pytest.approx(np.sqrt(sandwich[0, 0]), rel=1e-4)
    assert sel.tau2_se == pytest.approx(np.sqrt(sandwich[1, 1]), rel=1e-4)
    assert sel.delta_se[1] == pytest.approx(np.sqrt(sandwich[2, 2]), rel=1e-4)


def test_duplicated_effects_leave_the_robust_se_unchanged():
    """Entering every effect twice in its own study doubles the composite log-likelihood: the
    estimates stay, model-based SEs shrink by √2, cluster-robust SEs do not move."""
    yi, vi = _data()
    single = ma.selection_model(ma.random_effects(yi, vi, method="ML"), study=np.arange(yi.size))
    twice = ma.random_effects(np.repeat(yi, 2), np.repeat(vi, 2), method="ML")
    naive = ma.selection_model(twice)
    robust = ma.selection_model(twice, study=np.repeat(np.arange(yi.size), 2))
    assert robust.estimate == pytest.approx(single.estimate, rel=1e-6)
    assert robust.se == pytest.approx(single.se, rel=1e-4)
    assert naive.se == pytest.approx(robust.se / np.sqrt(2), rel=0.3)   # model-based differs


def test_summary_and_frame():
    sel = ma.selection_model(ma.random_effects(*_data(), method="ML"))
    text = sel.summary()
    assert "Test for Selection Model Parameters:" in text
    assert "0.025 < p <= 1" in text
    frame = sel.to_frame()
    assert list(frame["term"]) == ["intrcpt", "delta.1", "delta.2"]


def test_weight_function():
    sel = ma.selection_model(ma.random_effects(*_data(), method="ML"))
    assert sel.weight([0.01, 0.025, 0.3]) == pytest.approx([1.0, 1.0, sel.delta[1]])


def test_selection_plot_draws_on_a_given_axes():
    import matplotlib.pyplot as plt

    sel = ma.selection_model(ma.random_effects(*_data(), method="ML"), type="beta")
    fig, ax = plt.subplots()
    assert ma.selection_plot(sel, ax=ax, pvalues=[0.01, 0.2]) is fig
    assert ax.get_ylabel() == "relative likelihood of selection"
    plt.close(fig)
    with pytest.raises(ValueError, match="selection_model result"):
        ma.selection_plot("not a result")


@pytest.mark.parametrize("sel_type", ["beta", "halfnorm", "negexp", "logistic", "power"])
@pytest.mark.parametrize("alternative", ["greater", "two.sided"])
def test_fixed_grid_quadrature_equals_adaptive_quadrature(sel_type, alternative):
    """A_i = ∫ w(p(y)) φ(y; μ, v + τ²) dy on the fixed z-grid equals scipy's adaptive quad
    (QUADPACK, as R's integrate) to 1e-9, for steep weights (δ at 30) and a threshold."""
    from scipy import integrate

    from metaally.diagnostics import selection as s

    spec = s._spec(sel_type, 2)
    delta = np.array([0.4, 3.0]) if sel_type == "beta" else np.array([30.0])
    threshold = 0.0 if sel_type == "beta" else 0.05
    quad = s._quadrature(alternative, spec.pval_min, threshold)
    mu = np.array([-0.3, 0.1, 0.8])
    v = np.array([0.02, 0.05, 0.01])
    tau2 = 0.03
    sd_z, mu_z = np.sqrt((v + tau2) / v), mu / np.sqrt(v)
    ours = s._continuous_area(mu_z, sd_z, quad, lambda p: np.exp(
        s._log_weight(sel_type, p, delta, threshold)))
    for i in range(mu.size):
        def integrand(y, i=i):
            p = np.clip(s._pvalue(np.array(y / np.sqrt(v[i])), alternative), spec.pval_min,
                        1 - spec.pval_min)
            w = np.exp(s._log_weight(sel_type, p, delta, threshold))
            return float(w * stats.norm.pdf(y, mu[i], np.sqrt(v[i] + tau2)))
        points = sorted({float(z * np.sqrt(v[i])) for z in quad.z[[0, -1]]})
        ref = sum(integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-13, limit=500)[0]
                  for a, b in [(-np.inf, points[0]), (points[0], points[1]), (points[1], np.inf)])
        assert ours[i] == pytest.approx(ref, rel=1e-9)


def test_clustered_fit_reports_no_lrt_pvalue():
    """A composite likelihood ratio is not χ²: with ``study`` only Wald tests are reported."""
    yi, vi = _data()
    sel = ma.selection_model(ma.random_effects(yi, vi, method="ML"), study=np.arange(yi.size) // 2)
    assert np.isnan(sel.lrt_pvalue) and np.isnan(sel.lrt_tau2_pvalue)
    assert np.isfinite(sel.delta_pvalue[1])
