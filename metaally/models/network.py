"""Contrast-based network meta-analysis (the consistency model with one between-study variance).

Each row i is a contrast between two treatments of one study, ``y_i`` = effect of
``treat1`` minus effect of ``treat2``.  With the treatments other than the reference
as parameters ``d`` (each vs the reference, d_reference = 0) the model is
(Lu & Ades 2004, Stat Med 23:3105-3124; Salanti et al. 2008, Stat Methods Med Res
17:279-301)::

    y = X d + u + e,   X[i, t] = [treat1_i = t] - [treat2_i = t],
    e ~ N(0, V)                          V: sampling covariance, block-diagonal by study
    u ~ N(0, tau2 * R)                   R[a, b] = 1    same study, same (treat1, treat2)
                                         R[a, b] = 1/2  same study, different comparisons
                                         R[a, b] = 0    different studies

which is metafor's ``rma.mv(yi, V, mods = ~ X - 1, random = ~ comp | study, rho = 1/2)``
with ``comp`` the (treat1, treat2) label of a row (Viechtbauer, metafor documentation
of ``dat.senn2013`` and ``dat.hasselblad1998``).  A row comparing a treatment with
itself has an all-zero row of X: it informs tau2 only.

tau2 is estimated by REML (or ML) with Newton steps on the exact score and observed
information (Harville 1977, JASA 72:320-338), computed study block by study block:
with Sigma_j = V_j + tau2 R_j, A = sum_j X_j' Sigma_j^-1 X_j and P the REML projection,

    score = -1/2 tr(P R) + 1/2 y' P R P y,      info = 1/2 tr(P R P R),
    observed info = y' P R P R P y - 1/2 tr(P R P R).

From the estimates ``d`` and their covariance the result derives every pairwise
contrast (``league_table``), P-scores and SUCRA (ranking), the design-by-treatment
interaction test and side-splitting (inconsistency), and CR2 cluster-robust inference.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.printing import Printable, coef_table, fields_frame, fmt_num, pvalue_phrase
from metaally.models.robust import _cr2_adjustment, _htz_nu, _SandwichParts

__all__ = [
    "InconsistencyTest",
    "NetworkResult",
    "RHO",
    "contrast_matrix",
    "network_components",
    "network_meta_analysis",
]

_METHODS = ("REML", "ML")
_LOG_2PI = np.log(2.0 * np.pi)
#: correlation of the random effects of two different comparisons in one study (metafor's rho)
RHO = 0.5


# ---------------------------------------------------------------------------- network shape


def network_components(treat1: Any, treat2: Any) -> list[list[str]]:
    """The connected parts of a network: lists of treatments, largest first.

    Two treatments are connected when a row compares them (directly or through a chain
    of rows).  A network meta-analysis can only compare treatments in one component;
    analyse each component on its own (select its rows) when there are several.
    """
    t1, t2 = _labels(treat1, "treat1"), _labels(treat2, "treat2")
    parent: dict[str, str] = {t: t for t in sorted(set(t1) | set(t2))}

    def root(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for a, b in zip(t1, t2, strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for t in parent:
        groups.setdefault(root(t), []).append(t)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def contrast_matrix(treat1: Any, treat2: Any, treatments: list[str]) -> np.ndarray:
    """``X[i, t] = [treat1_i = t] - [treat2_i = t]`` for the ``treatments`` given (metafor's
    ``contrmat`` with the reference column dropped)."""
    t1, t2 = np.asarray(treat1, dtype=object), np.asarray(treat2, dtype=object)
    return np.column_stack(
        [(t1 == t).astype(float) - (t2 == t).astype(float) for t in treatments]
    ) if treatments else np.zeros((t1.shape[0], 0))


# ---------------------------------------------------------------------------- estimation


@dataclass(frozen=True)
class _Study:
    """One study's rows: design X (m, p), y (m,), sampling covariance V and structure R (m, m)."""

    rows: np.ndarray
    X: np.ndarray
    y: np.ndarray
    V: np.ndarray
    R: np.ndarray


@dataclass(frozen=True)
class _Fit:
    loglik: float
    score: float
    info: float
    observed_info: float
    beta: np.ndarray
    vcov: np.ndarray


def _studies(y: np.ndarray, V: np.ndarray, X: np.ndarray, study: np.ndarray,
             comp: np.ndarray) -> list[_Study]:
    out = []
    for s in pd.unique(study):
        rows = np.flatnonzero(study == s)
        c = comp[rows]
        R = np.where(c[:, None] == c[None, :], 1.0, RHO)
        out.append(_Study(rows, X[rows], y[rows], V[np.ix_(rows, rows)], R))
    return out


