"""Effect sizes and sampling variances with metafor's definitions: ``escalc(measure, **columns)``.

Each measure is one small function in ``MEASURES`` taking float arrays named as
metafor's ``escalc`` names its arguments (``m1i, sd1i, n1i, m2i, sd2i, n2i, di,
ti, ai, bi, ci, ri, ni``) and returning ``(yi, vi)``.  The formulas are those of
metafor 3.8 (Viechtbauer 2010) and are cited per measure; tests hold metafor's
values for every measure (``tests/reference/escalc.R``).

References
----------
Becker, B. J. (1988). Synthesizing standardized mean-change measures. *British
    Journal of Mathematical and Statistical Psychology*, 41, 257-278.
Bonett, D. G. (2008). Confidence intervals for standardized linear contrasts of
    means. *Psychological Methods*, 13, 99-109.
Cox, D. R. & Snell, E. J. (1989). *Analysis of Binary Data* (2nd ed.). Chapman & Hall.
Gibbons, R. D., Hedeker, D. R. & Davis, J. M. (1993). Estimation of effect size
    from a series of experiments involving paired comparisons. *Journal of
    Educational Statistics*, 18, 271-279.
Hasselblad, V. & Hedges, L. V. (1995). Meta-analysis of screening and diagnostic
    tests. *Psychological Bulletin*, 117, 167-178.
Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and
    related estimators. *Journal of Educational Statistics*, 6, 107-128.
Morris, S. B. (2000). Distribution of the standardized mean change effect size for
    meta-analysis on repeated measures. *British Journal of Mathematical and
    Statistical Psychology*, 53, 17-29.
Sanchez-Meca, J., Marin-Martinez, F. & Chacon-Moscoso, S. (2003). Effect-size
    indices for dichotomized outcomes in meta-analysis. *Psychological Methods*, 8, 448-467.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
    *Journal of Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import norm

Array = np.ndarray


# --------------------------------------------------------------------------- shared pieces


def hedges_c(m: Array) -> Array:
    """Exact small-sample correction c(m) = Γ(m/2) / (√(m/2)·Γ((m−1)/2)) (Hedges 1981, eq. 6e).

    Computed on the log scale with ``gammaln``, as metafor's ``.cmicalc`` does,
    with the C library's ``exp``/``log`` (R's): numpy's own differ in the last
    bit, which the ``UB`` variance (1 − (m − 2)/(m·c²)) amplifies ~1e6-fold at
    n = 1e6.  Defined for m > 1.
    """
    m = np.asarray(m, dtype=float)
    values, inverse = np.unique(m, return_inverse=True)  # group sizes repeat: compute each once
    lg_half, lg_half_less = gammaln(values / 2.0), gammaln((values - 1.0) / 2.0)
    # metafor's order of operations (the lgamma values are ~1e7 at n = 1e6)
    c = [math.exp(a - math.log(math.sqrt(x / 2.0)) - b) if x > 1 else math.nan
         for a, b, x in zip(lg_half.tolist(), lg_half_less.tolist(), values.tolist(), strict=True)]
    return np.asarray(c, dtype=float)[inverse].reshape(m.shape)


def smd_variance_ls(yi: Array, n1i: Array, n2i: Array) -> Array:
    """Large-sample variance of a standardised mean difference: 1/n1 + 1/n2 + yi²/(2(n1 + n2)).

    metafor's ``vtype="LS"`` for ``SMD`` (Hedges 1981, eq. 8 evaluated at yi).
    """
    return 1.0 / n1i + 1.0 / n2i + yi**2 / (2.0 * (n1i + n2i))


def log_odds_ratio_to_d(log_or: Array, v: Array, method: str = "logit") -> tuple[Array, Array]:
    """A log odds ratio and its variance on the SMD scale.

    ``logit``: d = ln(OR)·√3/π, v·3/π² (Hasselblad & Hedges 1995; metafor ``OR2DL``);
    ``normal``: d = ln(OR)/1.65, v/1.65² (Cox & Snell 1989; metafor ``OR2DN``).
    """
    if method == "logit":
        return np.sqrt(3.0) / np.pi * log_or, 3.0 / np.pi**2 * v
    if method == "normal":
        return log_or / 1.65, v / 1.65**2
    raise ValueError(f"method must be 'logit' or 'normal'; got {method!r}")


def _cells(ai: Array, bi: Array, ci: Array, di: Array, add: float, to: str) -> tuple[Array, ...]:
    """The 2×2 cells after metafor's continuity correction ``add`` applied ``to`` cells.

    ``only0`` (metafor's default): ``add`` to every cell of tables with a zero
    cell; ``all``: to every table; ``if0all``: to every table if any has a zero
    cell; ``none``: unchanged.
    """
    cells = [np.asarray(x, dtype=float).copy() for x in (ai, bi, ci, di)]
    zero = np.zeros(len(cells[0]), dtype=bool)
    for x in cells:
        zero |= x == 0
    if to == "all":
        zero[:] = True
    elif to == "if0all":
        zero[:] = zero.any()
    elif to == "none":
        zero[:] = False
    return tuple(np.where(zero, x + add, x) for x in cells)


# --------------------------------------------------------------------------- measures


def _smd(m1i, m2i, sd1i, sd2i, n1i, n2i, di, ti, vtype):
    """Hedges' g: yi = c(m)·(m1 − m2)/s_pooled, m = n1 + n2 − 2 (Hedges 1981).

    Rows with ``di`` (or ``ti``, converted to d = t·√(1/n1 + 1/n2)) use it as the
    mean difference over a unit SD, as metafor does.  vi by ``vtype``: ``LS``
    1/n1 + 1/n2 + yi²/(2N); ``UB`` 1/n1 + 1/n2 + (1 − (m − 2)/(m·c²))·yi²
    (Hedges 1983, unbiased); ``LS2`` c²·(1/n1 + 1/n2 + d²/(2N)); ``AV`` the LS
    formula at the N-weighted mean of yi.
    """
    di = np.where(np.isnan(di), ti * np.sqrt(1.0 / n1i + 1.0 / n2i), di)
    given = ~np.isnan(di)
    m1i = np.where(given, di, m1i)
    m2i = np.where(given, 0.0, m2i)
    sd1i = np.where(given, 1.0, sd1i)
    sd2i = np.where(given, 1.0, sd2i)
    _require(m1i=m1i, m2i=m2i, sd1i=sd1i, sd2i=sd2i)
    _positive(sd1i=sd1i, sd2i=sd2i)
    m = n1i + n2i - 2.0
    _above(1.0, "n1i + n2i - 2", m)
    sdp = np.sqrt(((n1i - 1.0) * sd1i**2 + (n2i - 1.0) * sd2i**2) / m)
    d = (m1i - m2i) / sdp
    c = hedges_c(m)
    yi = c * d
    ni = n1i + n2i
    if vtype == "LS":
        vi = smd_variance_ls(yi, n1i, n2i)
    elif vtype == "UB":
        vi = 1.0 / n1i + 1.0 / n2i + (1.0 - (m - 2.0) / (m * c**2)) * yi**2
    elif vtype == "LS2":
        vi = c**2 * (1.0 / n1i + 1.0 / n2i + d**2 / (2.0 * ni))
    else:  # AV
        mean_yi = np.sum(ni * yi) / np.sum(ni)
        vi = 1.0 / n1i + 1.0 / n2i + mean_yi**2 / (2.0 * ni)
    return yi, vi


def _smdh(m1i, m2i, sd1i, sd2i, n1i, n2i, vtype):
    """SMD with heteroscedastic SDs: yi = c(m)·(m1 − m2)/√((sd1² + sd2²)/2) (Bonett 2008).

    ``LS``: c²·[yi²(sd1⁴/(n1−1) + sd2⁴/(n2−1))/(2(sd1² + sd2²)²) + (sd1²/(n1−1) +
    sd2²/(n2−1))/((sd1² + sd2²)/2)]; ``LS2``: Bonett's (2008) large-sample form.
    """
    _positive(sd1i=sd1i, sd2i=sd2i)
    m = n1i + n2i - 2.0
    _above(1.0, "n1i + n2i - 2", m)
    c = hedges_c(m)
    s2 = sd1i**2 + sd2i**2
    yi = c * (m1i - m2i) / np.sqrt(s2 / 2.0)
    if vtype == "LS":
        vi = yi**2 * (sd1i**4 / (n1i - 1.0) + sd2i**4 / (n2i - 1.0)) / (2.0 * s2**2) + (
            sd1i**2 / (n1i - 1.0) + sd2i**2 / (n2i - 1.0)
        ) / (s2 / 2.0)
        vi = c**2 * vi
    else:  # LS2
        vi = (yi**2 * sd1i**2 / (2.0 * n1i * s2**2) + yi**2 * sd2i**2 / (2.0 * n2i * s2**2)
              + 2.0 * sd1i**2 / (n1i * s2) + 2.0 * sd2i**2 / (n2i * s2))
    return yi, vi


def _smcr(m1i, m2i, sd1i, ni, ri, vtype):
    """Standardised mean change, raw-score standardisation (Becker 1988).

    yi = c(n − 1)·(m1 − m2)/sd1 with sd1 the SD at the first measurement
    (metafor: m1i the post, m2i the pre mean); ``LS`` vi = 2(1 − r)/n + yi²/(2n);
    ``LS2`` c²·(2(1 − r)/n + d²/(2n)).
    """
    _positive(sd1i=sd1i)
    _correlation(ri)
    _above(1.0, "ni - 1", ni - 1.0)
    c = hedges_c(ni - 1.0)
    d = (m1i - m2i) / sd1i
    yi = c * d
    if vtype == "LS":
        vi = 2.0 * (1.0 - ri) / ni + yi**2 / (2.0 * ni)
    else:  # LS2
        vi = c**2 * (2.0 * (1.0 - ri) / ni + d**2 / (2.0 * ni))
    return yi, vi


def _smcc(m1i, m2i, sd1i, sd2i, ni, ri, vtype):
    """Standardised mean change, change-score standardisation (Gibbons et al. 1993).

    yi = c(n − 1)·(m1 − m2)/√(sd1² + sd2² − 2r·sd1·sd2); ``LS`` vi = 1/n + yi²/(2n);
    ``LS2`` c²·(1/n + d²/(2n)) (Morris 2000).
    """
    _positive(sd1i=sd1i, sd2i=sd2i)
    _correlation(ri)
    _above(1.0, "ni - 1", ni - 1.0)
    c = hedges_c(ni - 1.0)
    d = (m1i - m2i) / np.sqrt(sd1i**2 + sd2i**2 - 2.0 * ri * sd1i * sd2i)
    yi = c * d
    if vtype == "LS":
        vi = 1.0 / ni + yi**2 / (2.0 * ni)
    else:  # LS2
        vi = c**2 * (1.0 / ni + d**2 / (2.0 * ni))
    return yi, vi


def _log_odds_ratio(ai, bi, ci, di, add, to):
    """ln OR = logit(p1) − logit(p2), v = 1/a + 1/b + 1/c + 1/d, after the zero-cell correction."""
    a, b, c, d = _cells(ai, bi, ci, di, add, to)
    p1, p2 = a / (a + b), c / (c + d)
    return np.log(p1 / (1.0 - p1)) - np.log(p2 / (1.0 - p2)), 1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d


def _or2dl(ai, bi, ci, di, add, to):
    """SMD from a 2×2 table via the logistic distribution: d = ln(OR)·√3/π, v·3/π²."""
    return log_odds_ratio_to_d(*_log_odds_ratio(ai, bi, ci, di, add, to), method="logit")


def _or2dn(ai, bi, ci, di, add, to):
    """SMD from a 2×2 table via the normal distribution: d = ln(OR)/1.65, v/1.65²."""
    return log_odds_ratio_to_d(*_log_odds_ratio(ai, bi, ci, di, add, to), method="normal")


def _pbit(ai, bi, ci, di, add, to):
    """Probit transformed risk difference: yi = Φ⁻¹(p1) − Φ⁻¹(p2) (Sanchez-Meca et al. 2003).

    vi = 2π·p1(1 − p1)·exp(z1²)/n1 + 2π·p2(1 − p2)·exp(z2²)/n2.
    """
    a, b, c, d = _cells(ai, bi, ci, di, add, to)
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    z1, z2 = norm.ppf(p1), norm.ppf(p2)
    yi = z1 - z2
    vi = (2.0 * np.pi * p1 * (1.0 - p1) * np.exp(z1**2) / n1
          + 2.0 * np.pi * p2 * (1.0 - p2) * np.exp(z2**2) / n2)
    return yi, vi


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Measure:
    """One ``escalc`` measure: its function, required and optional arguments, variance types."""

    compute: Callable[..., tuple[Array, Array]]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    vtypes: tuple[str, ...] = ()
    table: bool = False  # a 2×2 table measure: takes add= and to=


_TABLE_ARGS = ("ai", "bi", "ci", "di", "n1i", "n2i")

#: measure name (metafor's) -> its definition.
MEASURES: dict[str, Measure] = {
    "SMD": Measure(_smd, ("n1i", "n2i"), ("m1i", "m2i", "sd1i", "sd2i", "di", "ti"),
                   ("LS", "UB", "LS2", "AV")),
    "SMDH": Measure(_smdh, ("m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i"), (), ("LS", "LS2")),
    "SMCR": Measure(_smcr, ("m1i", "m2i", "sd1i", "ni", "ri"), (), ("LS", "LS2")),
    "SMCC": Measure(_smcc, ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"), (), ("LS", "LS2")),
    "OR2DL": Measure(_or2dl, ("ai", "ci"), ("bi", "di", "n1i", "n2i"), table=True),
    "OR2DN": Measure(_or2dn, ("ai", "ci"), ("bi", "di", "n1i", "n2i"), table=True),
    "PBIT": Measure(_pbit, ("ai", "ci"), ("bi", "di", "n1i", "n2i"), table=True),
}
_TOS = ("only0", "all", "if0all", "none")


def escalc(
    measure: str,
    *,
    vtype: str = "LS",
    add: float = 0.5,
    to: str = "only0",
    **columns: object,
) -> pd.DataFrame:
    """Effect sizes ``yi`` and sampling variances ``vi``, one row per input row (metafor's escalc).

    Parameters
    ----------
    measure : one of ``MEASURES``: ``SMD`` (from ``m1i, sd1i, n1i, m2i, sd2i,
        n2i``, or ``di`` / ``ti`` with ``n1i, n2i``), ``SMDH``, ``SMCR`` (``m1i``
        post, ``m2i`` pre mean, ``sd1i`` pre SD, ``ni``, ``ri``), ``SMCC``,
        ``OR2DL``, ``OR2DN``, ``PBIT`` (2×2 table ``ai, bi, ci, di`` or ``ai,
        n1i, ci, n2i``).
    vtype : variance type as in metafor (``LS`` default; ``SMD`` also ``UB``,
        ``LS2``, ``AV``; ``SMDH``, ``SMCR``, ``SMCC`` also ``LS2``).
    add, to : continuity correction of 2×2 tables: ``add`` (default 1/2) is
        added to the cells of tables with a zero cell (``to="only0"``), or ``all``,
        ``if0all``, ``none``, as in metafor.
    **columns : the data, each an array-like or a pandas Series of one length
        (scalars are broadcast).  A Series' index becomes the result's index.

    Returns a DataFrame with columns ``yi`` and ``vi``.  Raises ``ValueError``
    naming the argument for unknown measures or arguments, missing data,
    negative SDs or counts, counts above group sizes, |r| > 1, or too few
    participants for the small-sample correction.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    spec = MEASURES[measure]
    allowed = spec.required + spec.optional
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        raise ValueError(f"measure {measure!r} takes {', '.join(allowed)}; got {unknown[0]!r}")
    if spec.vtypes and vtype not in spec.vtypes:
        raise ValueError(f"vtype must be one of {', '.join(spec.vtypes)} for measure "
                         f"{measure!r}; got {vtype!r}")
    if to not in _TOS:
        raise ValueError(f"to must be one of {', '.join(_TOS)}; got {to!r}")
    if not (np.isfinite(add) and add >= 0):
        raise ValueError(f"add must be a finite number >= 0; got {add!r}")
    index, data = _arrays(columns)
    if spec.table:
        data = _table(data)
    missing = [name for name in spec.required if name not in data]
    if missing:
        raise ValueError(f"measure {measure!r} needs argument {missing[0]!r}")
    _require(**{name: data[name] for name in spec.required})
    for name in ("n1i", "n2i", "ni"):
        if name in data and name in spec.required:
            _positive(**{name: data[name]})
    params = inspect.signature(spec.compute).parameters
    nan = np.full(len(index), np.nan)
    kwargs = {name: data.get(name, nan) for name in params
              if name not in ("vtype", "add", "to")}
    settings = {"vtype": vtype, "add": float(add), "to": to}
    extra = {name: value for name, value in settings.items() if name in params}
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = spec.compute(**kwargs, **extra)
    return pd.DataFrame({"yi": yi, "vi": vi}, index=index)


# --------------------------------------------------------------------------- input checks


def _arrays(columns: dict[str, object]) -> tuple[pd.Index, dict[str, Array]]:
    """(index, float arrays of one length); the first Series' index, else 0..k-1."""
    index = next((v.index for v in columns.values() if isinstance(v, pd.Series)), None)
    lengths = {name: np.size(v) for name, v in columns.items() if np.ndim(v) > 0}
    if len(set(lengths.values())) > 1:
        raise ValueError("the data arguments differ in length: "
                         + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    k = next(iter(lengths.values()), 1)
    if index is None:
        index = pd.RangeIndex(k)
    data = {}
    for name, value in columns.items():
        try:
            arr = np.asarray(value.to_numpy(dtype=float, na_value=np.nan)
                             if isinstance(value, pd.Series) else value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"argument {name!r} must be numeric") from None
        data[name] = np.broadcast_to(arr, (k,)).copy()
    return index, data


def _table(data: dict[str, Array]) -> dict[str, Array]:
    """Complete ai, bi, ci, di from group sizes, checking counts as metafor does."""
    for event, other, size in (("ai", "bi", "n1i"), ("ci", "di", "n2i")):
        if event not in data:
            continue
        if other not in data and size in data:
            data[other] = data[size] - data[event]
        elif other in data and size in data and np.any(data[size] != data[event] + data[other]):
            raise ValueError(f"{size} must equal {event} + {other}")
        if other not in data:
            raise ValueError(f"a 2x2 table needs {other!r} or {size!r}")
        for name in (event, other):
            if np.any(data[name] < 0):
                raise ValueError(f"argument {name!r}: counts must be >= 0"
                                 + (f" ({event} <= {size})" if name == other else ""))
        data.pop(size, None)
    return data


def _require(**arrays: Array) -> None:
    for name, x in arrays.items():
        if np.any(np.isnan(x)):
            raise ValueError(f"argument {name!r} has missing values")


def _positive(**arrays: Array) -> None:
    for name, x in arrays.items():
        if np.any(x <= 0):
            raise ValueError(f"argument {name!r} must be > 0")


def _above(bound: float, what: str, x: Array) -> None:
    if np.any(x <= bound):
        raise ValueError(f"{what} must be > {bound:g} for the small-sample correction")


def _correlation(ri: Array) -> None:
    if np.any(np.abs(ri) > 1):
        raise ValueError("argument 'ri' must be in [-1, 1]")


__all__ = ["MEASURES", "Measure", "escalc", "hedges_c", "log_odds_ratio_to_d",
           "smd_variance_ls"]
