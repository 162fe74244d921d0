"""Sampling covariances of contrasts that share an arm (multi-arm studies, network meta-analysis).

Two contrasts of one study that use the same comparison group are correlated: their
sampling errors share that group's error.  For mean differences the covariance is the
shared arm's variance of its mean, sd_C^2 / n_C (metafor: ``to.wide`` + ``escalc("MD")``
+ ``contrmat``, its help page of ``dat.senn2013``).  For standardized mean differences
(Gleser & Olkin 2009, "Stochastically dependent effect sizes", in Cooper, Hedges &
Valentine (eds.), The Handbook of Research Synthesis and Meta-Analysis, 2nd ed., ch. 19,
multiple-treatment studies)::

    Cov(g_1, g_2) = 1 / n_C + g_1 g_2 / (2 N),

n_C the shared arm's size and N the participants of the arms involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaally.effects.escalc import escalc

__all__ = [
    "Contrasts",
    "arm_contrasts",
    "shared_arm_covariance",
]

_MEASURES = ("MD", "SMD")


@dataclass(frozen=True)
class Contrasts:
    """Contrasts of a network: ``frame`` (study, treat1, treat2, yi, vi, n1, n2; one row per
    non-baseline arm of each study) and their full sampling covariance ``V`` (k x k)."""

    frame: pd.DataFrame
    V: np.ndarray


def arm_contrasts(
    study: Any,
    treatment: Any,
    mean: Any,
    sd: Any,
    n: Any,
    reference: str | None = None,
    measure: str = "MD",
) -> Contrasts:
    """Contrasts of every arm with its study's baseline arm, from arm-level data.

    One row per arm: ``study``, ``treatment``, ``mean``, ``sd``, ``n``.  The baseline of a
    study is its ``reference`` arm when it has one, otherwise its first treatment in
    sorted order; each other arm gives one contrast ``treat1 = arm`` vs ``treat2 = baseline``
    (metafor's ``to.wide(..., ref = reference)``).

    ``measure="MD"``: y = m1 - m2, v = sd1^2/n1 + sd2^2/n2 (metafor ``escalc("MD")``),
    covariance of two contrasts of a study sd_C^2 / n_C (their shared baseline).
    ``measure="SMD"``: Hedges' g with the two arms' pooled SD (``escalc("SMD")``) and
    ``shared_arm_covariance``'s covariance (Gleser & Olkin 2009).
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {', '.join(_MEASURES)}; got {measure!r}")
    arms = pd.DataFrame({"study": np.asarray(study, dtype=object),
                         "treatment": np.asarray(treatment, dtype=object)})
    for name, values in (("mean", mean), ("sd", sd), ("n", n)):
        col = np.asarray(values, dtype=float).reshape(-1)
        if col.shape[0] != len(arms):
            raise ValueError(f"study has {len(arms)} values but {name} has {col.shape[0]}; "
                             "they must have the same length")
        if not np.all(np.isfinite(col)):
            raise ValueError(f"{name} must be finite numbers")
        arms[name] = col
    if np.any(arms["sd"] <= 0) or np.any(arms["n"] < 2):
        raise ValueError("every arm needs sd > 0 and n >= 2")
    if arms.duplicated(["study", "treatment"]).any():
        raise ValueError("a study lists the same treatment twice")
    rows = []
    for s, group in arms.groupby("study", sort=False):
        if len(group) < 2:
            raise ValueError(f"study {s!r} has a single arm: no contrast")
        names = list(group["treatment"])
        base_name = reference if reference in names else sorted(names)[0]
        base = group[group["treatment"] == base_name].iloc[0]
        for arm in group.itertuples(index=False):
            if arm.treatment != base_name:
                rows.append((s, arm.treatment, base_name, arm.mean, arm.sd, arm.n,
                             base["mean"], base["sd"], base["n"]))
    wide = pd.DataFrame(rows, columns=["study", "treat1", "treat2", "m1", "sd1", "n1",
                                       "m2", "sd2", "n2"])
    if measure == "MD":
        yi = (wide["m1"] - wide["m2"]).to_numpy()
        vi = (wide["sd1"] ** 2 / wide["n1"] + wide["sd2"] ** 2 / wide["n2"]).to_numpy()
        shared = (wide["sd2"] ** 2 / wide["n2"]).to_numpy()
        V = np.diag(vi)
        study_arr = wide["study"].to_numpy()
        same = (study_arr[:, None] == study_arr[None, :]) & ~np.eye(len(wide), dtype=bool)
        V[same] = np.broadcast_to(shared[:, None], V.shape)[same]
    else:
        n1, n2 = wide["n1"].to_numpy(), wide["n2"].to_numpy()
        smd = escalc("SMD", m1i=wide["m1"].to_numpy(), sd1i=wide["sd1"].to_numpy(), n1i=n1,
                     m2i=wide["m2"].to_numpy(), sd2i=wide["sd2"].to_numpy(), n2i=n2)
        yi, vi = smd["yi"].to_numpy(), smd["vi"].to_numpy()
        V = shared_arm_covariance(yi, vi, wide["study"], wide["treat1"], wide["treat2"], n1, n2)
    frame = wide[["study", "treat1", "treat2"]].assign(yi=yi, vi=vi, n1=wide["n1"],
                                                      n2=wide["n2"])
    return Contrasts(frame, V)


def shared_arm_covariance(
    yi: Any,
    vi: Any,
    study: Any,
    treat1: Any,
    treat2: Any,
    n1: Any,
    n2: Any,
    rho: float = 0.6,
) -> np.ndarray:
    """Full sampling covariance of standardized mean differences (k x k, block-diagonal).

    Row i is ``treat1`` vs ``treat2`` in ``study`` with arm sizes ``n1``, ``n2`` and
    variance ``vi``.  Two rows a, b of one study:

    - the same two arms (another outcome or time point on the same participants):
      ``rho * sqrt(v_a v_b)``, an assumed correlation (the CHE model's default 0.6),
      negated when one row is the other's comparison reversed;
    - exactly one shared arm C (a multi-arm study): Gleser & Olkin (2009)'s
      ``s / n_C + g_a g_b / (2 N)``, N = n of the three arms involved, s = +1 when C
      is on the same side of both contrasts, -1 when it is the comparison arm of one
      and the intervention arm of the other (the shared error enters with opposite
      signs); capped at ``sqrt(v_a v_b)`` in absolute value;
    - no shared arm: 0.
    Rows of different studies: 0.
    """
    y = np.asarray(yi, dtype=float).reshape(-1)
    v = np.asarray(vi, dtype=float).reshape(-1)
    k = y.shape[0]
    cols = {"study": study, "treat1": treat1, "treat2": treat2, "n1": n1, "n2": n2}
    arr = {}
    for name, values in cols.items():
        a = np.asarray(values, dtype=object if name in ("study", "treat1", "treat2")
                       else float).reshape(-1)
        if a.shape[0] != k:
            raise ValueError(f"yi has {k} values but {name} has {a.shape[0]}; "
                             "they must have the same length")
        arr[name] = a
    if v.shape[0] != k or np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("vi must be k positive finite sampling variances")
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must be between -1 and 1; got {rho!r}")
    V = np.diag(v)
    for s in pd.unique(arr["study"]):
        rows = np.flatnonzero(arr["study"] == s)
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                V[a, b] = V[b, a] = _pair_covariance(a, b, y, v, arr, rho)
    return V


def _pair_covariance(a: int, b: int, y: np.ndarray, v: np.ndarray, arr: dict, rho: float) -> float:
    t1, t2, n1, n2 = arr["treat1"], arr["treat2"], arr["n1"], arr["n2"]
    arms_a = {t1[a]: n1[a], t2[a]: n2[a]}
    arms_b = {t1[b]: n1[b], t2[b]: n2[b]}
    shared = set(arms_a) & set(arms_b)
    if len(shared) == 2:
        return (1.0 if t1[a] == t1[b] else -1.0) * rho * float(np.sqrt(v[a] * v[b]))
    if not shared:
        return 0.0
    c = shared.pop()
    sign = 1.0 if (t2[a] == c) == (t2[b] == c) else -1.0
    total = sum(arms_a.values()) + sum(arms_b.values()) - arms_a[c]
    cov = sign / arms_a[c] + y[a] * y[b] / (2.0 * total)
    limit = float(np.sqrt(v[a] * v[b]))
    return float(np.clip(cov, -limit, limit))