def _evaluate(studies: list[_Study], tau2: float, reml: bool) -> _Fit:
    """(Restricted) log-likelihood, score, expected and observed information at ``tau2``.

    Block-wise (Sigma_j = V_j + tau2 R_j, S_j = Sigma_j^-1, r = y - X beta, B = sum X'SRSX,
    T = sum X'SRSRSX, A = sum X'SX):
      tr(P R) = sum tr(S R) - tr(A^-1 B),
      tr(P R P R) = sum tr(S R S R) - 2 tr(A^-1 T) + tr((A^-1 B)^2),
      P y = S r blockwise; for ML, the A^-1 terms are dropped.
    REML log-likelihood as metafor's (REMLf = TRUE):
      -1/2 [(k - p) log 2 pi + sum log|Sigma_j| + log|A| - log|X'X| + r' S r].
    """
    p = studies[0].X.shape[1]
    k = sum(s.y.size for s in studies)
    A = np.zeros((p, p))
    b = np.zeros(p)
    logdet = 0.0
    parts = []
    for s in studies:
        sigma = s.V + tau2 * s.R
        chol = np.linalg.cholesky(sigma)
        logdet += 2.0 * np.log(np.diag(chol)).sum()
        sinv = np.linalg.inv(sigma)
        sx = sinv @ s.X
        A += s.X.T @ sx
        b += sx.T @ s.y
        parts.append((sinv, sx))
    vcov = np.linalg.inv(A)
    beta = vcov @ b
    trace_pr = trace_prpr = quad = ypry3 = rss = 0.0
    B = np.zeros((p, p))
    T = np.zeros((p, p))
    u_cross = np.zeros(p)  # X' S u with u = R P y, for y'PRPRPy = u'Su - u_cross' A^-1 u_cross
    for s, (sinv, sx) in zip(studies, parts, strict=True):
        resid = s.y - s.X @ beta
        py = sinv @ resid  # (P y)_j
        rss += float(resid @ py)
        rs = s.R @ sinv
        trace_pr += np.trace(rs)
        trace_prpr += np.sum(rs * rs.T)
        u = s.R @ py
        quad += float(py @ u)
        ypry3 += float(u @ sinv @ u)
        u_cross += sx.T @ u
        rsx = s.R @ sx
        B += sx.T @ rsx
        T += rsx.T @ sinv @ rsx
    if reml:
        vb = vcov @ B
        trace_pr -= np.trace(vb)
        trace_prpr += -2.0 * np.trace(vcov @ T) + np.sum(vb * vb.T)
    ypry3 -= float(u_cross @ vcov @ u_cross)
    score = -0.5 * trace_pr + 0.5 * quad
    info = 0.5 * trace_prpr
    if reml:
        _, logdet_a = np.linalg.slogdet(A)
        _, logdet_xx = np.linalg.slogdet(sum(s.X.T @ s.X for s in studies))
        loglik = -0.5 * ((k - p) * _LOG_2PI + logdet + logdet_a - logdet_xx + rss)
    else:
        loglik = -0.5 * (k * _LOG_2PI + logdet + rss)
    return _Fit(float(loglik), float(score), float(info), float(ypry3 - info), beta, vcov)


