"""Selection models for publication bias, as metafor 3.8's ``selmodel``.

A selection model (Hedges 1992; Vevea & Hedges 1995, Psychometrika 60:419–435)
says that an effect y_i ~ N(x_i'β, v_i + τ²) is observed with a probability
proportional to a weight w(p_i) of its one-sided p-value p_i = 1 − Φ(y_i/√v_i)
(``alternative="greater"``; "less" and "two.sided" as metafor).  The density
of an observed effect is therefore

    f(y_i) = w(p_i) · φ(y_i; x_i'β, v_i + τ²) / A_i,
    A_i = ∫ w(p(y)) · φ(y; x_i'β, v_i + τ²) dy,

and β, τ² and the selection parameters δ are estimated by maximising
Σ log f(y_i).  The weight functions are metafor's (``help(selmodel)``;
Citkowicz & Vevea 2017 for ``beta``; Preston, Ashby & Smyth 2004 for the
exponential ``negexp``/``halfnorm``/``logistic``/``power`` families), with s =
``steps[0]`` the threshold below which the weight is 1 for the continuous types:

- ``stepfun``: w(p) = δ_j for steps[j−1] < p ≤ steps[j] (δ_1 = 1; the default
  steps (0.025, 1) give the three-parameter selection model, 3PSM)
- ``beta``: w(p) = p^(δ₁−1) (1 − p)^(δ₂−1), p clipped to [1e-5, 1 − 1e-5]
- ``halfnorm``: w(p) = exp(−δ (p² − s²)) for p > s
- ``negexp``: w(p) = exp(−δ (p − s)) for p > s
- ``logistic``: w(p) = [2e^(−δp)/(1 + e^(−δp))] / [2e^(−δs)/(1 + e^(−δs))] for p > s
- ``power``: w(p) = ((1 − p)/(1 − s))^δ for p > s, p clipped to [1e-5, 1 − 1e-5]

δ is bounded to metafor's [delta_min, delta_max] ([1e-5, 100] for beta, [0, 100]
otherwise).  For ``stepfun`` A_i is a sum of normal probabilities; for the
continuous types it is computed by Gauss–Legendre quadrature on a fixed grid in
z = y/√v (the weight depends on y only through z, so the grid is the same for
every study and every parameter value, and the likelihood is a smooth function
of the parameters): 16-point panels of width 1/4 on |z| ≤ 8.5 (split at the
threshold and the p-value clipping points), and the exact normal tail
probabilities beyond, where w is constant.

Standard errors come from the inverse of the Hessian of −log L in (β, τ², δ)
(metafor's default, ``htransf = FALSE``), here by central differences with
Richardson extrapolation; the LRT compares the selection model with the
random-effects model fitted by ML (df = number of estimated δ).

With ``study`` (several effects per study), the estimates maximise the same
likelihood treating the effects as independent (a composite likelihood), and
their covariance is the cluster-robust sandwich H⁻¹ (Σ_c g_c g_c') H⁻¹, g_c the
score summed over the effects of study c (Pustejovsky, Citkowicz & Joshi 2025,
"Estimation and inference for step-function selection models in meta-analysis
with dependent effects", doi:10.31222/osf.io/qg5x6_v1; the approach of their R
package metaselection, without small-sample correction).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from metaally.models.printing import Printable, coef_table, fmt_num, pvalue_phrase
from metaally.models.univariate import RandomEffectsResult, random_effects

__all__ = [
    "ALTERNATIVES",
    "SelectionModelResult",
    "TYPES",
    "selection_model",
]

TYPES = ("stepfun", "beta", "halfnorm", "negexp", "logistic", "power")
ALTERNATIVES = ("greater", "less", "two.sided")

# quadrature grid for the continuous types (see the module docstring)
_Z_LIMIT = 8.5
_PANEL = 0.25
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


@dataclass(frozen=True)
class _Spec:
    """One selection type: number of δ, start, bounds, H0 of the δ tests, p clipping."""

    n_delta: int
    init: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    h0: float
    pval_min: float


def _spec(type: str, n_steps: int) -> _Spec:
    if type == "stepfun":
        return _Spec(n_steps, (1.0,) * n_steps, (0.0,) * n_steps, (100.0,) * n_steps, 1.0, 0.0)
    if type == "beta":
        return _Spec(2, (1.0, 1.0), (1e-5, 1e-5), (100.0, 100.0), 1.0, 1e-5)
    return _Spec(1, (1.0,), (0.0,), (100.0,), 0.0, 1e-5 if type == "power" else 0.0)


def _log_weight(type: str, p: np.ndarray, delta: np.ndarray, s: float) -> np.ndarray:
    """log w(p) of a continuous type (``p`` already clipped)."""
    if type == "beta":
        return (delta[0] - 1.0) * np.log(p) + (delta[1] - 1.0) * np.log1p(-p)
    d = delta[0]
    if type == "halfnorm":
        lw = -d * (p**2 - s**2)
    elif type == "negexp":
        lw = -d * (p - s)
    elif type == "logistic":
        lw = (-d * p - np.log1p(np.exp(-d * p))) - (-d * s - np.log1p(np.exp(-d * s)))
    else:  # power
        lw = d * (np.log1p(-p) - np.log1p(-s))
    return np.where(p <= s, 0.0, lw)


def _pvalue(z: np.ndarray, alternative: str) -> np.ndarray:
    """metafor's ``.selmodel.pval``: one-sided or two-sided p-value of z = y/√v."""
    if alternative == "greater":
        return special.ndtr(-z)
    if alternative == "less":
        return special.ndtr(z)
    return 2.0 * special.ndtr(-np.abs(z))


