"""Leave-one-out analysis, case-deletion influence diagnostics and cumulative
meta-analysis of a fitted model (metafor's ``leave1out``, ``influence`` and
``cumul`` methods).

Every function takes a fitted result (the result protocol of
:mod:`metaally.models.protocol`) and refits the SAME model on subsets of its data:
same τ² estimator, test and level; for the CHE model the same rho and estimator,
and for a robust result the same cluster-robust adjustment (CR2 or CR1) with its
Satterthwaite df.  For a ``RandomEffectsResult`` the unit is one effect size; for
a clustered model (``MultilevelResult``, ``RobustResult``) it is a study, with all
of its effect sizes.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metaally.models.inputs import variance_scale
from metaally.models.multilevel import multilevel
from metaally.models.protocol import FittedModel, fitted_model, is_clustered
from metaally.models.robust import RobustResult
from metaally.models.univariate import RandomEffectsResult, random_effects

__all__ = ["cumulative", "influence", "leave_one_out", "refit"]


def leave_one_out(result: FittedModel) -> pd.DataFrame:
    """Refit the model without each study in turn (metafor ``leave1out``).

    Returns one row per omitted study (``omitted``: its label) with the refit's
    ``k`` (and ``n_clusters`` for a clustered model), ``estimate, se, stat, df, pvalue,
    ci_low, ci_high, q, q_pvalue, i2`` and its variance components: ``tau2, h2`` for a
    ``RandomEffectsResult``, ``sigma2_study, sigma2_within`` for a clustered model
    (``MultilevelResult``, or its ``.robust()`` result, whose rows drop every effect of the
    study and carry the refit's cluster-robust se, df, p and CI).  Only for models without
    moderators.  A refit that is impossible (too few studies left) gives a row of NaN, as
    in metafor.
    """
    _check_intercept_only(result, "leave-one-out")
    labels, members = _units(result)
    rows = []
    for label, rows_of_unit in zip(labels, members, strict=True):
        keep = np.ones(result.yi.shape[0], dtype=bool)
        keep[rows_of_unit] = False
        rows.append({"omitted": label, **_summary_row(result, np.flatnonzero(keep))})
    frame = pd.DataFrame(rows)
    failed = int(frame["estimate"].isna().sum())
    if failed:
        warnings.warn(f"{failed} of {len(frame)} leave-one-out refits are impossible (too few "
                      "effects or studies left): their rows are NaN", RuntimeWarning, stacklevel=2)
    return frame


def cumulative(result: FittedModel, order: Any = None) -> pd.DataFrame:
    """Cumulative meta-analysis: refit on the first 1, 2, …, all studies (metafor ``cumul``).

    ``order`` holds one sort key per effect size of ``result`` (e.g. the
    publication year); studies are added in increasing order of their key,
    ties in their input order (a stable sort, like R's ``order``).  The default
    ``None`` adds them in input order.  To add studies in an explicit sequence
    ``idx`` of row positions, pass ``order=np.argsort(idx)``.  For a clustered
    model a study enters with all its effects, keyed by the smallest key among them.

    Returns one row per step: ``added`` (label of the study added), then the columns
    of :func:`leave_one_out` (``k`` is the number of effect sizes so far).  Only for
    models without moderators.  The first step of a univariate analysis has no
    heterogeneity information: its ``q``, ``q_pvalue``, ``i2`` and ``h2`` are NaN
    (metafor prints 0, 1, 0, 1); a step a robust model cannot be fitted to (one study)
    is a row of NaN.
    """
    _check_intercept_only(result, "cumulative meta-analysis")
    n = result.yi.shape[0]
    keys = np.arange(n) if order is None else np.asarray(order)
    if keys.ndim != 1 or keys.shape[0] != n:
        raise ValueError(
            f"order must have one sort key per effect size ({n}), got shape {keys.shape}"
        )
    labels, members = _units(result)
    unit_keys = [keys[rows].min() for rows in members]
    sequence = sorted(range(len(labels)), key=lambda u: unit_keys[u])
    rows, included = [], np.zeros(0, dtype=int)
    for u in sequence:
        included = np.concatenate([included, members[u]])
        rows.append({"added": labels[u], **_summary_row(result, np.sort(included))})
    return pd.DataFrame(rows)


def influence(result: FittedModel) -> pd.DataFrame:
    """Case-deletion diagnostics (metafor ``influence.rma.uni``; ``cooks.distance``,
    ``dfbetas`` and ``covratio`` of ``rma.mv`` with ``cluster = study``).

    For a univariate model (``RandomEffectsResult``), for each study i, with (−i)
    denoting the fit without it (τ̂²₍₋ᵢ₎, β̂₍₋ᵢ₎,
    Var₍₋ᵢ₎, and s²₍₋ᵢ₎ the Knapp–Hartung factor, 1 for z tests), W = diag(1/(vᵢ + τ̂²))
    and hᵢ the diagonal of the hat matrix X(X'WX)⁻¹X'W of the full fit
    (Viechtbauer & Cheung 2010, Res Synth Methods 1:112–125):

    - ``rstudent`` = (yᵢ − xᵢ'β̂₍₋ᵢ₎) / √(s²₍₋ᵢ₎(vᵢ + τ̂²₍₋ᵢ₎) + xᵢ'Var₍₋ᵢ₎xᵢ)
    - ``dffits`` = xᵢ'(β̂ − β̂₍₋ᵢ₎) / √(s²₍₋ᵢ₎ hᵢ (τ̂²₍₋ᵢ₎ + vᵢ))
    - ``cooks`` = (β̂ − β̂₍₋ᵢ₎)' Var(β̂)⁻¹ (β̂ − β̂₍₋ᵢ₎)
    - ``cov_ratio`` = det Var₍₋ᵢ₎ / det Var(β̂)
    - ``tau2_del``, ``q_del``: τ̂² and Q of the fit without study i
    - ``hat`` = hᵢ; ``weight`` = the study's weight in percent
    - ``dfbetas`` (one column per coefficient, ``dfbetas_<name>`` when there
      are several) = (β̂ − β̂₍₋ᵢ₎) / √(s²₍₋ᵢ₎ diag (X'W₍₋ᵢ₎X)⁻¹), W₍₋ᵢ₎ using τ̂²₍₋ᵢ₎
    - ``influential``: metafor's rule, any of |dffits| > 3√(p/(k − p)),
      P(χ²_p ≤ cooks) > 0.5, hat > 3p/k, or some |dfbetas| > 1.

    For a clustered model (``MultilevelResult`` or its ``.robust()`` result) the unit is
    a study j with all its effects, and the fit without it is the same model refitted
    (same rho, estimator, and robust adjustment); with Var the covariance the result
    reports (model-based, or cluster-robust for a robust result):

    - ``cooks`` = (β̂ − β̂₍₋ⱼ₎)' Var(β̂)⁻¹ (β̂ − β̂₍₋ⱼ₎)
    - ``dfbetas`` = (β̂ − β̂₍₋ⱼ₎) / √diag V₍₋ⱼ₎; model-based: V₍₋ⱼ₎ = (X'Σ₍₋ⱼ₎⁻¹X)⁻¹ on all
      the data with the refit's variance components (as the univariate case and
      metafor's ``dfbetas.rma.mv``); robust (metafor has none): the refit's robust
      covariance
    - ``cov_ratio`` = det Var₍₋ⱼ₎ / det Var(β̂), Var₍₋ⱼ₎ the refit's covariance
    - ``sigma2_study_del``, ``sigma2_within_del``, ``q_del``: the refit's variance
      components and Q_E
    - ``k_del``: effect sizes left; ``influential``: P(χ²_p ≤ cooks) > 0.5 or some
      |dfbetas| > 1 (the rules of the univariate case that need no hat values)

    (metafor's ``cooks.distance.rma.mv``, ``dfbetas.rma.mv`` and ``covratio`` of
    ``rma.mv``, with ``cluster = study``; Viechtbauer & Cheung 2010.)  The first column,
    ``study``, holds the study labels.
    """
    fitted_model(result, "influence diagnostics")
    if is_clustered(result):
        return _cluster_influence(result)
    if not isinstance(result, RandomEffectsResult):
        raise ValueError(
            "influence diagnostics need a random_effects, multilevel or robust result, "
            f"not {type(result).__name__}"
        )
    y, v, X = result.yi, result.vi, result.X
    k, p = X.shape
    if k < 2:
        raise ValueError("influence diagnostics need at least 2 studies")
    beta = result.coef["estimate"].to_numpy()
    vb = result.vcov
    hat = np.einsum("ij,jk,ik->i", X, _gram_inv(X, v, result.tau2), X) / (v + result.tau2)
    hat[hat > 1 - 10 * np.finfo(float).eps] = 1.0

    out = {name: np.full(k, np.nan) for name in ("delpred", "vdelpred", "s2w", "tau2_del",
                                                 "q_del", "dffits", "cooks", "cov_ratio")}
    dfbetas = np.full((k, p), np.nan)
    vb_inv, vb_det = np.linalg.inv(vb), np.linalg.det(vb)
    for i in range(k):
        keep = np.flatnonzero(np.arange(k) != i)
        fit = refit(result, keep)
        if fit is None:
            continue
        beta_i = fit.coef["estimate"].to_numpy()
        s2w = fit.vcov[0, 0] / _gram_inv(X[keep], v[keep], fit.tau2)[0, 0]
        out["delpred"][i] = X[i] @ beta_i
        out["vdelpred"][i] = X[i] @ fit.vcov @ X[i]
        out["s2w"][i], out["tau2_del"][i], out["q_del"][i] = s2w, fit.tau2, fit.q
        out["dffits"][i] = (X[i] @ beta - out["delpred"][i]) / np.sqrt(
            s2w * hat[i] * (fit.tau2 + v[i])
        )
        diff = beta - beta_i
        dfbetas[i] = diff / np.sqrt(s2w * np.diag(_gram_inv(X, v, fit.tau2)))
        out["cooks"][i] = diff @ vb_inv @ diff
        out["cov_ratio"][i] = np.linalg.det(fit.vcov) / vb_det

    resid = y - out["delpred"]
    # metafor zeroes |residuals| < 100 eps; relative to the data's scale (variance_scale ~ the
    # largest sqrt(v_i)), so that the diagnostics do not depend on the units of yi
    resid[np.abs(resid) < 100 * np.finfo(float).eps * variance_scale(v)[0]] = 0.0
    rstudent = resid / np.sqrt(
        (v + out["tau2_del"]) * out["s2w"] + out["vdelpred"]
    )
    with np.errstate(invalid="ignore"):
        influential = (
            (np.abs(out["dffits"]) > 3 * np.sqrt(p / (k - p)) if k > p else False)
            | (stats.chi2.cdf(out["cooks"], p) > 0.5)
            | (hat > 3 * p / k)
            | np.any(np.abs(dfbetas) > 1, axis=1)
        )
    frame = pd.DataFrame(
        {
            "study": list(result.slab),
            "rstudent": rstudent,
            "dffits": out["dffits"],
            "cooks": out["cooks"],
            "cov_ratio": out["cov_ratio"],
            "tau2_del": out["tau2_del"],
            "q_del": out["q_del"],
            "hat": hat,
            "weight": result.weights,
        }
    )
    names = ["dfbetas"] if p == 1 else [f"dfbetas_{name}" for name in result.coef_names]
    for j, name in enumerate(names):
        frame[name] = dfbetas[:, j]
    frame["influential"] = influential
    return frame


def _gram_inv(X: np.ndarray, v: np.ndarray, tau2: float) -> np.ndarray:
    """(X'WX)⁻¹ with W = diag(1/(v + τ²))."""
    return np.linalg.inv(X.T @ (X / (v + tau2)[:, None]))


def _cluster_influence(result: FittedModel) -> pd.DataFrame:
    """Cook's distance, DFBETAS and covariance ratio of each study of a clustered model."""
    labels, members = _units(result)
    robust = isinstance(result, RobustResult)
    beta = result.coef["estimate"].to_numpy()
    vb = result.vcov
    p = beta.shape[0]
    vb_inv, vb_det = np.linalg.inv(vb), np.linalg.det(vb)
    n = len(labels)
    out = {name: np.full(n, np.nan) for name in (
        "cooks", "cov_ratio", "sigma2_study_del", "sigma2_within_del", "q_del")}
    dfbetas = np.full((n, p), np.nan)
    k_del = np.zeros(n, dtype=int)
    for j, rows_of_unit in enumerate(members):
        keep = np.setdiff1d(np.arange(result.yi.shape[0]), rows_of_unit)
        k_del[j] = keep.size
        fit = refit(result, keep)
        if fit is None:
            continue
        diff = beta - fit.coef["estimate"].to_numpy()
        out["cooks"][j] = diff @ vb_inv @ diff
        out["cov_ratio"][j] = np.linalg.det(fit.vcov) / vb_det
        scale = fit.vcov if robust else result.vcov_at(fit.sigma2_study, fit.sigma2_within)
        dfbetas[j] = diff / np.sqrt(np.diag(scale))
        out["sigma2_study_del"][j] = fit.sigma2_study
        out["sigma2_within_del"][j] = fit.sigma2_within
        out["q_del"][j] = _model_of(fit).q
    with np.errstate(invalid="ignore"):
        influential = (stats.chi2.cdf(out["cooks"], p) > 0.5) | np.any(
            np.abs(dfbetas) > 1, axis=1)
    frame = pd.DataFrame({"study": labels, "k_del": k_del, **out})
    names = ["dfbetas"] if p == 1 else [f"dfbetas_{name}" for name in result.coef_names]
    for j, name in enumerate(names):
        frame[name] = dfbetas[:, j]
    frame["influential"] = influential
    return frame


def _model_of(fit: Any) -> Any:
    """The model-based fit behind a robust result (the result itself otherwise)."""
    return fit.model if isinstance(fit, RobustResult) else fit


def _check_intercept_only(result: Any, what: str) -> None:
    fitted_model(result, what)
    if result.X.shape[1] != 1 or result.coef_names[0] != "intrcpt":
        raise ValueError(f"{what} is only available for models without moderators")


def _units(result: FittedModel) -> tuple[list[Any], list[np.ndarray]]:
    """Labels and row indices of the units to omit/add: effects, or studies (first-seen order)."""
    if not is_clustered(result):
        return list(result.slab), [np.array([i]) for i in range(result.k)]
    codes, labels = pd.factorize(pd.Series(result.study, dtype=object), sort=False)
    return list(labels), [np.flatnonzero(codes == c) for c in range(len(labels))]


def refit(result: FittedModel, rows: Any) -> FittedModel | None:
    """The same model fitted to ``rows`` (positions) of ``result``'s data; None when it
    cannot be fitted there (too few studies or effects left).

    Same τ² estimator, test, level (and fixed τ²) for a univariate model; same rho,
    estimator, es_id and level for the CHE model; a robust result is refitted and made
    robust with the same adjustment.  Moderator columns are carried over.
    """
    rows = np.asarray(rows)
    X = result.X[rows]
    has_intercept = result.coef_names[0] == "intrcpt"
    mods = X[:, 1:] if has_intercept else X
    mods = mods if mods.shape[1] else None
    try:
        if not is_clustered(result):
            return random_effects(
                result.yi[rows],
                result.vi[rows],
                method=result.method,
                test=result.test,
                level=result.level,
                mods=mods,
                intercept=has_intercept,
                tau2=result.tau2 if result.tau2_fixed else None,
            )
        fit = multilevel(
            result.yi[rows],
            result.vi[rows],
            result.study[rows],
            es_id=result.es_id[rows],
            rho=result.rho,
            mods=mods,
            method=result.method,
            intercept=has_intercept,
            level=result.level,
        )
        return fit.robust(adjust=result.adjust) if isinstance(result, RobustResult) else fit
    except ValueError:
        return None


def _summary_row(result: FittedModel, rows: np.ndarray) -> dict[str, float]:
    """Size, estimate, inference, heterogeneity and variance components of the refit on
    ``rows``."""
    clustered = is_clustered(result)
    size: dict[str, float] = {"k": rows.size}
    if clustered:
        size["n_clusters"] = len(pd.unique(pd.Series(result.study[rows], dtype=object)))
    names = ["estimate", "se", "stat", "df", "pvalue", "ci_low", "ci_high", "q", "q_pvalue",
             "i2"]
    names += ["sigma2_study", "sigma2_within"] if clustered else ["tau2", "h2"]
    fit = refit(result, rows)
    if fit is None:
        return size | dict.fromkeys(names, float("nan"))
    model = _model_of(fit)
    return size | {name: float(getattr(fit if hasattr(fit, name) else model, name))
                   for name in names}