def _estimate_tau2(studies: list[_Study], reml: bool, max_iter: int = 500) -> tuple[float, _Fit]:
    """Maximise the (restricted) likelihood over tau2 >= 0.

    Newton steps on the observed information where it is positive, Fisher scoring
    otherwise, halved until the likelihood does not decrease, projected onto tau2 >= 0
    (held at 0 when the score there is negative).  Converged when tau2 moves by less than
    1e-12 x (tau2 + the mean sampling variance); warns otherwise.  When the information
    about tau2 is zero (nothing in the residuals can separate it from sampling error)
    tau2 is set to 0 with a warning.
    """
    scale = float(np.mean(np.concatenate([np.diag(s.V) for s in studies])))
    tau2 = 0.5 * scale
    fit = _evaluate(studies, tau2, reml)
    if fit.info <= 1e-12 * scale**-2:
        warnings.warn("tau2 is not identified: the contrasts leave no residual variation "
                      "between comparisons (e.g. one contrast per comparison); tau2 set to 0",
                      RuntimeWarning, stacklevel=3)
        return 0.0, _evaluate(studies, 0.0, reml)
    for _ in range(max_iter):
        if tau2 <= 0.0 and fit.score <= 0.0:
            break
        curvature = fit.observed_info if fit.observed_info > 1e-8 * fit.info else fit.info
        step = fit.score / curvature
        length = 1.0
        while True:
            candidate = max(tau2 + length * step, 0.0)
            new = _evaluate(studies, candidate, reml)
            if new.loglik >= fit.loglik - 1e-13 * abs(fit.loglik) or length < 1e-8:
                break
            length /= 2.0
        moved = abs(candidate - tau2)
        tau2, fit = candidate, new
        if moved <= 1e-12 * (tau2 + scale):
            break
    else:
        warnings.warn(f"tau2 did not converge in {max_iter} Newton steps", RuntimeWarning,
                      stacklevel=3)
    return tau2, fit


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class InconsistencyTest(Printable):
    """Design-by-treatment interaction test (Higgins et al. 2012, Res Synth Methods 3:98-110).

    Wald chi-square of the design-specific deviations in the design-by-treatment
    interaction model (tau2 re-estimated in that model); ``df`` = number of deviations.
    """

    stat: float
    df: int
    pvalue: float
    tau2: float

    def summary(self) -> str:
        """One line, as metafor prints a test of moderators."""
        if self.df == 0:
            return "Design-by-treatment interaction: no loops or multi-design comparisons (df = 0)"
        return (f"Design-by-treatment interaction: QM(df = {self.df}) = {fmt_num(self.stat)}, "
                f"{pvalue_phrase(self.pvalue)} (tau^2 = {fmt_num(self.tau2)})")

    def to_frame(self) -> pd.DataFrame:
        """One row: stat, df, pvalue, tau2."""
        return fields_frame(self, ("stat", "df", "pvalue", "tau2"))