def _z_of_p(p: float, alternative: str) -> list[float]:
    """The z values (one, or ± for two-sided) at which the p-value equals ``p``."""
    if not 0.0 < p < 1.0:
        return []
    if alternative == "greater":
        return [float(-special.ndtri(p))]
    if alternative == "less":
        return [float(special.ndtri(p))]
    z = float(-special.ndtri(p / 2.0))
    return [-z, z]


@dataclass(frozen=True)
class _Quadrature:
    """Fixed Gauss–Legendre nodes/weights in z, with the weight's constant tails."""

    z: np.ndarray
    w: np.ndarray
    z_low: float
    z_high: float
    p_nodes: np.ndarray
    p_low: float
    p_high: float


def _quadrature(alternative: str, pval_min: float, threshold: float) -> _Quadrature:
    breaks = []
    for p in (pval_min, 1.0 - pval_min, threshold):
        breaks += _z_of_p(p, alternative)
    limit = max([_Z_LIMIT] + [abs(b) + 0.5 for b in breaks])
    edges = np.unique(np.concatenate([np.arange(-limit, limit + _PANEL / 2, _PANEL), breaks]))
    a, b = edges[:-1, None], edges[1:, None]
    z = ((b - a) / 2 * _GL_NODES + (a + b) / 2).ravel()
    w = ((b - a) / 2 * _GL_WEIGHTS).ravel()
    clip = lambda p: np.clip(p, pval_min, 1.0 - pval_min)  # noqa: E731
    return _Quadrature(
        z=z, w=w, z_low=float(edges[0]), z_high=float(edges[-1]),
        p_nodes=clip(_pvalue(z, alternative)),
        p_low=float(clip(_pvalue(np.array(-np.inf), alternative))),
        p_high=float(clip(_pvalue(np.array(np.inf), alternative))),
    )


