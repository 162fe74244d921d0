"""The correlated-and-hierarchical-effects (CHE) working model for dependent effects.

Model (Pustejovsky & Tipton 2022, Prevention Science 23:425-438)::

    y_ij = x_ij' beta + u_j + w_ij + e_ij,
    u_j ~ N(0, sigma2_study),  w_ij ~ N(0, sigma2_within),
    Var(e_j) = V_j,  V_j[a, a] = v_a,  V_j[a, b] = rho * sqrt(v_a v_b),

so the marginal covariance of study j is
``Sigma_j = V_j + sigma2_study * 1 1' + sigma2_within * I``.  This is metafor's
``V <- vcalc(vi, cluster = study, obs = es_id, rho = rho)`` followed by
``rma.mv(yi, V, random = ~ 1 | study/es_id, method = "REML")``.

Estimation works per study block (see ``blocks.py``), never with a k x k matrix:
the (restricted) log-likelihood, its score and its expected information are
sums of per-block terms plus rank-p corrections, and the variance components
are found by Newton steps (Fisher scoring where the observed information is not
positive definite) projected onto sigma2 >= 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.blocks import (
    Block,
    ClusterBlocks,
    che_blocks,
    cluster_blocks,
    marginal_inverse,
)
from metaally.models.inputs import (
    check_aligned,
    check_level,
    column_scale,
    design_matrix,
    effect_arrays,
    mod_columns,
    take_rows,
    variance_scale,
)
from metaally.models.printing import Printable, coef_frame, fmt_num, model_results, pvalue_phrase
from metaally.models.protocol import first_coefficient
from metaally.models.robust import RobustResult, robust

__all__ = [
    "SINGLE_LEVEL_WARNING",
    "multilevel",
    "MultilevelResult",
]

_METHODS = ("REML", "ML")
#: metafor's ``rma.mv`` warning when a random-effects factor has one level (one study).
SINGLE_LEVEL_WARNING = (
    "Single-level factor(s) found in 'random' argument. "
    "Corresponding 'sigma2' value(s) fixed to 0."
)
_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class _Fit:
    """Log-likelihood, score, expected and observed information at one value of sigma2."""

    loglik: float
    score: np.ndarray  # (2,)
    info: np.ndarray  # (2, 2) expected
    observed_info: np.ndarray  # (2, 2) minus the Hessian
    beta: np.ndarray
    vcov: np.ndarray


def _evaluate(blocks: list[Block], theta: np.ndarray, reml: bool) -> _Fit:
    """(Restricted) log-likelihood, score, expected and observed information of the CHE model.

    With D_s = 1 1' and D_w = I the derivatives of Sigma, A = X' Sigma^-1 X,
    P = Sigma^-1 - Sigma^-1 X A^-1 X' Sigma^-1 and r = y - X beta_GLS
    (Harville 1977, JASA 72:320-338):

        score_i = -1/2 tr(P D_i) + 1/2 r' Sigma^-1 D_i Sigma^-1 r         (REML; Sigma^-1 for ML)
        info_ik =  1/2 tr(P D_i P D_k)

    tr(P D_i) = tr(Sigma^-1 D_i) - tr(A^-1 B_i) with B_i = X' Sigma^-1 D_i Sigma^-1 X, and
    tr(P D_i P D_k) = tr(Sigma^-1 D_i Sigma^-1 D_k) - 2 tr(A^-1 T_ik) + tr(A^-1 B_i A^-1 B_k) with
    T_ik = X' Sigma^-1 D_i Sigma^-1 D_k Sigma^-1 X: every term is a sum over study blocks.
    The observed information is 2 AI - info with the average information
    AI_ik = 1/2 u_i' P u_k, u_i = D_i P y = D_i Sigma^-1 r (Gilmour, Thompson & Cullis 1995,
    Biometrics 51:1440-1450); for ML, info uses Sigma^-1 in place of P, AI is unchanged.
    """
    p = blocks[0].X.shape[2]
    k = sum(b.y.size for b in blocks)
    A = np.zeros((p, p))
    b_vec = np.zeros(p)
    logdet = 0.0
    parts = []
    for block in blocks:
        sinv = marginal_inverse(block, theta[0], theta[1])
        logdet += sinv.logdet
        sx = sinv.apply(block.X)
        sy = sinv.apply(block.y)
        A += np.einsum("cmp,cmq->pq", block.X, sx)
        b_vec += np.einsum("cmp,cm->p", block.X, sy)
        parts.append((sinv, sx, sy))
    vcov = np.linalg.inv(A)
    beta = vcov @ b_vec

    trace = np.zeros(2)  # tr(Sigma^-1 D_i)
    resid_quad = np.zeros(2)  # r' Sigma^-1 D_i Sigma^-1 r
    info_full = np.zeros((2, 2))  # tr(Sigma^-1 D_i Sigma^-1 D_k)
    u_quad = np.zeros((2, 2))  # u_i' Sigma^-1 u_k
    u_cross = np.zeros((2, p))  # X' Sigma^-1 u_i
    B = np.zeros((2, p, p))
    T = np.zeros((2, 2, p, p))
    rss = 0.0
    for block, (sinv, sx, sy) in zip(blocks, parts, strict=True):
        s_one = sinv.apply(np.ones_like(block.y))  # Sigma^-1 1
        s11 = s_one.sum(axis=1)  # 1' Sigma^-1 1
        z = np.einsum("cm,cmp->cp", s_one, block.X)  # X' Sigma^-1 1
        sr = sy - sx @ beta  # Sigma^-1 r
        rss += np.einsum("cm,cm->", block.y - block.X @ beta, sr)
        trace += [s11.sum(), sinv.trace()]
        sr_sum = sr.sum(axis=1)  # u_s = 1 * sr_sum, u_w = sr
        resid_quad += [np.sum(sr_sum**2), np.sum(sr**2)]
        s_sr = sinv.apply(sr)
        one_s_sr = np.sum(sr_sum * np.einsum("cm,cm->c", s_one, sr))
        u_quad += [
            [np.sum(sr_sum**2 * s11), one_s_sr],
            [one_s_sr, np.einsum("cm,cm->", sr, s_sr)],
        ]
        u_cross += [z.T @ sr_sum, np.einsum("cmp,cm->p", sx, sr)]
        info_full += [
            [np.sum(s11**2), np.sum(s_one**2)],
            [np.sum(s_one**2), sinv.frobenius2()],
        ]
        if reml:
            zw = np.einsum("cm,cmq->cq", s_one, sx)  # 1' Sigma^-2 X
            B[0] += z.T @ z
            B[1] += np.einsum("cmp,cmq->pq", sx, sx)
            T[0, 0] += np.einsum("c,cp,cq->pq", s11, z, z)
            T[0, 1] += z.T @ zw
            T[1, 1] += np.einsum("cmp,cmq->pq", sx, sinv.apply(sx))
    score = 0.5 * (resid_quad - trace)
    info = 0.5 * info_full
    if reml:
        T[1, 0] = T[0, 1].T
        vb = vcov @ B  # A^-1 B_i
        score += 0.5 * np.trace(vb, axis1=1, axis2=2)
        info += 0.5 * (
            -2.0 * np.einsum("pq,ikqp->ik", vcov, T)
            + np.einsum("iab,kba->ik", vb, vb)
        )
        _, logdet_a = np.linalg.slogdet(A)
        _, logdet_xx = np.linalg.slogdet(
            sum(np.einsum("cmp,cmq->pq", blk.X, blk.X) for blk in blocks)
        )
        loglik = -0.5 * ((k - p) * _LOG_2PI + logdet + logdet_a - logdet_xx + rss)
    else:
        loglik = -0.5 * (k * _LOG_2PI + logdet + rss)
    average_info = 0.5 * (u_quad - u_cross @ vcov @ u_cross.T)
    return _Fit(float(loglik), score, info, 2.0 * average_info - info, beta, vcov)


def _newton(
    blocks: list[Block],
    start: np.ndarray,
    reml: bool,
    scale: float,
    fixed: np.ndarray,
    max_iter: int = 1000,
) -> tuple[np.ndarray, _Fit]:
    """Maximise the (restricted) likelihood over sigma2 >= 0 by projected Newton steps.

    Newton-Raphson on the observed information where it is positive definite,
    Fisher scoring (expected information) elsewhere.  Components at zero whose
    score points below zero are held there (the Karush-Kuhn-Tucker condition of
    the bounded problem), and so are the components ``fixed`` marks (held at their
    ``start`` value); steps are halved until the likelihood does not decrease.
    A singular information matrix (every study has one effect, so only the sum
    of the components is identified) gets the minimum-norm step.
    Converged when no component moves by more than 1e-11 x (its value + ``scale``),
    ``scale`` being the typical sampling variance; warns if ``max_iter`` steps do
    not get there.
    """
    theta = start
    fit = _evaluate(blocks, theta, reml)
    for _ in range(max_iter):
        free = ((theta > 0) | (fit.score > 0)) & ~fixed
        step = np.zeros(2)
        if free.any():
            sub = np.ix_(free, free)
            hessian = fit.observed_info[sub]
            if np.linalg.eigvalsh(hessian)[0] <= 1e-8 * np.abs(hessian).max():
                hessian = fit.info[sub]
            step[free] = np.linalg.lstsq(hessian, fit.score[free], rcond=1e-12)[0]
        length = 1.0
        while True:
            candidate = np.maximum(theta + length * step, 0.0)
            new_fit = _evaluate(blocks, candidate, reml)
            if new_fit.loglik >= fit.loglik - 1e-12 * abs(fit.loglik) or length < 1e-6:
                break
            length /= 2.0
        moved = np.abs(candidate - theta)
        theta, fit = candidate, new_fit
        if np.all(moved <= 1e-11 * (theta + scale)):
            break
    else:
        warnings.warn(
            f"the variance components did not converge in {max_iter} Newton steps",
            RuntimeWarning,
            stacklevel=3,
        )
    return theta, fit


@dataclass(frozen=True)
class MultilevelResult(Printable):
    """A fitted CHE working model (metafor ``rma.mv`` with ``random = ~ 1 | study/es_id``).

    ``estimate``, ``se``, ``stat``, ``pvalue``, ``ci_low``, ``ci_high`` describe the first
    coefficient (the overall mean in an intercept-only model); ``coef`` holds every
    coefficient.  ``pi_low``/``pi_high`` (intercept-only models; NaN with moderators)
    follow metafor's ``predict``: ``mu +/- z * sqrt(se^2 + sigma2_study + sigma2_within)``.
    ``q``/``q_df``/``q_pvalue``: metafor's test for (residual) heterogeneity ``QE``;
    ``qm``/``qm_df1``/``qm_pvalue``: its Wald test of the moderators ``QM``.  Fields shared
    by every fitted model: :mod:`metaally.models.protocol`.
    """

    estimate: float
    se: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    sigma2_study: float
    sigma2_within: float
    loglik: float
    k: int
    n_clusters: int
    method: str
    rho: float
    level: float
    coef: pd.DataFrame
    vcov: np.ndarray
    qm: float
    qm_df1: int
    qm_pvalue: float
    q: float
    q_df: int
    q_pvalue: float
    pi_low: float
    pi_high: float
    i2: float
    yi: np.ndarray
    vi: np.ndarray
    study: np.ndarray
    es_id: np.ndarray
    X: np.ndarray
    coef_names: tuple[str, ...]

    @property
    def df(self) -> float:
        """Degrees of freedom of the coefficient tests: ``inf`` (z tests, metafor's default)."""
        return float("inf")

    @property
    def qm_df2(self) -> float:
        """Denominator df of the omnibus test: ``inf`` (a chi-square test)."""
        return float("inf")

    def vcov_at(self, sigma2_study: float, sigma2_within: float) -> np.ndarray:
        """(X' Sigma^-1 X)^-1 of this model's data with the variance components set to the
        given values (metafor's refit with fixed ``sigma2``, as ``dfbetas.rma.mv`` uses)."""
        blocks = che_blocks(self.yi, self.vi, self.X, cluster_blocks(self.study), self.rho)
        return _evaluate(blocks, np.array([sigma2_study, sigma2_within]), reml=False).vcov

    def robust(self, adjust: str = "CR2") -> RobustResult:
        """Cluster-robust inference clustered by study (see ``metaally.models.robust.robust``)."""
        return robust(self, adjust=adjust)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: term, estimate, se, stat, df, pvalue, ci_low, ci_high,
        then k, n_clusters and the variance components."""
        return coef_frame(self.coef, self.df, k=self.k, n_clusters=self.n_clusters,
                          method=self.method, rho=self.rho, sigma2_study=self.sigma2_study,
                          sigma2_within=self.sigma2_within, i2=self.i2, q=self.q,
                          q_df=self.q_df, q_pvalue=self.q_pvalue)

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.rma.mv``."""
        p = len(self.coef_names)
        lines = [
            f"Multilevel Meta-Analysis Model, CHE working model "
            f"(k = {self.k}; studies = {self.n_clusters}; rho = {self.rho:g}; "
            f"method: {self.method})",
            "",
            f"logLik = {fmt_num(self.loglik)}",
            "",
            "Variance Components:",
            "",
            f"{'':15}{'estim':>8}{'sqrt':>8}{'nlvls':>7}  factor",
            f"{'sigma^2.study':15}{fmt_num(self.sigma2_study):>8}"
            f"{fmt_num(np.sqrt(self.sigma2_study)):>8}{self.n_clusters:>7}  study",
            f"{'sigma^2.within':15}{fmt_num(self.sigma2_within):>8}"
            f"{fmt_num(np.sqrt(self.sigma2_within)):>8}{self.k:>7}  study/es_id",
            "",
            f"I^2 (total heterogeneity / total variability): {self.i2:.2f}%",
            "",
            f"Test for {'Residual ' if p > 1 else ''}Heterogeneity:",
            f"QE(df = {self.q_df}) = {fmt_num(self.q)}, {pvalue_phrase(self.q_pvalue)}",
        ]
        if not np.isnan(self.qm):
            lines += [
                "",
                f"Test of Moderators: QM(df = {self.qm_df1})"
                f" = {fmt_num(self.qm)}, {pvalue_phrase(self.qm_pvalue)}",
            ]
        lines += model_results(self.coef, "zval", self.level, self.pi_low, self.pi_high)
        return "\n".join(lines)


def multilevel(
    yi: Any,
    vi: Any,
    study: Any,
    es_id: Any = None,
    rho: float = 0.6,
    mods: Any = None,
    method: str = "REML",
    intercept: bool = True,
    level: float = 0.95,
) -> MultilevelResult:
    """Fit the CHE working model to dependent effect sizes.

    ``yi = X beta + u_study + w_effect + e`` with ``Var(u) = sigma2_study``,
    ``Var(w) = sigma2_within`` and sampling errors within a study correlated by ``rho``
    (compound symmetry, ``rho * sqrt(v_a v_b)``).  metafor equivalent::

        V <- vcalc(vi, cluster = study, obs = es_id, rho = rho)
        rma.mv(yi, V, mods = mods, random = ~ 1 | study/es_id, method = method)

    ``method`` is "REML" (default) or "ML"; both variance components are bounded at 0.
    Tests and intervals for the coefficients use the normal distribution (metafor's
    default ``test = "z"``); for cluster-robust inference call ``.robust()``.
    ``study`` labels may be numbers or strings; ``es_id`` (default: 1, 2, ... within
    each study) must identify each effect within its study.  When every study has a
    single effect only the sum ``sigma2_study + sigma2_within`` (the univariate tau^2)
    is identified; it is split equally.  With a single study the study factor has one
    level: as metafor's ``rma.mv`` does, ``sigma2_study`` is fixed at 0 (with metafor's
    warning) and only ``sigma2_within`` is estimated.

    I^2 is the total of the multilevel model (metafor FAQ): 100 sum(sigma2) /
    (sum(sigma2) + (k - p) / tr(P)), P = W - W X (X'WX)^-1 X'W, W = diag(1/vi).
    Rows with a missing yi, vi, study label or moderator are dropped with a warning
    (metafor's ``na.omit``); pandas arguments must share one index.
    Reference: Pustejovsky & Tipton (2022), Prevention Science 23:425-438.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    if not (np.ndim(rho) == 0 and -1.0 < float(rho) < 1.0):
        raise ValueError(f"rho must be a number between -1 and 1; got {rho!r}")
    level = check_level(level)
    check_aligned(yi=yi, vi=vi, study=study, es_id=es_id, mods=mods)
    labels = [np.asarray(study, dtype=object).reshape(-1)]
    if es_id is not None:
        labels.append(np.asarray(es_id, dtype=object).reshape(-1))
    names = ["study", "es_id"][: len(labels)]
    mod_cols = mod_columns(mods)
    y, v, labels, kept = effect_arrays(yi, vi, *labels, *mod_cols,
                                       names=names + ["mods"] * len(mod_cols))
    labels = labels[: len(names)]
    X, names = design_matrix(take_rows(mods, kept), y.shape[0], intercept=intercept)
    k, p = X.shape
    if k <= p:
        raise ValueError(f"the model has {p} coefficients but only {k} effect sizes")
    study_arr = labels[0]
    blocks = cluster_blocks(study_arr)
    es_arr = labels[1] if es_id is not None else _effect_numbers(blocks)
    _check_unique_effects(blocks.codes, es_arr)

    # fit y/s, v/s² and the columns of X divided by d (powers of two) and scale back:
    # the same model without overflow at any scale of y or of a moderator
    s = float(variance_scale(v)[0])
    d = column_scale(X)
    ys, vs, Xs = y / s, v / s**2, X / d
    che = che_blocks(ys, vs, Xs, blocks, float(rho))
    reml = method == "REML"
    start = np.full(2, max(_residual_variance(ys, Xs) - vs.mean(), 0.01 * vs.mean()) / 2.0)
    fixed = np.array([blocks.n_clusters == 1, False])
    if fixed[0]:
        warnings.warn(SINGLE_LEVEL_WARNING, UserWarning, stacklevel=2)
        start[0] = 0.0
    theta, fit = _newton(che, start, reml, scale=float(vs.mean()), fixed=fixed)
    i2 = _total_i2(vs, Xs, float(theta.sum()))
    theta = theta * s**2
    fit = replace(fit, beta=fit.beta * s / d, vcov=fit.vcov * s**2 / np.outer(d, d),
                  loglik=fit.loglik - (k - p if reml else k) * np.log(s))

    se = np.sqrt(np.diag(fit.vcov))
    z = fit.beta / se
    crit = stats.norm.isf((1.0 - level) / 2.0)
    coef = pd.DataFrame(
        {
            "estimate": fit.beta,
            "se": se,
            "stat": z,
            "pvalue": 2.0 * stats.norm.sf(np.abs(z)),
            "ci_low": fit.beta - crit * se,
            "ci_high": fit.beta + crit * se,
        },
        index=pd.Index(names, name=None),
    )
    tested = slice(1, None) if intercept else slice(None)
    if p > 1 or not intercept:
        b = fit.beta[tested]
        qm = float(b @ np.linalg.solve(fit.vcov[tested, tested], b))
        qm_pvalue = float(stats.chi2.sf(qm, b.size))
        qm_df1 = int(b.size)
    else:
        qm = qm_pvalue = float("nan")
        qm_df1 = 0
    if p == 1 and intercept:
        half = crit * np.sqrt(se[0] ** 2 + theta.sum())
        pi_low, pi_high = fit.beta[0] - half, fit.beta[0] + half
    else:
        pi_low = pi_high = float("nan")
    q = _residual_heterogeneity(che)
    return MultilevelResult(
        **first_coefficient(coef),
        sigma2_study=float(theta[0]),
        sigma2_within=float(theta[1]),
        loglik=fit.loglik,
        k=k,
        n_clusters=blocks.n_clusters,
        method=method,
        rho=float(rho),
        level=float(level),
        coef=coef,
        vcov=fit.vcov,
        qm=qm,
        qm_df1=qm_df1,
        qm_pvalue=qm_pvalue,
        q=q,
        q_df=k - p,
        q_pvalue=float(stats.chi2.sf(q, k - p)),
        pi_low=float(pi_low),
        pi_high=float(pi_high),
        i2=i2,
        yi=y,
        vi=v,
        study=study_arr,
        es_id=es_arr,
        X=X,
        coef_names=tuple(names),
    )


def _effect_numbers(blocks: ClusterBlocks) -> np.ndarray:
    """1, 2, ... numbering the effects within each study, in row order."""
    numbers = np.empty(blocks.codes.shape[0], dtype=int)
    for group in blocks.groups:
        numbers[group.rows] = np.arange(1, group.m + 1)
    return numbers


def _check_unique_effects(codes: np.ndarray, es_id: np.ndarray) -> None:
    pairs = pd.DataFrame({"study": codes, "es_id": es_id})
    if pairs.duplicated().any():
        raise ValueError(
            "es_id must identify each effect within its study; "
            f"{int(pairs.duplicated().sum())} (study, es_id) pair(s) occur more than once"
        )


def _residual_variance(y: np.ndarray, X: np.ndarray) -> float:
    """Variance of the OLS residuals: the scale of the starting values."""
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    return float(resid @ resid / max(y.shape[0] - X.shape[1], 1))


def _residual_heterogeneity(blocks: list[Block]) -> float:
    """Q_E = r' V^-1 r with r the GLS residuals under the sampling covariances V alone.

    metafor's ``QE`` of ``rma.mv`` (chi-square with k - p df under homogeneity).
    """
    fit = _evaluate(blocks, np.zeros(2), reml=False)
    total = 0.0
    for block in blocks:
        r = block.y - block.X @ fit.beta
        total += float(np.einsum("ca,ca->", r, marginal_inverse(block, 0.0, 0.0).apply(r)))
    return total


def _total_i2(vi: np.ndarray, X: np.ndarray, sigma2: float) -> float:
    """I^2 = 100 sigma2 / (sigma2 + (k - p) / tr(P)), P = W - W X (X'WX)^-1 X'W, W = diag(1/vi).

    metafor FAQ, "I^2 for multilevel and multivariate models" (Nakagawa & Santos 2012).
    """
    w = 1.0 / vi
    xwx = X.T @ (w[:, None] * X)
    xw2x = X.T @ ((w**2)[:, None] * X)
    trace_p = w.sum() - np.trace(np.linalg.solve(xwx, xw2x))
    k, p = X.shape
    return float(100.0 * sigma2 / (sigma2 + (k - p) / trace_p))