@dataclass(frozen=True)
class NetworkResult(Printable):
    """A fitted contrast-based network meta-analysis (see the module docstring).

    ``coef``: one row per treatment other than ``reference`` (its effect vs the reference):
    estimate, se, stat, pvalue, ci_low, ci_high (+ df for the CR2-robust result).
    ``estimate`` ... ``pvalue`` repeat the first row of ``coef`` (the result protocol's
    scalar fields, as for a multilevel model's first coefficient); ``df`` is NaN for
    z-based inference.  ``vcov`` is the covariance of ``coef.estimate``.
    """

    estimate: float
    se: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    df: float
    k: int
    n_clusters: int
    tau2: float
    loglik: float
    method: str
    level: float
    reference: str
    treatments: list[str]
    coef: pd.DataFrame
    vcov: np.ndarray
    q: float
    q_pvalue: float
    qm: float
    qm_pvalue: float
    vcov_type: str
    yi: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    study: np.ndarray = field(repr=False)
    treat1: np.ndarray = field(repr=False)
    treat2: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    robust_parts: _SandwichParts | None = field(default=None, repr=False)

    # -- tables ---------------------------------------------------------------------------

    @property
    def all_treatments(self) -> list[str]:
        """The reference, then the other treatments (the order of P-scores and the league)."""
        return [self.reference, *self.treatments]

    def _full(self) -> tuple[np.ndarray, np.ndarray]:
        """Effects of every treatment vs the reference (0 for it) and their covariance."""
        n = len(self.treatments) + 1
        theta = np.concatenate([[0.0], self.coef["estimate"].to_numpy()])
        cov = np.zeros((n, n))
        cov[1:, 1:] = self.vcov
        return theta, cov

    def league_table(self) -> pd.DataFrame:
        """Every ordered pair: ``treat1`` vs ``treat2`` = d_treat1 - d_treat2, with se, CI, p.

        se^2 = v_11 + v_22 - 2 v_12 from ``vcov``; CI and p from the normal distribution
        (for a CR2-robust result: t with the contrast's Satterthwaite df, and NaN for a
        contrast whose robust variance is 0, i.e. identified by a single study).
        """
        theta, cov = self._full()
        names = self.all_treatments
        rows = []
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i == j:
                    continue
                c = np.zeros(len(names))
                c[i], c[j] = 1.0, -1.0
                se, df = float(np.sqrt(max(c @ cov @ c, 0.0))), float("nan")
                if self.robust_parts is not None:
                    model_var = c[1:] @ self.robust_parts.bread @ c[1:]
                    defined = c @ cov @ c > 1e-12 * model_var
                    se = se if defined else float("nan")
                    df = _htz_nu(c[None, 1:], self.robust_parts) if defined else float("nan")
                rows.append((a, b, float(c @ theta), se, df))
        out = pd.DataFrame(rows, columns=["treat1", "treat2", "estimate", "se", "df"])
        out["stat"] = out["estimate"] / out["se"]
        if self.robust_parts is None:
            crit = stats.norm.isf((1 - self.level) / 2)
            out["pvalue"] = 2 * stats.norm.sf(np.abs(out["stat"]))
        else:
            crit = stats.t.isf((1 - self.level) / 2, out["df"])
            out["pvalue"] = 2 * stats.t.sf(np.abs(out["stat"]), out["df"])
        out["ci_low"] = out["estimate"] - crit * out["se"]
        out["ci_high"] = out["estimate"] + crit * out["se"]
        columns = ["treat1", "treat2", "estimate", "se", "stat", "pvalue", "ci_low", "ci_high"]
        return out[columns + (["df"] if self.robust_parts is not None else [])]

    def pscores(self, higher_is_better: bool = True) -> pd.Series:
        """P-scores (Rücker & Schwarzer 2015, BMC Med Res Methodol 15:58, eq. 2):

            P_i = 1/(n - 1) sum_{j != i} Phi((d_i - d_j) / se(d_i - d_j))

        (Phi of the negated z when lower values are better): the mean certainty that
        treatment i beats another.  Indexed by treatment, reference first.  For a
        CR2-robust result V_R is used, and a treatment with a contrast whose robust
        variance is 0 gets NaN.
        """
        theta, cov = self._full()
        var = np.diag(cov)
        se = np.sqrt(var[:, None] + var[None, :] - 2.0 * cov)
        n = theta.size
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (theta[:, None] - theta[None, :]) / se
        if not higher_is_better:
            z = -z
        prob = stats.norm.cdf(z)
        if self.robust_parts is not None:  # a contrast with robust variance 0: undefined
            model = np.zeros_like(cov)
            model[1:, 1:] = self.robust_parts.bread
            mvar = np.diag(model)
            model_se2 = mvar[:, None] + mvar[None, :] - 2.0 * model
            prob[se**2 <= 1e-12 * model_se2] = np.nan
        np.fill_diagonal(prob, 0.0)
        return pd.Series(prob.sum(axis=1) / (n - 1), index=self.all_treatments, name="pscore")

    def rank_probabilities(self, higher_is_better: bool = True, n_sim: int = 100_000,
                           seed: int = 20150058) -> pd.DataFrame:
        """P(rank = r) for every treatment, by simulating d ~ N(estimate, vcov) (``n_sim`` draws,
        fixed ``seed``: reproducible).  Rows: treatments; columns: ranks 1 (best) ... n."""
        theta, cov = self._full()
        rng = np.random.default_rng(seed)
        draws = np.zeros((n_sim, theta.size))
        draws[:, 1:] = rng.multivariate_normal(theta[1:], cov[1:, 1:], size=n_sim,
                                               method="cholesky")
        order = np.argsort(-draws if higher_is_better else draws, axis=1, kind="stable")
        ranks = np.empty_like(order)
        ranks[np.arange(n_sim)[:, None], order] = np.arange(theta.size)[None, :]
        counts = np.stack([np.bincount(ranks[:, i], minlength=theta.size)
                           for i in range(theta.size)])
        return pd.DataFrame(counts / n_sim, index=self.all_treatments,
                            columns=pd.RangeIndex(1, theta.size + 1, name="rank"))

    def sucra(self, higher_is_better: bool = True, n_sim: int = 100_000,
              seed: int = 20150058) -> pd.Series:
        """SUCRA (Salanti et al. 2011, J Clin Epidemiol 64:163-171) from ``rank_probabilities``:
        SUCRA_i = (n - E[rank_i]) / (n - 1).  Its expectation is the P-score
        (Rücker & Schwarzer 2015); here it carries Monte Carlo error of order n_sim^-1/2."""
        probs = self.rank_probabilities(higher_is_better, n_sim, seed)
        n = probs.shape[1]
        mean_rank = probs.to_numpy() @ np.arange(1, n + 1)
        return pd.Series((n - mean_rank) / (n - 1), index=probs.index, name="sucra")

    # -- inconsistency ---------------------------------------------------------------------

    def _refit(self, X: np.ndarray) -> tuple[float, _Fit]:
        comp = _comparison_labels(self.treat1, self.treat2)
        return _estimate_tau2(_studies(self.yi, self.V, X, self.study, comp),
                              self.method == "REML")

    def design_by_treatment(self) -> InconsistencyTest:
        """Design-by-treatment interaction test (Higgins et al. 2012, Res Synth Methods 3:98-110).

        A design is the set of treatments of a study.  The interaction model gives every
        design its own effects of its treatments vs the design's first treatment; the
        columns of that model which are not in the span of the consistency model's
        contrasts are the inconsistency deviations, tested together by a Wald
        chi-square with tau2 estimated (``method``) in the interaction model.  The
        statistic does not depend on how the deviations are parametrised.
        """
        extra = _independent_columns(self.X, _design_columns(self.study, self.treat1, self.treat2))
        if extra.shape[1] == 0:
            return InconsistencyTest(float("nan"), 0, float("nan"), self.tau2)
        X = np.column_stack([self.X, extra])
        tau2, fit = self._refit(X)
        p = self.X.shape[1]
        b = fit.beta[p:]
        q = float(b @ np.linalg.solve(fit.vcov[p:, p:], b))
        return InconsistencyTest(q, int(b.size), float(stats.chi2.sf(q, b.size)), tau2)

    def node_split(self) -> pd.DataFrame:
        """Direct vs indirect evidence for every comparison with both (side-splitting).

        Node-splitting (Dias et al. 2010, Stat Med 29:932-944) in its side-splitting form
        for multi-arm studies (the split is attached to one arm, as in White's Stata
        ``network sidesplit``; not netmeta's back-calculation or SIDDE): for a pair A < B
        (sorted names) observed together in some study, the B arm of every study holding
        both A and B gets its own shift delta (column [treat1 = B] - [treat2 = B] in those
        studies), tau2 re-estimated.  Then indirect = d_B - d_A, direct = indirect + delta
        and ``difference`` = delta, with a Wald z-test.  Rows: treat1 = B, treat2 = A.
        Comparisons with direct evidence only (no independent indirect path) are left out.
        """
        names = self.all_treatments
        rows = []
        for a, b in _observed_pairs(self.study, self.treat1, self.treat2):
            holds = _studies_with(self.study, self.treat1, self.treat2, {a, b})
            shift = np.where(holds, (self.treat1 == b).astype(float)
                             - (self.treat2 == b).astype(float), 0.0)
            X = np.column_stack([self.X, shift])
            if np.linalg.matrix_rank(X) <= self.X.shape[1]:
                continue
            tau2, fit = self._refit(X)
            c = np.zeros(X.shape[1])
            ia, ib = names.index(a), names.index(b)
            if ib:
                c[ib - 1] += 1.0
            if ia:
                c[ia - 1] -= 1.0
            d = c.copy()
            d[-1] = 1.0
            delta, se_delta = fit.beta[-1], float(np.sqrt(fit.vcov[-1, -1]))
            z = delta / se_delta
            rows.append({
                "treat1": b, "treat2": a,
                "direct": float(d @ fit.beta), "direct_se": float(np.sqrt(d @ fit.vcov @ d)),
                "indirect": float(c @ fit.beta),
                "indirect_se": float(np.sqrt(c @ fit.vcov @ c)),
                "difference": float(delta), "difference_se": se_delta, "stat": float(z),
                "pvalue": float(2.0 * stats.norm.sf(abs(z))), "tau2": tau2,
            })
        columns = ["treat1", "treat2", "direct", "direct_se", "indirect", "indirect_se",
                   "difference", "difference_se", "stat", "pvalue", "tau2"]
        return pd.DataFrame(rows, columns=columns)

    # -- robust ----------------------------------------------------------------------------

    def robust(self, adjust: str = "CR2") -> NetworkResult:
        """Cluster-robust (CR2) inference clustered by study, for dependent outcomes.

        The same estimates; covariance V_R = M [sum_j X_j' W_j A_j e_j e_j' A_j W_j X_j] M
        with W_j = Sigma_j^-1, M = (X'WX)^-1 and CR2 adjustments A_j, Satterthwaite df
        for every coefficient and pairwise contrast (Pustejovsky & Tipton 2018, JBES
        36:672-683; clubSandwich ``coef_test(fit, vcov = "CR2", cluster = study)``).
        The returned result's ``league_table`` and ``pscores`` use V_R.  A coefficient
        identified by one study has robust variance 0: its se, df, p and CI are NaN.
        """
        if adjust != "CR2":
            raise ValueError(f"adjust must be 'CR2'; got {adjust!r}")
        if self.robust_parts is not None:
            return self
        comp = _comparison_labels(self.treat1, self.treat2)
        studies = _studies(self.yi, self.V, self.X, self.study, comp)
        beta = self.coef["estimate"].to_numpy()
        bread = np.linalg.inv(sum(s.X.T @ np.linalg.solve(s.V + self.tau2 * s.R, s.X)
                                  for s in studies))
        chol_bread = np.linalg.cholesky(bread)
        p, n = beta.size, len(studies)
        meat = np.zeros((n, p))
        gamma = np.zeros((n, p, p))
        h = np.zeros((n, p, p))
        for j, s in enumerate(studies):
            sigma = s.V + self.tau2 * s.R
            adj = _cr2_adjustment(sigma[None], s.X[None], bread)[0]
            g = bread @ (adj @ np.linalg.solve(sigma, s.X)).T
            meat[j] = g @ (s.y - s.X @ beta)
            gamma[j] = g @ sigma @ g.T
            h[j] = g @ s.X @ chol_bread
        parts = _SandwichParts(beta, meat.T @ meat, bread, gamma, h)
        var = np.diag(parts.vcov)
        undefined = var <= 1e-12 * np.diag(bread)
        if undefined.any():
            names = ", ".join(t for t, u in zip(self.treatments, undefined, strict=True) if u)
            warnings.warn(f"the cluster-robust variance of {names} is zero (identified by a "
                          "single study): its robust se, df, test and CI are NaN",
                          RuntimeWarning, stacklevel=2)
        se = np.where(undefined, np.nan, np.sqrt(np.maximum(var, 0.0)))
        df = np.array([np.nan if u else _htz_nu(row[None, :], parts)
                       for row, u in zip(np.eye(p), undefined, strict=True)])
        t = beta / se
        crit = stats.t.isf((1.0 - self.level) / 2.0, df)
        coef = pd.DataFrame({"estimate": beta, "se": se, "df": df, "stat": t,
                             "pvalue": 2.0 * stats.t.sf(np.abs(t), df),
                             "ci_low": beta - crit * se, "ci_high": beta + crit * se},
                            index=self.coef.index)
        first = coef.iloc[0]
        return dataclasses.replace(
            self, coef=coef, vcov=parts.vcov, robust_parts=parts, vcov_type="CR2",
            se=float(first["se"]), df=float(first["df"]), stat=float(first["stat"]),
            pvalue=float(first["pvalue"]), ci_low=float(first["ci_low"]),
            ci_high=float(first["ci_high"]), qm=float("nan"), qm_pvalue=float("nan"))

    # -- protocol --------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per treatment (vs the reference): treatment, estimate, se, ..., ci_high."""
        return self.coef.rename_axis("treatment").reset_index()

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.rma.mv`` for this model."""
        p = len(self.treatments)
        n_comp = len(set(zip(self.study, _comparison_labels(self.treat1, self.treat2),
                             strict=True)))
        lines = [
            f"Network Meta-Analysis, contrast-based consistency model (k = {self.k}; "
            f"studies = {self.n_clusters}; treatments = {p + 1}; method: {self.method})",
            "",
            f"logLik = {fmt_num(self.loglik)}",
            "",
            "Variance Components (random = ~ comp | study, rho = 1/2):",
            "",
            f"tau^2    (estimated) = {fmt_num(self.tau2)}",
            f"tau      (estimated) = {fmt_num(np.sqrt(self.tau2))}",
            f"comparisons within studies: {n_comp}",
            "",
            "Test for Residual Heterogeneity:",
            f"QE(df = {self.k - p}) = {fmt_num(self.q)}, {pvalue_phrase(self.q_pvalue)}",
        ]
        if self.vcov_type == "CR2":
            lines += ["", f"Cluster-robust inference: CR2 sandwich clustered by study "
                          f"({self.n_clusters} clusters), Satterthwaite df (clubSandwich)"]
        else:
            lines += ["", f"Test of Moderators (all treatments equal to {self.reference}): "
                          f"QM(df = {p}) = {fmt_num(self.qm)}, {pvalue_phrase(self.qm_pvalue)}"]
        lines += ["", f"Model Results (each treatment vs {self.reference}):", "",
                  coef_table(self.coef, "tval" if self.vcov_type == "CR2" else "zval")]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- entry point


def network_meta_analysis(
    yi: Any,
    V: Any,
    study: Any,
    treat1: Any,
    treat2: Any,
    reference: str = "control",
    method: str = "REML",
    level: float = 0.95,
) -> NetworkResult:
    """Fit the contrast-based network meta-analysis (consistency model, one tau2).

    Row i is ``yi[i]`` = effect of ``treat1[i]`` minus effect of ``treat2[i]`` in study
    ``study[i]``; ``V`` is the full k x k sampling covariance (block-diagonal by study:
    rows of a multi-arm study that share an arm covary, see ``metaally.shared_arm_covariance``
    and ``metaally.arm_contrasts``).  The model (module docstring) equals metafor's::

        rma.mv(yi, V, mods = ~ X - 1, random = ~ comp | study, rho = 1/2, method = method)

    with ``X = contrmat`` columns of every treatment but ``reference``.  ``method``:
    "REML" (default) or "ML".  A disconnected network raises ``ValueError`` naming its
    parts (use ``network_components`` and fit each part).

    References: Lu & Ades (2004), Stat Med 23:3105-3124; Salanti et al. (2008),
    Stat Methods Med Res 17:279-301.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1; got {level!r}")
    y = np.asarray(yi, dtype=float).reshape(-1) if np.ndim(yi) <= 1 else None
    if y is None:
        raise ValueError("yi must be one-dimensional")
    k = y.shape[0]
    if k == 0:
        raise ValueError("yi is empty: no contrasts to analyse")
    if not np.all(np.isfinite(y)):
        raise ValueError("yi must be finite numbers (remove rows with missing effects from yi, "
                         "V, study, treat1 and treat2 together)")
    cov = _covariance(V, k)
    study_arr = _labels(study, "study", k)
    t1, t2 = _labels(treat1, "treat1", k), _labels(treat2, "treat2", k)
    _check_block_diagonal(cov, study_arr)
    parts = network_components(t1, t2)
    if len(parts) > 1:
        listed = "; ".join("{" + ", ".join(g) + "}" for g in parts)
        raise ValueError(f"the network is disconnected into {len(parts)} parts: {listed}. "
                         "Treatments in different parts cannot be compared; fit each part on "
                         "its own (metaally.network_components lists them)")
    everything = parts[0]
    if reference not in everything:
        raise ValueError(f"reference {reference!r} is not a treatment of the network "
                         f"({', '.join(everything)})")
    treatments = [t for t in everything if t != reference]
    if not treatments:
        raise ValueError("the network has a single treatment: nothing to compare")
    X = contrast_matrix(t1, t2, treatments)
    p = X.shape[1]
    if k <= p:
        raise ValueError(f"the network has {p} treatment effects but only {k} contrasts")
    comp = _comparison_labels(t1, t2)
    studies = _studies(y, cov, X, study_arr, comp)
    tau2, fit = _estimate_tau2(studies, method == "REML")
    se = np.sqrt(np.diag(fit.vcov))
    z = fit.beta / se
    crit = stats.norm.isf((1.0 - level) / 2.0)
    coef = pd.DataFrame({"estimate": fit.beta, "se": se, "stat": z,
                         "pvalue": 2.0 * stats.norm.sf(np.abs(z)),
                         "ci_low": fit.beta - crit * se, "ci_high": fit.beta + crit * se},
                        index=pd.Index(treatments, name="treatment"))
    qm = float(fit.beta @ np.linalg.solve(fit.vcov, fit.beta))
    q = _residual_heterogeneity(studies)
    first = coef.iloc[0]
    return NetworkResult(
        estimate=float(first["estimate"]), se=float(first["se"]), stat=float(first["stat"]),
        pvalue=float(first["pvalue"]), ci_low=float(first["ci_low"]),
        ci_high=float(first["ci_high"]), df=float("nan"), k=k, n_clusters=len(studies),
        tau2=float(tau2), loglik=fit.loglik, method=method, level=float(level),
        reference=reference, treatments=treatments, coef=coef, vcov=fit.vcov,
        q=q, q_pvalue=float(stats.chi2.sf(q, k - p)), qm=qm,
        qm_pvalue=float(stats.chi2.sf(qm, p)), vcov_type="model",
        yi=y.copy(), V=cov, study=study_arr, treat1=t1, treat2=t2, X=X,
    )