@dataclass(frozen=True)
class _Problem:
    """Data and the selection type of one fit; ``loglik_i`` is its likelihood."""

    y: np.ndarray
    v: np.ndarray
    X: np.ndarray
    type: str
    steps: np.ndarray
    alternative: str
    spec: _Spec
    free_delta: np.ndarray      # which δ are estimated (stepfun: δ_1 = 1 is fixed)
    group: np.ndarray           # stepfun: interval of each p-value (0-based)
    quad: _Quadrature | None

    def unpack(self, theta: np.ndarray, tau2: float | None) -> tuple[np.ndarray, float, np.ndarray]:
        p = self.X.shape[1]
        beta = theta[:p]
        pos = p
        if tau2 is None:
            tau2, pos = theta[p], p + 1
        delta = np.array(self.spec.init, dtype=float)
        delta[self.free_delta] = theta[pos:]
        if self.type == "stepfun":
            delta[0] = 1.0
        return beta, float(tau2), delta

    def loglik_i(self, theta: np.ndarray, tau2: float | None = None) -> np.ndarray:
        """log f(y_i) of every effect; ``tau2`` given: τ² fixed (not in ``theta``)."""
        beta, tau2, delta = self.unpack(theta, tau2)
        mu = self.X @ beta
        total = self.v + tau2
        log_density = -0.5 * (np.log(2 * np.pi * total) + (self.y - mu) ** 2 / total)
        sd_z = np.sqrt(total / self.v)
        mu_z = mu / np.sqrt(self.v)
        if self.type == "stepfun":
            with np.errstate(divide="ignore"):
                log_w = np.log(delta[self.group])
            area = _step_area(mu_z, sd_z, self.steps, delta, self.alternative)
        else:
            s = float(self.steps[0])
            pv = np.clip(_pvalue(self.y / np.sqrt(self.v), self.alternative),
                         self.spec.pval_min, 1 - self.spec.pval_min)
            log_w = _log_weight(self.type, pv, delta, s)
            area = _continuous_area(mu_z, sd_z, self.quad, lambda p: np.exp(
                _log_weight(self.type, p, delta, s)))
        return log_w + log_density - np.log(area)

    def score_i(self, theta: np.ndarray, tau2: float | None = None) -> np.ndarray:
        """∂ log f(y_i)/∂θ (k × len(θ)): analytic for ``stepfun``, numerical otherwise."""
        if self.type != "stepfun":
            return _jacobian(lambda t: self.loglik_i(t, tau2), theta)
        beta, tau2_value, delta = self.unpack(theta, tau2)
        mu = self.X @ beta
        total = self.v + tau2_value
        resid = self.y - mu
        sd_z = np.sqrt(total / self.v)
        mu_z = mu / np.sqrt(self.v)
        le, d_mu, d_sd = _step_probabilities(mu_z, sd_z, self.steps, self.alternative)
        prob = np.diff(le, axis=1)
        area = prob @ delta
        d_area_mu = np.diff(d_mu, axis=1) @ delta
        d_area_sd = np.diff(d_sd, axis=1) @ delta
        d_beta = (resid / total - d_area_mu / area / np.sqrt(self.v))[:, None] * self.X
        cols = [d_beta]
        if tau2 is None:
            d_tau2 = -0.5 / total + 0.5 * resid**2 / total**2
            d_tau2 -= d_area_sd / area / (2 * self.v * sd_z)
            cols.append(d_tau2[:, None])
        with np.errstate(divide="ignore"):
            d_delta = (self.group[:, None] == np.arange(delta.size)) / delta - prob / area[:, None]
        cols.append(d_delta[:, self.free_delta])
        return np.column_stack(cols)


