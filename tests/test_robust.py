"""metaally.models.robust: cluster-robust inference beyond the metafor examples.

The linear-time Satterthwaite / HTZ algebra is checked against a dense, quadratic-time
transcription of clubSandwich's definitions (``get_GH``, ``get_P_array``,
``total_variance_mat``) on random data with unequal cluster sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multilevel_cases import REFERENCE, clustered_effects, fit

import metaally as ma


def _inv_sqrt(a):
    values, vectors = np.linalg.eigh(a)
    inv = np.where(values > 1e-12, 1.0 / np.sqrt(np.abs(values)), 0.0)
    return (vectors * inv) @ vectors.T


def _dense_reference(m, C, adjust):
    """V_R, and the HTZ nu for constraints C, from full k x k matrices."""
    k, p = m.X.shape
    labels = list(dict.fromkeys(m.study.tolist()))
    J = len(labels)
    rows = [np.flatnonzero(m.study == lab) for lab in labels]
    sigma = np.zeros((k, k))
    for idx in rows:
        sd = np.sqrt(m.vi[idx])
        block = m.rho * np.outer(sd, sd)
        np.fill_diagonal(block, m.vi[idx])
        sigma[np.ix_(idx, idx)] = block + m.sigma2_study + m.sigma2_within * np.eye(len(idx))
    W = np.linalg.inv(sigma)
    M = np.linalg.inv(m.X.T @ W @ m.X)
    beta = M @ m.X.T @ W @ m.yi
    e = m.yi - m.X @ beta
    L = np.linalg.cholesky(M)
    meat = np.zeros((p, p))
    G_list, H_list = [], []
    for idx in rows:
        X_j, theta = m.X[idx], sigma[np.ix_(idx, idx)]
        W_j = np.linalg.inv(theta)
        D = np.linalg.cholesky(theta).T  # upper: theta = D'D
        if adjust == "CR2":
            IH = np.eye(len(idx)) - X_j @ M @ X_j.T @ W_j
            A = D.T @ _inv_sqrt(D @ IH @ theta @ D.T) @ D
        else:
            A = np.sqrt(J / (J - 1)) * np.eye(len(idx))
        E = X_j.T @ W_j @ A
        meat += np.outer(E @ e[idx], E @ e[idx])
        G_list.append(C @ M @ E @ D.T)
        H_list.append(C @ M @ E @ X_j @ L)
    q = C.shape[0]
    P = np.zeros((q, q, J, J))
    for s in range(q):
        for t in range(q):
            P[s, t] = -np.array([[H_list[a][s] @ H_list[b][t] for b in range(J)]
                                 for a in range(J)])
            P[s, t] += np.diag([G[s] @ G[t] for G in G_list])
    omega = np.einsum("stjj->st", P)
    root = _inv_sqrt(omega)
    B = np.einsum("ab,bcjk,cd->adjk", root, P, root)
    var_mat = np.array([[np.sum(B[s, t] * B[t, s]) + np.sum(B[s, s] * B[t, t])
                         for t in range(q)] for s in range(q)])
    return M @ meat @ M, q * (q + 1) / var_mat.sum()


@st.composite
def clustered_data(draw):
    yi, vi, study, rng = draw(clustered_effects(min_studies=5, max_studies=9, max_size=5))
    mods = np.column_stack([rng.normal(size=yi.size), rng.normal(size=study[-1] + 1)[study]])
    return yi, vi, study, mods, rng


@pytest.mark.parametrize("adjust", ["CR2", "CR1"])
@settings(max_examples=30, deadline=None)
@given(data=clustered_data(), rho=st.sampled_from([0.0, 0.6]))
def test_linear_time_algebra_matches_dense_clubsandwich(data, rho, adjust):
    yi, vi, study, mods, _ = data
    rb = ma.multilevel(yi, vi, study, rho=rho, mods=mods).robust(adjust)
    C = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    vcov, nu = _dense_reference(rb.model, C, adjust)
    np.testing.assert_allclose(rb.vcov, vcov, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(rb.qm_df2, nu - 1.0, rtol=1e-8)
    for i in range(3):
        _, df = _dense_reference(rb.model, np.eye(3)[[i]], adjust)
        np.testing.assert_allclose(rb.coef["df"].iloc[i], df, rtol=1e-8)


def test_single_constraint_wald_test_is_the_squared_t_test():
    case = next(c for c in REFERENCE["cases"] if c["id"] == "assink2016-rho0.6-mods-REML")
    rb = fit(case).robust()
    for i in range(3):
        wald = rb.wald_test(np.eye(3)[i])
        row = rb.coef.iloc[i]
        np.testing.assert_allclose([wald.stat, wald.df2, wald.pvalue],
                                   [row["stat"] ** 2, row["df"], row["pvalue"]], rtol=1e-10)
        assert wald.df1 == 1


def test_wald_test_is_invariant_to_rescaling_constraints():
    case = next(c for c in REFERENCE["cases"] if c["id"] == "assink2016-rho0-mods-REML")
    rb = fit(case).robust()
    C = np.array([[0.0, 1.0, -1.0], [0.0, 1.0, 0.0]])
    a, b = rb.wald_test(C), rb.wald_test(np.array([[2.0, 0.0], [1.0, -3.0]]) @ C)
    np.testing.assert_allclose([a.stat, a.df2, a.pvalue], [b.stat, b.df2, b.pvalue], rtol=1e-9)
    assert "HTZ" in a.summary() and a.to_frame().shape == (1, 5)


def test_bad_input_raises():
    case = next(c for c in REFERENCE["cases"] if c["id"] == "assink2016-rho0-mods-REML")
    m = fit(case)
    with pytest.raises(ValueError, match="adjust must be"):
        m.robust("CR3")
    rb = m.robust()
    with pytest.raises(ValueError, match="q x 3"):
        rb.wald_test([[0.0, 1.0]])
    with pytest.raises(ValueError, match="linearly dependent"):
        rb.wald_test([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    two = ma.multilevel([0.1, 0.3, 0.2, 0.5], [0.05] * 4, ["a", "a", "b", "b"],
                        mods=[0.0, 1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="more studies"):
        two.robust()


def test_summary_and_frame():
    case = next(c for c in REFERENCE["cases"] if c["id"] == "konstantopoulos2011-rho0.6-mods-REML")
    rb = fit(case).robust()
    text = rb.summary()
    for part in ["CR2", "11 clusters", "Satterthwaite", "HTZ", "tval", "mod"]:
        assert part in text
    assert rb.to_frame().columns.tolist() == ["term", "estimate", "se", "stat", "df", "pvalue",
                                              "ci_low", "ci_high", "k", "n_clusters", "adjust"]
    assert np.isnan(rb.pi_low)


@settings(max_examples=40, deadline=None)
@given(clustered_data())
def test_invariant_to_row_order_and_labels(data):
    yi, vi, study, mods, rng = data
    perm = rng.permutation(len(yi))
    names = np.array([f"s{i}" for i in rng.permutation(study.max() + 1)], dtype=object)
    a = ma.multilevel(yi, vi, study, mods=mods).robust()
    b = ma.multilevel(yi[perm], vi[perm], names[study][perm], mods=mods[perm]).robust()
    for col in ["se", "df", "pvalue"]:
        np.testing.assert_allclose(a.coef[col], b.coef[col], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose([a.qm, a.qm_df2], [b.qm, b.qm_df2], rtol=1e-6)


# --- a coefficient identified by a single study (tests/reference/robust_single_study.R) ---

SINGLE = json.loads(
    (Path(__file__).parent / "reference" / "robust_single_study.json").read_text()
)


def _single_study_fit(case: dict, intercept: bool) -> ma.MultilevelResult:
    d = SINGLE["data"]
    study = np.asarray(d["study"])
    a = (study == case["study"]).astype(float)
    mods = a[:, None] if intercept else np.column_stack([a, 1.0 - a])
    return ma.multilevel(d["yi"], d["vi"], study, es_id=d["esid"], rho=SINGLE["rho"],
                         mods=mods, intercept=intercept)


def _number(x) -> float:
    return float("nan") if x in ("NaN", "NA", None) else float(x)


@pytest.mark.parametrize("case", list(SINGLE["cases"]))
@pytest.mark.parametrize("form", ["no_intercept", "intercept"])
def test_single_study_coefficient_matches_clubsandwich(case, form):
    """What clubSandwich defines is reproduced; its SE 0 / t Inf / df NaN becomes NaN here."""
    ref = SINGLE["cases"][case]
    want = ref[form]
    m = _single_study_fit(ref, intercept=form == "intercept")
    np.testing.assert_allclose([m.sigma2_study, m.sigma2_within], want["sigma2"], rtol=1e-6)
    degenerate = [_number(x) != _number(x) for x in want["df"]]  # clubSandwich df NaN
    if any(degenerate):
        with pytest.warns(RuntimeWarning, match="identified by a single study"):
            rb = m.robust()
    else:
        rb = m.robust()
    np.testing.assert_allclose(rb.coef["estimate"], want["estimate"], rtol=1e-6, atol=1e-9)
    for column in ["se", "df", "pvalue"]:
        expected = [np.nan if bad else _number(x)
                    for x, bad in zip(want[column], degenerate, strict=True)]
        np.testing.assert_allclose(rb.coef[column], expected, rtol=1e-6, atol=1e-10)
    assert np.isnan(rb.coef["ci_low"].to_numpy()[degenerate]).all()
    tests = {"wald_both": np.eye(2), "wald_b": np.eye(2)[[1]], "wald_a": np.eye(2)[[1]]}
    for name, C in tests.items():
        if name not in want:
            continue
        if want[name]["defined"]:
            wald = rb.wald_test(C)
            np.testing.assert_allclose([wald.stat, wald.df2, wald.pvalue],
                                       [want[name][k] for k in ["stat", "df2", "pvalue"]],
                                       rtol=1e-5)
        else:  # clubSandwich stops with an error (C V C' not positive definite)
            with pytest.warns(RuntimeWarning, match="HTZ Wald test is undefined"):
                wald = rb.wald_test(C)
            assert np.isnan([wald.stat, wald.df2, wald.pvalue]).all() and wald.df1 == 2


def test_single_study_coefficient_never_crashes_the_omnibus_test():
    ref = SINGLE["cases"]["study4"]
    with pytest.warns(RuntimeWarning) as record:
        rb = _single_study_fit(ref, intercept=False).robust()
    assert len(record) == 2  # the coefficient, then the HTZ test of all coefficients
    assert np.isnan([rb.qm, rb.qm_df2, rb.qm_pvalue]).all() and rb.qm_df1 == 2
    assert "Test of Moderators" not in rb.summary()
    assert rb.coef["se"].notna().tolist() == [False, True]


def test_single_study_reference_grid_is_complete():
    assert sorted(SINGLE["cases"]) == ["study2", "study4"]
    assert [SINGLE["cases"][c]["k_study"] for c in ["study4", "study2"]] == [1, 3]
