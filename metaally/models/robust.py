"""Cluster-robust (sandwich) inference for the CHE model: CR2 / CR1, Satterthwaite df, HTZ tests.

For a model fitted with weights W_j = Sigma_j^-1 (the working model) and bread
M = (X' W X)^-1, the cluster-robust covariance is (Pustejovsky & Tipton 2018,
JBES 36:672-683)::

    V_R = M [ sum_j X_j' W_j A_j e_j e_j' A_j W_j X_j ] M,

with e_j the residuals of cluster j and adjustment matrices

    CR2:  A_j = D_j' G_j^-1/2 D_j,  G_j = D_j (Sigma_j - X_j M X_j') D_j',  Sigma_j = D_j' D_j,
    CR1:  A_j = sqrt(J / (J - 1)) I

(clubSandwich's ``vcovCR(type = "CR2" | "CR1")``; metafor's
``robust(m, cluster = study, clubSandwich = TRUE)``).  Small-sample tests treat
the working model as the true covariance.  Writing g_j = M X_j' W_j A_j, the
contribution of cluster j to ``c' V_R c`` is (c' g_j e_j)^2, and under the
working model Cov(g_j e_j, g_i e_i) = delta_ij Gamma_j - H_j H_i' with
Gamma_j = g_j Sigma_j g_j' and H_j = g_j X_j L, L L' = M (because
(I - H) Sigma (I - H)' = Sigma - X M X' when W = Sigma^-1).  The cross-cluster part
has rank p, so the Satterthwaite degrees of freedom and the HTZ Wald test need only
per-cluster p x p matrices and sums of their products: the cost is linear in the
number of clusters, not quadratic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.blocks import (
    che_blocks,
    cluster_blocks,
    marginal_covariance,
    marginal_inverse,
)
from metaally.models.inputs import column_scale, variance_scale
from metaally.models.printing import (
    Printable,
    coef_frame,
    fields_frame,
    fmt_num,
    model_results,
    pvalue_phrase,
)
from metaally.models.protocol import ClusteredModel, first_coefficient

__all__ = [
    "robust",
    "RobustResult",
    "WaldTestResult",
]

_ADJUSTMENTS = ("CR2", "CR1")
_EIGEN_TOL = 1e-12  # eigenvalues below this count as zero (clubSandwich's matrix_power)


@dataclass(frozen=True)
class WaldTestResult(Printable):
    """Test of H0: C beta = 0 (q constraints) with a cluster-robust covariance.

    ``test = "HTZ"``: Hotelling's T^2 approximation (Tipton & Pustejovsky 2015,
    J. Educ. Behav. Stat. 40:604-634), F = delta Q / q on (q, nu - q + 1) df.
    """

    stat: float
    df1: int
    df2: float
    pvalue: float
    test: str = "HTZ"

    def summary(self) -> str:
        """One line: the test, F(df1, df2), p (as clubSandwich's ``Wald_test`` prints it)."""
        return (
            f"Wald test ({self.test}): F(df1 = {self.df1}, df2 = {fmt_num(self.df2, 2)}) = "
            f"{fmt_num(self.stat)}, {pvalue_phrase(self.pvalue)}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row: test, stat, df1, df2, pvalue."""
        return fields_frame(self, ("test", "stat", "df1", "df2", "pvalue"))


@dataclass(frozen=True)
class _SandwichParts:
    """What further Wald tests need: beta, V_R, the bread M and the per-cluster Gamma_j,
    H_j (J, p, p)."""

    beta: np.ndarray
    vcov: np.ndarray
    bread: np.ndarray
    gamma: np.ndarray
    h: np.ndarray


@dataclass(frozen=True)
class RobustResult(Printable):
    """Cluster-robust inference for a ``ClusteredModel`` (clustered by study).

    ``estimate`` ... ``pvalue`` and ``df`` describe the first coefficient; ``coef`` holds
    all of them with their Satterthwaite df.  ``qm``/``qm_df1``/``qm_df2``/``qm_pvalue``:
    HTZ test that every coefficient except the intercept is zero (NaN without
    moderators, or when it is undefined; see ``robust``).  ``pi_low``/``pi_high``:
    metafor's ``predict`` on the robust fit, mu +/- t(df) sqrt(se^2 + sigma2_study +
    sigma2_within) (intercept-only models).
    """

    estimate: float
    se: float
    df: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    adjust: str
    coef: pd.DataFrame
    vcov: np.ndarray
    n_clusters: int
    qm: float
    qm_df1: int
    qm_df2: float
    qm_pvalue: float
    pi_low: float
    pi_high: float
    model: ClusteredModel = field(repr=False)
    parts: _SandwichParts = field(repr=False)

    # The data and variance components of the working model, so that a robust result
    # satisfies ``ClusteredModel`` itself (plots and diagnostics take it as they take
    # the model-based fit).
    @property
    def k(self) -> int:
        """Number of effect sizes."""
        return self.model.k

    @property
    def yi(self) -> np.ndarray:
        """Effect sizes the model was fitted to."""
        return self.model.yi

    @property
    def vi(self) -> np.ndarray:
        """Their sampling variances."""
        return self.model.vi

    @property
    def X(self) -> np.ndarray:
        """Design matrix (k x p)."""
        return self.model.X

    @property
    def coef_names(self) -> tuple[str, ...]:
        """Coefficient names (``intrcpt`` first when there is an intercept)."""
        return tuple(self.model.coef_names)

    @property
    def study(self) -> np.ndarray:
        """Study (cluster) label of each effect."""
        return self.model.study

    @property
    def es_id(self) -> np.ndarray:
        """Effect label within its study."""
        return self.model.es_id

    @property
    def rho(self) -> float:
        """Assumed within-study sampling correlation of the working model."""
        return self.model.rho

    @property
    def method(self) -> str:
        """Estimator of the variance components ("REML" or "ML")."""
        return self.model.method

    @property
    def level(self) -> float:
        """Confidence level of the intervals."""
        return self.model.level

    @property
    def sigma2_study(self) -> float:
        """Between-study variance component of the working model."""
        return self.model.sigma2_study

    @property
    def sigma2_within(self) -> float:
        """Within-study (effect-level) variance component of the working model."""
        return self.model.sigma2_within

    @property
    def i2(self) -> float:
        """Total I^2 of the working model (percent)."""
        return self.model.i2

    def wald_test(self, constraints: Any) -> WaldTestResult:
        """HTZ test of H0: C beta = 0 for a q x p constraints matrix C (clubSandwich Wald_test)."""
        C = np.atleast_2d(np.asarray(constraints, dtype=float))
        p = self.parts.beta.shape[0]
        if C.ndim != 2 or C.shape[1] != p:
            raise ValueError(f"constraints must be a q x {p} matrix (one column per coefficient)")
        if np.linalg.matrix_rank(C) < C.shape[0]:
            raise ValueError("the constraint rows are linearly dependent")
        # ``parts`` are for the columns of X divided by d: C beta = (C / d) beta_scaled
        return _htz_test(C / column_scale(self.model.X), self.parts)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: term, estimate, se, stat, df, pvalue, ci_low, ci_high,
        then k, n_clusters and the adjustment."""
        return coef_frame(self.coef, k=self.k, n_clusters=self.n_clusters, adjust=self.adjust)

    def summary(self) -> str:
        """The CHE fit's header and variance components, then the robust results table."""
        m = self.model
        lines = [
            f"Multilevel Meta-Analysis Model, CHE working model "
            f"(k = {m.k}; studies = {m.n_clusters}; rho = {m.rho:g}; method: {m.method})",
            "",
            f"sigma^2.study = {fmt_num(m.sigma2_study)}, sigma^2.within = "
            f"{fmt_num(m.sigma2_within)}",
            "",
            f"Cluster-robust inference: {self.adjust} sandwich clustered by study "
            f"({self.n_clusters} clusters), Satterthwaite df (clubSandwich)",
        ]
        if not np.isnan(self.qm):
            lines += [
                "",
                f"Test of Moderators (HTZ): F(df1 = {self.qm_df1}, df2 = "
                f"{fmt_num(self.qm_df2, 2)}) = {fmt_num(self.qm)}, {pvalue_phrase(self.qm_pvalue)}",
            ]
        lines += model_results(self.coef, "tval", m.level, self.pi_low, self.pi_high)
        return "\n".join(lines)


def robust(model: ClusteredModel, adjust: str = "CR2") -> RobustResult:
    """Cluster-robust covariance, Satterthwaite t tests and HTZ Wald test, clustered by study.

    Equals clubSandwich's ``coef_test(m, vcov = adjust, test = "Satterthwaite")``,
    ``conf_int`` and ``Wald_test(m, constrain_zero(2:p), vcov = adjust, test = "HTZ")``
    (metafor: ``robust(m, cluster = study, clubSandwich = TRUE)``).  The Satterthwaite
    df of coefficient i is 2 E^2 / Var of ``V_R[i, i]`` under the working model;
    the HTZ test is the same calculation for q contrasts at once.

    A coefficient identified by a single study (e.g. the indicator of a one-study level
    without intercept) has a robust variance of 0: one cluster cannot estimate it.
    clubSandwich then reports SE 0 and t = Inf and cannot compute the HTZ test; here
    that coefficient's se, df, t, p and CI are NaN, and so is a Wald test involving it,
    each with a warning; everything else is computed as usual.
    """
    if adjust not in _ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(_ADJUSTMENTS)}; got {adjust!r}")
    p = model.X.shape[1]
    n_clusters = model.n_clusters
    if n_clusters <= p:
        raise ValueError(
            f"cluster-robust inference needs more studies ({n_clusters}) than coefficients ({p})"
        )
    # the sandwich of y/s, v/s² (s a power of two; ``parts`` stay in those units, the
    # tests are scale-free), scaled back for the estimates and their covariance
    s, d = float(variance_scale(model.vi)[0]), column_scale(model.X)
    parts = _sandwich(model, adjust, s, d)
    beta, vcov = parts.beta * s / d, parts.vcov * s**2 / np.outer(d, d)
    undefined = np.diag(parts.vcov) <= _EIGEN_TOL * np.diag(parts.bread)
    if undefined.any():
        names = ", ".join(name for name, u in zip(model.coef_names, undefined, strict=True) if u)
        exact = np.all(np.abs(model.yi - model.X @ beta) <= 1e-12 * np.sqrt(model.vi))
        why = ("the effect sizes fit the model exactly (e.g. identical yi)" if exact
               else "identified by a single study")
        warnings.warn(
            f"the cluster-robust variance of {names} is zero ({why}): "
            "its robust se, df, test and CI are NaN",
            RuntimeWarning,
            stacklevel=3,  # the caller of MultilevelResult.robust()
        )
    se = np.where(undefined, np.nan, np.sqrt(np.diag(vcov)))
    df = np.array([np.nan if u else _htz_nu(row[None, :], parts)
                   for row, u in zip(np.eye(p), undefined, strict=True)])
    t = beta / se
    crit = stats.t.isf((1.0 - model.level) / 2.0, df)
    coef = pd.DataFrame(
        {
            "estimate": beta,
            "se": se,
            "df": df,
            "stat": t,
            "pvalue": 2.0 * stats.t.sf(np.abs(t), df),
            "ci_low": beta - crit * se,
            "ci_high": beta + crit * se,
        },
        index=pd.Index(model.coef_names),
    )
    intercept = model.coef_names[0] == "intrcpt"
    if p > 1 or not intercept:
        qm = _htz_test(np.eye(p)[1:] if intercept else np.eye(p), parts)
        qm_values = (qm.stat, qm.df1, qm.df2, qm.pvalue)
    else:
        qm_values = (float("nan"), 0, float("nan"), float("nan"))
    if p == 1 and intercept:
        half = crit[0] * np.sqrt(se[0] ** 2 + model.sigma2_study + model.sigma2_within)
        pi = (beta[0] - half, beta[0] + half)
    else:
        pi = (float("nan"), float("nan"))
    return RobustResult(
        **first_coefficient(coef),
        adjust=adjust,
        coef=coef,
        vcov=vcov,
        n_clusters=n_clusters,
        qm=float(qm_values[0]),
        qm_df1=int(qm_values[1]),
        qm_df2=float(qm_values[2]),
        qm_pvalue=float(qm_values[3]),
        pi_low=float(pi[0]),
        pi_high=float(pi[1]),
        model=model,
        parts=parts,
    )


def _sandwich(
    model: ClusteredModel, adjust: str, s: float = 1.0, d: np.ndarray | None = None
) -> _SandwichParts:
    """V_R and the per-cluster Gamma_j, H_j, computed block by block (see the module docstring),
    for the data y/s, v/s² and the columns of X divided by d (β_j then scaled by d_j/s)."""
    d = np.ones(model.X.shape[1]) if d is None else d
    beta = model.coef["estimate"].to_numpy() * d / s
    bread = model.vcov * np.outer(d, d) / s**2
    X = model.X / d
    chol_bread = np.linalg.cholesky(bread)
    blocks = cluster_blocks(model.study)
    p = beta.shape[0]
    n = blocks.n_clusters
    meat_terms = np.zeros((n, p))
    gamma = np.zeros((n, p, p))
    h = np.zeros((n, p, p))
    for group, block in zip(
        blocks.groups, che_blocks(model.yi / s, model.vi / s**2, X, blocks, model.rho),
        strict=True,
    ):
        sigma = marginal_covariance(block, model.sigma2_study / s**2, model.sigma2_within / s**2)
        wx = marginal_inverse(block, model.sigma2_study / s**2,
                              model.sigma2_within / s**2).apply(block.X)  # W_j X_j
        if adjust == "CR2":
            factor = _cr2_factor(sigma, block.X, bread)
            awx = factor @ (factor.transpose(0, 2, 1) @ wx)  # (C, m, p): A_j W_j X_j
        else:
            awx = np.sqrt(n / (n - 1.0)) * wx
        g = np.einsum("pq,cmq->cpm", bread, awx)  # g_j = M X_j' W_j A_j
        resid = block.y - block.X @ beta
        meat_terms[group.clusters] = np.einsum("cpm,cm->cp", g, resid)
        gamma[group.clusters] = g @ sigma @ g.transpose(0, 2, 1)
        h[group.clusters] = g @ block.X @ chol_bread
    return _SandwichParts(beta, meat_terms.T @ meat_terms, bread, gamma, h)


def _cr2_adjustment(sigma: np.ndarray, X: np.ndarray, bread: np.ndarray) -> np.ndarray:
    """A_j = D_j' G_j^-1/2 D_j with G_j = D_j (Sigma_j - X_j M X_j') D_j', Sigma_j = D_j' D_j:
    ``F_j F_j'`` of :func:`_cr2_factor`."""
    factor = _cr2_factor(sigma, X, bread)
    return factor @ factor.transpose(0, 2, 1)


def _cr2_factor(sigma: np.ndarray, X: np.ndarray, bread: np.ndarray) -> np.ndarray:
    """F_j with A_j = F_j F_j', A_j the CR2 adjustment D_j' G_j^-1/2 D_j (Pustejovsky &
    Tipton 2018, JBES 36:672-683), G_j = D_j (Sigma_j - X_j M X_j') D_j', Sigma_j = D_j' D_j.

    With D_j = L_j' (Sigma_j = L_j L_j', Cholesky), G_j = T_j^2 - u_j M u_j' where T_j = L_j' L_j
    and u_j = L_j' X_j; with G_j = Q Lambda Q', A_j = (L_j Q) Lambda^-1/2 (L_j Q)', so
    F_j = L_j Q Lambda^-1/4.  Eigenvalues below 1e-12 are dropped (a generalised inverse,
    as clubSandwich's ``matrix_power``).  Applying A_j as F_j (F_j' b) saves forming it.
    """
    lower = np.linalg.cholesky(sigma)  # Sigma = L L', D = L'
    upper = lower.transpose(0, 2, 1)
    t = upper @ lower
    u = upper @ X
    G = t @ t - u @ bread @ u.transpose(0, 2, 1)
    values, vectors = np.linalg.eigh(G)
    inv_fourth_root = np.where(values > _EIGEN_TOL,
                               np.maximum(values, _EIGEN_TOL) ** -0.25, 0.0)
    return (lower @ vectors) * inv_fourth_root[:, None, :]


def _htz_nu(C: np.ndarray, parts: _SandwichParts) -> float:
    """Degrees of freedom nu of the HTZ approximation for the q contrasts C (C V_R C' regular).

    With Omega = E[C V_R C'] under the working model and Ctilde = Omega^-1/2 C, let
    Gamma~_j = Ctilde Gamma_j Ctilde', K_j = Ctilde H_j, N_j = K_j K_j' and
    Z_st = sum_j K_j[s] K_j[t]'.  The normalised covariance terms are
    B_stjk = delta_jk Gamma~_j[s, t] - K_j[s] . K_k[t], and (clubSandwich's
    ``total_variance_mat``) nu = q (q + 1) / sum_st sum_jk (B_stjk B_tsjk + B_ssjk B_ttjk),
    expanded so that only per-cluster terms and the p x p matrices Z_st appear.
    For q = 1 this is the Satterthwaite df 2 E^2 / Var.
    """
    q = C.shape[0]
    gam = C @ parts.gamma @ C.T  # (J, q, q)
    K = C @ parts.h  # (J, q, p)
    omega = (gam - K @ K.transpose(0, 2, 1)).sum(axis=0)
    values, vectors = np.linalg.eigh(omega)
    inv_sqrt = np.where(values > _EIGEN_TOL, 1.0 / np.sqrt(np.maximum(values, _EIGEN_TOL)), 0.0)
    norm = (vectors * inv_sqrt) @ vectors.T
    gam = norm @ gam @ norm
    K = norm @ K
    N = K @ K.transpose(0, 2, 1)
    Z = np.einsum("jsa,jtb->stab", K, K)
    diag_gam = np.einsum("jss->j", gam)
    diag_n = np.einsum("jss->j", N)
    total = (
        np.einsum("jst,jts->", gam, gam)
        + np.sum(diag_gam**2)
        - 2.0 * np.einsum("jst,jst->", gam, N)
        - 2.0 * np.sum(diag_gam * diag_n)
        + np.einsum("tsab,tsba->", Z, Z)
        + np.einsum("stab,tsba->", Z, Z)
    )
    return float(q * (q + 1) / total)


def _htz_test(C: np.ndarray, parts: _SandwichParts) -> WaldTestResult:
    """F = delta Q / q on (q, nu - q + 1) df, delta = max((nu - q + 1) / nu, 0).

    Q = (C beta)' (C V_R C')^-1 (C beta) (Tipton & Pustejovsky 2015; clubSandwich
    ``Hotelling_Tsq``).  Undefined (NaN, with a warning) when C V_R C' is singular
    relative to the model-based C M C' (generalised eigenvalue below 1e-12), as when a
    constrained coefficient is identified by a single study.
    """
    q = C.shape[0]
    cb = C @ parts.beta
    robust_cov = C @ parts.vcov @ C.T
    model_chol = np.linalg.cholesky(C @ parts.bread @ C.T)
    scaled = np.linalg.solve(model_chol, np.linalg.solve(model_chol, robust_cov).T)
    if np.linalg.eigvalsh(scaled)[0] <= _EIGEN_TOL:
        warnings.warn(
            "the HTZ Wald test is undefined: the cluster-robust covariance of the tested "
            "contrasts is singular (a coefficient identified by a single study); returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        nan = float("nan")
        return WaldTestResult(stat=nan, df1=q, df2=nan, pvalue=nan)
    Q = float(cb @ np.linalg.solve(robust_cov, cb))
    nu = _htz_nu(C, parts)
    df2 = nu - q + 1.0
    F = max(df2 / nu, 0.0) * Q / q
    pvalue = float(stats.f.sf(F, q, df2)) if df2 > 0 else float("nan")
    return WaldTestResult(stat=F, df1=q, df2=df2, pvalue=pvalue)