def _step_probabilities(mu_z: np.ndarray, sd_z: np.ndarray, steps: np.ndarray,
                        alternative: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(p ≤ s) for s in (0, *steps) with z ~ N(mu_z, sd_z²), and its derivatives in mu_z, sd_z.

    Each probability is a sum of Φ((σ·mu_z + b)/sd_z) terms (σ = ±1): greater p ≤ s ⇔
    z ≥ Φ⁻¹(1 − s); less ⇔ z ≤ Φ⁻¹(s); two-sided ⇔ |z| ≥ Φ⁻¹(1 − s/2).
    """
    bounds = np.concatenate([[0.0], steps])
    shape = (mu_z.shape[0], bounds.size)
    le, d_mu, d_sd = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for j, s in enumerate(bounds):
        if s <= 0.0:
            continue
        if s >= 1.0:
            le[:, j] = 1.0
            continue
        if alternative == "greater":
            terms = [(1.0, special.ndtri(s))]
        elif alternative == "less":
            terms = [(-1.0, special.ndtri(s))]
        else:
            c = -special.ndtri(s / 2.0)
            terms = [(1.0, -c), (-1.0, -c)]
        for sign, b in terms:
            a = (sign * mu_z + b) / sd_z
            dens = np.exp(-0.5 * a**2) / np.sqrt(2 * np.pi)
            le[:, j] += special.ndtr(a)
            d_mu[:, j] += sign * dens / sd_z
            d_sd[:, j] -= dens * a / sd_z
    return le, d_mu, d_sd


def _step_area(mu_z: np.ndarray, sd_z: np.ndarray, steps: np.ndarray, delta: np.ndarray,
               alternative: str) -> np.ndarray:
    """A_i = Σ_j δ_j P(steps[j−1] < p ≤ steps[j]) with z ~ N(mu_z, sd_z²)."""
    return np.diff(_step_probabilities(mu_z, sd_z, steps, alternative)[0], axis=1) @ delta


def _continuous_area(mu_z: np.ndarray, sd_z: np.ndarray, quad: _Quadrature,
                     weight: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A_i = ∫ w(p(z)) φ((z − mu_z)/sd_z)/sd_z dz by the fixed Gauss–Legendre grid."""
    u = (quad.z[None, :] - mu_z[:, None]) / sd_z[:, None]
    dens = np.exp(-0.5 * u**2) / (np.sqrt(2 * np.pi) * sd_z[:, None])
    inner = dens @ (quad.w * weight(quad.p_nodes))
    low = special.ndtr((quad.z_low - mu_z) / sd_z) * weight(np.array(quad.p_low))
    high = special.ndtr((mu_z - quad.z_high) / sd_z) * weight(np.array(quad.p_high))
    return inner + low + high


# --------------------------------------------------------------------------- numerics


def _steps_sizes(theta: np.ndarray) -> np.ndarray:
    return 1e-4 * np.abs(theta) + 1e-5


def _jacobian(f: Callable[[np.ndarray], np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Jacobian of a vector function (rows: outputs): central differences, step
    h = 1e-4·|θ| + 1e-5, with one Richardson extrapolation (error O(h⁴))."""
    h = _steps_sizes(theta)
    cols = []
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = h[j]
        d1 = (f(theta + e) - f(theta - e)) / (2 * h[j])
        d2 = (f(theta + 2 * e) - f(theta - 2 * e)) / (4 * h[j])
        cols.append((4 * d1 - d2) / 3)
    return np.column_stack(cols)


def _symmetric_jacobian(grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Hessian as the symmetrised Richardson Jacobian of the gradient."""
    h = _jacobian(grad, theta)
    return (h + h.T) / 2


def _at_bound(theta: np.ndarray, bounds: list[tuple[float, float]], scale: np.ndarray
              ) -> np.ndarray:
    """Which parameters lie within 1e-6·scale of a bound."""
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    return (theta - lo < 1e-6 * scale) | (hi - theta < 1e-6 * scale)


def _maximise(neg_ll: Callable[[np.ndarray], float], neg_grad: Callable[[np.ndarray], np.ndarray],
              start: np.ndarray, bounds: list[tuple[float, float]], scale: np.ndarray
              ) -> np.ndarray:
    """Minimise ``neg_ll`` within ``bounds``; returns the natural parameters.

    As metafor, BFGS runs on unconstrained parameters (exp for (0, ∞), a scaled
    logistic for (a, b)); then Newton steps with the Richardson Hessian polish the
    parameters not at a bound (within 1e-6·``scale``) until the gradient is below 1e-10.
    """
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    positive = (lo == 0) & np.isinf(hi)
    box = np.isfinite(lo) & np.isfinite(hi)

    def to_natural(x: np.ndarray) -> np.ndarray:
        out = x.copy()
        out[positive] = np.exp(x[positive])
        out[box] = lo[box] + (hi[box] - lo[box]) * special.expit(x[box])
        return out

    x0 = start.copy()
    x0[positive] = np.log(start[positive])
    x0[box] = special.logit((start[box] - lo[box]) / (hi[box] - lo[box]))
    def chain(x: np.ndarray) -> np.ndarray:
        d = np.ones(x.size)
        d[positive] = np.exp(x[positive])
        e = special.expit(x[box])
        d[box] = (hi[box] - lo[box]) * e * (1 - e)
        return d

    f = lambda x: neg_ll(to_natural(x))  # noqa: E731
    res = optimize.minimize(f, x0, jac=lambda x: neg_grad(to_natural(x)) * chain(x),
                            method="BFGS", options={"gtol": 1e-9, "maxiter": 2000})
    theta = to_natural(res.x)
    for _ in range(20):
        interior = ~_at_bound(theta, bounds, scale)
        if not interior.any():
            break
        sub = lambda t, th=theta, m=interior: neg_grad(_embed(t, th, m))[m]  # noqa: E731
        g = sub(theta[interior])
        if np.max(np.abs(g)) < 1e-10:
            break
        try:
            step = np.linalg.solve(_symmetric_jacobian(sub, theta[interior]), g)
        except np.linalg.LinAlgError:
            break
        trial = theta.copy()
        trial[interior] -= step
        trial = np.clip(trial, lo, hi)
        if not neg_ll(trial) <= neg_ll(theta) + 1e-12 * (1 + abs(neg_ll(theta))):
            break
        theta = trial
    return theta


def _embed(sub: np.ndarray, full: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = full.copy()
    out[mask] = sub
    return out


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class SelectionModelResult(Printable):
    """A fitted selection model (metafor's ``rma.uni.selmodel`` object).

    ``estimate``/``se``/``ci_low``/``ci_high``/``pvalue`` are the first coefficient's
    (the adjusted average effect without moderators); ``coef`` holds every
    coefficient.  ``delta`` lists all δ in metafor's order (``stepfun``: one per
    p-value interval, δ_1 = 1 fixed, its ``delta_se`` NaN); ``delta_stat``/
    ``delta_pvalue`` test δ = 1 (stepfun, beta) or δ = 0 (the others); the δ CI
    is truncated at the lower bound of δ, as metafor's.  ``lrt`` tests all
    estimated δ at their "no selection" values (df ``lrt_df``) against the ML
    random-effects model (log-likelihood ``loglik0``).  With ``study`` the
    covariance is cluster-robust (``vcov_type="robust"``, ``n_clusters``) and the LRT
    p-values are NaN: a composite likelihood ratio is not χ²-distributed; the robust
    Wald tests (``delta_pvalue``, ``coef``) are the tests to read.
    """

    k: int
    p: int
    estimate: float
    se: float
    stat: float
    pvalue: float
    ci_low: float
    ci_high: float
    df: float
    tau2: float
    tau2_se: float
    delta: np.ndarray
    delta_se: np.ndarray
    delta_stat: np.ndarray
    delta_pvalue: np.ndarray
    delta_ci_low: np.ndarray
    delta_ci_high: np.ndarray
    lrt: float
    lrt_df: int
    lrt_pvalue: float
    lrt_tau2: float
    lrt_tau2_pvalue: float
    loglik: float
    loglik0: float
    type: str
    steps: np.ndarray
    alternative: str
    interval_counts: np.ndarray
    level: float
    tau2_fixed: bool
    vcov_type: str
    n_clusters: int
    coef: pd.DataFrame
    vcov: np.ndarray

    def weight(self, p: Any) -> np.ndarray:
        """The estimated selection function w(p) at p-values ``p`` (relative to w = 1)."""
        pv = np.asarray(p, dtype=float)
        if self.type == "stepfun":
            idx = np.searchsorted(self.steps, pv, side="left")
            return self.delta[np.minimum(idx, self.delta.size - 1)]
        spec = _spec(self.type, self.steps.size)
        clipped = np.clip(pv, spec.pval_min, 1 - spec.pval_min)
        return np.exp(_log_weight(self.type, clipped, self.delta, float(self.steps[0])))

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.rma.uni.selmodel``."""
        mods = self.p > 1 or self.coef.index[0] != "intrcpt"
        kind = "Mixed-Effects" if mods else "Random-Effects"
        lines = [f"{kind} Model (k = {self.k}; tau^2 estimator: ML)", ""]
        if self.vcov_type == "robust":
            lines[0] += f"; cluster-robust SEs ({self.n_clusters} clusters)"
        what = "residual" if mods else "total"
        lines += [
            f"tau^2 (estimated amount of {what} heterogeneity): {fmt_num(self.tau2)} "
            f"(SE = {fmt_num(self.tau2_se)})",
            f"tau (square root of estimated tau^2 value):      {fmt_num(np.sqrt(self.tau2))}",
        ]
        if not np.isnan(self.lrt_tau2):
            lines += ["", f"Test for {'Residual ' if mods else ''}Heterogeneity:",
                      f"LRT(df = 1) = {fmt_num(self.lrt_tau2)}, "
                      f"{pvalue_phrase(self.lrt_tau2_pvalue)}"]
        lines += ["", "Model Results:", "", coef_table(self.coef)]
        lines += ["", "Test for Selection Model Parameters:",
                  f"LRT(df = {self.lrt_df}) = {fmt_num(self.lrt)}, "
                  f"{pvalue_phrase(self.lrt_pvalue)}",
                  "", "Selection Model Results:", ""]
        lines.append(coef_table(self._delta_frame()))
        return "\n".join(lines)

    def _delta_frame(self) -> pd.DataFrame:
        if self.type == "stepfun":
            left = np.concatenate([[0.0], self.steps[:-1]])
            names = [f"{lo:g} < p <= {hi:g} (k = {n})"
                     for lo, hi, n in zip(left, self.steps, self.interval_counts, strict=True)]
        elif self.delta.size == 1:
            names = ["delta"]
        else:
            names = [f"delta.{j + 1}" for j in range(self.delta.size)]
        return pd.DataFrame({"estimate": self.delta, "se": self.delta_se,
                             "stat": self.delta_stat, "pvalue": self.delta_pvalue,
                             "ci_low": self.delta_ci_low, "ci_high": self.delta_ci_high},
                            index=names)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient, then one per δ (``term`` delta.1, …), with model statistics."""
        coef = self.coef.rename_axis("term").reset_index()
        delta = self._delta_frame().reset_index(drop=True)
        delta.insert(0, "term", [f"delta.{j + 1}" for j in range(self.delta.size)])
        frame = pd.concat([coef, delta], ignore_index=True)
        frame.insert(0, "type", self.type)
        frame.insert(1, "k", self.k)
        for name in ("tau2", "tau2_se", "lrt", "lrt_df", "lrt_pvalue", "loglik", "vcov_type"):
            frame[name] = getattr(self, name)
        return frame


def selection_model(
    result: RandomEffectsResult,
    type: Literal["stepfun", "beta", "halfnorm", "negexp", "logistic", "power"] = "stepfun",
    steps: Any = None,
    alternative: Literal["greater", "less", "two.sided"] = "greater",
    study: Any = None,
) -> SelectionModelResult:
    """Fit a selection model to a random-effects result (metafor's ``selmodel``).

    ``result`` is a ``random_effects`` fit (with or without moderators); as in
    metafor, a model not fitted by ML (REML, DL, …) is refitted by ML first, and
    an FE model or a fixed τ² keeps τ² fixed.  ``type`` and the weight functions
    are listed in the module docstring.  ``steps``: for ``stepfun`` the
    p-value cut-points (sorted, 1 appended; None means (0.025, 1), the 3PSM);
    for the continuous types a single threshold s below which w(p) = 1 (None
    means 0, metafor's default); ``beta`` takes no steps.  ``alternative`` is
    the direction of the p-values that drive selection.

    ``study``: one label per effect (aligned with ``result.yi``); the estimates
    are the composite-likelihood ones and the covariance is cluster-robust.

    Raises ``ValueError`` when a p-value interval of a step function (or, with a
    threshold, of a continuous type) contains no observed p-value: its δ is not
    identified (the likelihood is flat or increasing towards δ = 0), as metafor
    stops.  A ``RuntimeWarning`` is issued when an estimated δ is at its bound
    (its SE is then NaN) or the Hessian cannot be inverted.
    """
    if not isinstance(result, RandomEffectsResult):
        raise ValueError("result must be a random_effects result")
    if type not in TYPES:
        raise ValueError(f"type must be one of {', '.join(TYPES)}; got {type!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
    steps_arr = _check_steps(type, steps)
    ml = result
    if result.method not in ("FE", "ML"):
        ml = random_effects(result.yi, result.vi, method="ML", mods=result.X, intercept=False,
                            level=result.level, tau2=result.tau2 if result.tau2_fixed else None)
    tau2_fixed = ml.method == "FE" or ml.tau2_fixed
    y, v, X = ml.yi, ml.vi, ml.X
    k, p = X.shape
    spec = _spec(type, steps_arr.size)
    pv = np.clip(_pvalue(y / np.sqrt(v), alternative), spec.pval_min, 1 - spec.pval_min)
    free = np.ones(spec.n_delta, dtype=bool)
    if type == "stepfun":
        free[0] = False
    group = np.searchsorted(steps_arr, pv, side="left")
    counts = np.bincount(group, minlength=steps_arr.size)
    if type == "stepfun" and np.any(counts == 0):
        left = np.concatenate([[0.0], steps_arr[:-1]])
        empty = [f"({lo:g}, {hi:g}]"
                 for lo, hi, n in zip(left, steps_arr, counts, strict=True) if n == 0]
        raise ValueError(
            f"steps: no observed p-value in the interval(s) {', '.join(empty)}; their selection "
            "weight is not identified (choose other steps)")
    if type not in ("stepfun", "beta") and steps_arr[0] > 0 and min(counts) == 0:
        raise ValueError(
            f"steps: no observed p-value on one side of the threshold {steps_arr[0]:g}")
    n_par = p + (0 if tau2_fixed else 1) + int(free.sum())
    if k < n_par:
        raise ValueError(f"k = {k} effects are too few to fit this selection model "
                         f"({n_par} parameters)")
    quad = None if type == "stepfun" else _quadrature(alternative, spec.pval_min,
                                                      float(steps_arr[0]))
    problem = _Problem(y, v, X, type, steps_arr, alternative, spec, free, group, quad)

    lo_d = np.array(spec.lower)[free]
    hi_d = np.array(spec.upper)[free]
    start_d = np.array(spec.init)[free]
    fixed_tau2 = ml.tau2 if tau2_fixed else None
    beta0 = ml.coef["estimate"].to_numpy()
    if tau2_fixed:
        start = np.concatenate([beta0, start_d])
        bounds = [(-np.inf, np.inf)] * p + list(zip(lo_d, hi_d, strict=True))
    else:
        start = np.concatenate([beta0, [ml.tau2 + 1e-3], start_d])
        bounds = [(-np.inf, np.inf)] * p + [(0.0, np.inf)] + list(zip(lo_d, hi_d, strict=True))
    neg_ll = lambda t: -float(np.sum(problem.loglik_i(t, fixed_tau2)))  # noqa: E731
    neg_grad = lambda t: -problem.score_i(t, fixed_tau2).sum(axis=0)  # noqa: E731
    # closeness to a bound: relative to the sampling variances for tau^2, to 1 + |bound| for δ
    scale = np.concatenate([np.ones(p), [] if tau2_fixed else [float(np.mean(v))],
                            1.0 + np.maximum(np.abs(lo_d), np.abs(hi_d))])
    theta = _maximise(neg_ll, neg_grad, start, bounds, scale)
    loglik = -neg_ll(theta)

    # which estimates are at a bound: their SE is not defined
    at_bound = _at_bound(theta, bounds, scale)
    n_tau = 0 if tau2_fixed else 1
    if np.any(at_bound[p + n_tau:]):
        warnings.warn("one or more delta estimates are at their lower or upper bound; their "
                      "standard errors are not defined (NaN)", RuntimeWarning, stacklevel=2)
    inner = ~at_bound
    vcov_full = np.full((theta.size, theta.size), np.nan)
    n_clusters = k
    vcov_type = "model"
    if inner.any():
        hess = _symmetric_jacobian(lambda t: neg_grad(_embed(t, theta, inner))[inner],
                                   theta[inner])
        try:
            bread = np.linalg.inv(hess)
            if not np.all(np.isfinite(bread)) or np.any(np.diag(bread) <= 0):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            warnings.warn("the Hessian could not be inverted; standard errors are NaN",
                          RuntimeWarning, stacklevel=2)
            bread = np.full(hess.shape, np.nan)
        if study is not None:
            clusters = np.asarray(study, dtype=object).ravel()
            if clusters.size != result.yi.size:
                raise ValueError(f"study has {clusters.size} labels but there are "
                                 f"{result.yi.size} effects")
            codes, ids = pd.factorize(clusters)
            scores = problem.score_i(theta, fixed_tau2)[:, inner]
            g = np.zeros((ids.size, scores.shape[1]))
            np.add.at(g, codes, scores)
            bread = bread @ (g.T @ g) @ bread
            n_clusters, vcov_type = int(ids.size), "robust"
        vcov_full[np.ix_(inner, inner)] = bread
    se_full = np.sqrt(np.diag(vcov_full))

    crit = float(stats.norm.isf((1 - result.level) / 2))
    beta = theta[:p]
    se_b = se_full[:p]
    stat_b = beta / se_b
    coef = pd.DataFrame({"estimate": beta, "se": se_b, "stat": stat_b,
                         "pvalue": 2 * stats.norm.sf(np.abs(stat_b)),
                         "ci_low": beta - crit * se_b, "ci_high": beta + crit * se_b},
                        index=pd.Index(result.coef_names))
    _, tau2, delta = problem.unpack(theta, fixed_tau2)
    tau2_se = float("nan") if tau2_fixed else float(se_full[p])
    delta_se = np.full(delta.size, np.nan)
    delta_se[free] = se_full[p + n_tau:]
    d_stat = (delta - spec.h0) / delta_se
    d_low = np.maximum(delta - crit * delta_se, 0.0)

    # LRT for heterogeneity: the selection model refitted with tau^2 = 0
    lrt_tau2 = lrt_tau2_p = float("nan")
    if not tau2_fixed:
        keep = np.r_[0:p, p + 1:theta.size]
        neg0 = lambda t: -float(np.sum(problem.loglik_i(t, 0.0)))  # noqa: E731
        grad0 = lambda t: -problem.score_i(t, 0.0).sum(axis=0)  # noqa: E731
        t0 = _maximise(neg0, grad0, start[keep], [bounds[j] for j in keep], scale[keep])
        lrt_tau2 = max(0.0, -2 * (-neg0(t0) - loglik))
        lrt_tau2_p = float(stats.chi2.sf(lrt_tau2, 1))
    lrt = max(0.0, -2 * (ml.loglik - loglik))
    lrt_df = int(free.sum())
    lrt_p = float(stats.chi2.sf(lrt, lrt_df))
    if vcov_type == "robust":   # a composite likelihood ratio is not χ²: use the robust Wald tests
        lrt_p = lrt_tau2_p = float("nan")
    return SelectionModelResult(
        k=k, p=p, estimate=float(beta[0]), se=float(se_b[0]), stat=float(stat_b[0]),
        pvalue=float(coef["pvalue"].iloc[0]), ci_low=float(coef["ci_low"].iloc[0]),
        ci_high=float(coef["ci_high"].iloc[0]), df=float("inf"),
        tau2=tau2, tau2_se=tau2_se, delta=delta, delta_se=delta_se, delta_stat=d_stat,
        delta_pvalue=2 * stats.norm.sf(np.abs(d_stat)), delta_ci_low=d_low,
        delta_ci_high=delta + crit * delta_se,
        lrt=lrt, lrt_df=lrt_df, lrt_pvalue=lrt_p,
        lrt_tau2=lrt_tau2, lrt_tau2_pvalue=lrt_tau2_p, loglik=loglik, loglik0=float(ml.loglik),
        type=type, steps=steps_arr, alternative=alternative, interval_counts=counts,
        level=result.level, tau2_fixed=tau2_fixed, vcov_type=vcov_type, n_clusters=n_clusters,
        coef=coef, vcov=vcov_full[:p, :p],
    )


def _check_steps(type: str, steps: Any) -> np.ndarray:
    """metafor's handling of ``steps``: sorted, unique, 1 appended (stepfun)."""
    if steps is None:
        return np.array([0.025, 1.0]) if type == "stepfun" else np.array([0.0, 1.0])
    if type == "beta":
        raise ValueError("steps: the beta selection model takes no steps")
    arr = np.unique(np.atleast_1d(np.asarray(steps, dtype=float)))
    if arr.size == 0 or np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        raise ValueError("steps must be numbers between 0 and 1")
    if arr[-1] != 1.0:
        arr = np.append(arr, 1.0)
    if type != "stepfun" and arr.size != 2:
        raise ValueError(f"steps: the {type} selection model takes a single threshold")
    return arr