# ---------------------------------------------------------------------------- helpers


def _labels(values: Any, name: str, k: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=object).reshape(-1)
    if k is not None and arr.shape[0] != k:
        raise ValueError(f"yi has {k} values but {name} has {arr.shape[0]}; "
                         "they must have the same length")
    if any(v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "" for v in arr):
        raise ValueError(f"{name} must not have missing labels")
    return np.array([str(v) for v in arr], dtype=object)


def _covariance(V: Any, k: int) -> np.ndarray:
    try:
        cov = np.array(V, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("V must be a k x k matrix of numbers") from None
    if cov.shape != (k, k):
        raise ValueError(f"V must be the full {k} x {k} sampling covariance matrix "
                         f"(one row and column per contrast); got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("V must be finite numbers")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=0.0):
        raise ValueError("V must be symmetric")
    if np.any(np.diag(cov) <= 0):
        raise ValueError("V must have positive sampling variances on its diagonal")
    return cov


def _check_block_diagonal(cov: np.ndarray, study: np.ndarray) -> None:
    across = study[:, None] != study[None, :]
    if np.any(cov[across] != 0.0):
        a, b = np.argwhere(across & (cov != 0.0))[0]
        raise ValueError(f"V must be block-diagonal by study: rows {a} and {b} belong to "
                         f"different studies ({study[a]!r}, {study[b]!r}) but covary")
    for s in pd.unique(study):
        rows = np.flatnonzero(study == s)
        if np.linalg.eigvalsh(cov[np.ix_(rows, rows)])[0] <= 0.0:
            raise ValueError(f"V's block for study {s!r} is not positive definite")


def _comparison_labels(treat1: np.ndarray, treat2: np.ndarray) -> np.ndarray:
    """metafor's ``comp``: the (treat1, treat2) pair of a row, as given (A-B differs from B-A)."""
    return np.array([f"{a}\x1f{b}" for a, b in zip(treat1, treat2, strict=True)], dtype=object)


def _study_sets(study: np.ndarray, treat1: np.ndarray, treat2: np.ndarray) -> dict[str, set]:
    sets: dict[str, set] = {}
    for s, a, b in zip(study, treat1, treat2, strict=True):
        sets.setdefault(s, set()).update((a, b))
    return sets


def _studies_with(study: np.ndarray, treat1: np.ndarray, treat2: np.ndarray,
                  wanted: set) -> np.ndarray:
    sets = _study_sets(study, treat1, treat2)
    return np.array([wanted <= sets[s] for s in study])


def _observed_pairs(study: np.ndarray, treat1: np.ndarray,
                    treat2: np.ndarray) -> list[tuple[str, str]]:
    """Sorted pairs (A, B), A < B, of treatments that appear together in some study."""
    pairs = set()
    for trts in _study_sets(study, treat1, treat2).values():
        ordered = sorted(trts)
        pairs.update((a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:])
    return sorted(pairs)


def _design_columns(study: np.ndarray, treat1: np.ndarray, treat2: np.ndarray) -> np.ndarray:
    """Design-by-treatment interaction columns: per design (a study's treatment set) and
    treatment t other than the design's first, [treat1 = t] - [treat2 = t] on its rows."""
    sets = _study_sets(study, treat1, treat2)
    design = np.array([":".join(sorted(sets[s])) for s in study], dtype=object)
    columns = []
    for des in pd.unique(design):
        on = design == des
        for t in des.split(":")[1:]:
            columns.append(np.where(on, (treat1 == t).astype(float) - (treat2 == t), 0.0))
    return np.column_stack(columns) if columns else np.zeros((study.shape[0], 0))


def _independent_columns(X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """The columns of Z, in order, that each raise the rank of [X, chosen so far]."""
    current, rank, keep = X, np.linalg.matrix_rank(X), []
    for j in range(Z.shape[1]):
        candidate = np.column_stack([current, Z[:, j]])
        if np.linalg.matrix_rank(candidate) > rank:
            current, rank = candidate, rank + 1
            keep.append(j)
    return Z[:, keep]


def _residual_heterogeneity(studies: list[_Study]) -> float:
    """Q_E = r' V^-1 r with r the GLS residuals under V alone (metafor's ``QE`` of rma.mv)."""
    fit = _evaluate(studies, 0.0, reml=False)
    return float(sum((s.y - s.X @ fit.beta) @ np.linalg.solve(s.V, s.y - s.X @ fit.beta)
                     for s in studies))
