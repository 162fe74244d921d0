"""GOSH diagnostics: the model refitted to every subset of the studies (metafor's ``gosh()``).

Graphical Display of Study Heterogeneity (Olkin, Dahabreh & Trikalinos 2012,
Res Synth Methods 3(3):214-223): the model is fitted to each of the 2^k − 1
non-empty subsets of the k studies, and the subset estimates are plotted
against their I² (:func:`metaally.plots.gosh.gosh_plot`).  Clusters in that
cloud point at influential or outlying studies.

As metafor 3.8's ``gosh.rma``: all subsets are fitted when there are at most
10^6 of them (or at most ``subsets``), otherwise a random sample of ``subsets``
(default 10^6) subsets, each non-empty subset equally likely (metafor draws the
size m with probability ∝ C(k, m), then m studies at random: the same
distribution).  Subsets are ordered by size; all subsets of one size in
metafor's order (``expand.grid``: study 1 varies fastest).  A one-study subset
has Q = 0, I² = 0, H² = 1, τ² = 0, as metafor reports it.  With ``method="DL"``
metafor's ``gosh()`` takes a closed-form shortcut that reports H² = Q/(k − 1)
(as for FE; below 1 when Q < k − 1, where ``rma`` itself reports H² = 1); so
does this function, to give metafor's numbers.

Every subset is an ordinary fit of :func:`metaally.models.univariate.fit_arrays`, the
engine of :func:`metaally.random_effects`, run on masked copies of (yi, vi) in
chunks of :data:`metaally.models.progress.CHUNK_ELEMENTS` entries, so temporaries stay
in the hundreds of megabytes; the result holds N subsets × (6 numbers + k flags).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaally.diagnostics.runner import run_chunks
from metaally.models.inputs import effect_arrays
from metaally.models.printing import Printable, fmt_num
from metaally.models.progress import slices
from metaally.models.protocol import FittedModel, is_clustered
from metaally.models.univariate import check_options, fit_arrays
from metaally.models.wls import Design

__all__ = [
    "MAX_SUBSETS",
    "all_subsets",
    "gosh",
    "GoshResult",
    "random_subsets",
]

MAX_SUBSETS = 10**6
"""metafor's limit: beyond this many subsets a random sample is fitted."""

_STATISTICS = ("k", "q", "i2", "h2", "tau2", "estimate")
_LABELS = {"k": "k", "q": "Q", "i2": "I2", "h2": "H2", "tau2": "tau2", "estimate": "estimate"}


@dataclass(frozen=True)
class GoshResult(Printable):
    """Fits of the model to subsets of the studies (metafor's ``gosh.rma`` object).

    One entry per subset, ordered by subset size: ``size`` (studies in the
    subset), ``q`` (Cochran's Q), ``i2``, ``h2``, ``tau2``, ``estimate``, and
    ``fallback`` (τ² found by the engine's bracketing fallback; metafor reports
    no fit for such a subset).  ``incl`` (subsets × k, bool) marks which
    studies each subset includes; ``exact`` is True when all subsets were fitted.
    """

    k: int
    method: str
    exact: bool
    incl: np.ndarray
    size: np.ndarray
    q: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    tau2: np.ndarray
    estimate: np.ndarray
    fallback: np.ndarray
    slab: tuple[str, ...]

    @property
    def n_subsets(self) -> int:
        return int(self.size.size)

    def to_frame(self, studies: bool = False) -> pd.DataFrame:
        """One row per subset: k, q, i2, h2, tau2, estimate, fallback; with
        ``studies=True`` also one boolean column per study (is it in the subset)."""
        frame = pd.DataFrame({
            "k": self.size, "q": self.q, "i2": self.i2, "h2": self.h2,
            "tau2": self.tau2, "estimate": self.estimate, "fallback": self.fallback,
        })
        if studies:
            frame = pd.concat([frame, pd.DataFrame(self.incl, columns=list(self.slab))], axis=1)
        return frame

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.gosh.rma``."""
        stats = [s for s in _STATISTICS if not (s == "tau2" and self.method == "FE")]
        what = "all possible" if self.exact else "random"
        lines = [
            f"GOSH diagnostics (k = {self.k}; tau^2 estimator: {self.method})",
            "",
            f"Model fits: {self.n_subsets} ({what} subsets)",
        ]
        n_fallback = int(self.fallback.sum())
        if n_fallback:
            lines.append(f"Fits whose tau^2 needed the bracketing fallback: {n_fallback}")
        rows = [["", "mean", "min", "q1", "median", "q3", "max"]]
        for name in stats:
            x = getattr(self, "size" if name == "k" else name).astype(float)
            q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
            rows.append([_LABELS[name]] + [fmt_num(float(val)) for val in
                                           (x.mean(), x.min(), q1, med, q3, x.max())])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines.append("")
        lines += [
            " ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                     for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        return "\n".join(lines)


def gosh(
    result: Any,
    vi: Any = None,
    method: str | None = None,
    subsets: int | None = None,
    seed: int | np.random.Generator | None = None,
    progress: bool | None = None,
    slab: Any = None,
    *,
    client: Any = None,
    workers: int | None = 1,
) -> GoshResult:
    """Fit the model ``method`` to subsets of the studies (metafor ``gosh(rma(yi, vi, method))``).

    Parameters
    ----------
    result : a fitted intercept-only univariate model (``random_effects``: its yi, vi,
        study labels and τ² estimator are used, as metafor's ``gosh(res)``), or the
        effect sizes ``yi`` (then give ``vi``).
    vi : sampling variances, with ``yi``.
    method : τ² estimator (FE, DL, HE, HS, SJ, PM, EB, ML, REML), as in
        :func:`metaally.random_effects`; default: the result's, "FE" with ``yi``/``vi``.
    subsets : fit all 2^k − 1 subsets when there are at most this many
        (default 10^6), else this many random subsets.
    seed : seed (or numpy Generator) for the random subsets.
    progress : progress bar policy of :mod:`metaally.models.progress`.
    slab : study labels (default "Study 1", ...), naming the columns of ``incl``.
    client, workers : where the chunks of subsets are fitted
        (:func:`metaally.diagnostics.runner.run_chunks`): in this process (default),
        local processes, or a Dask cluster; the results are identical.

    Each subset gives the estimate μ̂ (inverse-variance weighted mean with
    weights 1/(v_i + τ̂²)), τ̂², Q = Σ (y_i − ȳ_FE)²/v_i, and I², H² as
    :func:`metaally.random_effects` defines them.
    """
    if isinstance(result, FittedModel):
        if vi is not None or slab is not None:
            raise ValueError("gosh: a fitted model result carries its vi and slab; drop them")
        if is_clustered(result) or result.X.shape[1] != 1:
            raise ValueError("gosh needs an intercept-only univariate (random_effects) result")
        yi, vi, slab = result.yi, result.vi, list(result.slab)
        method = result.method if method is None else method
    elif vi is None:
        raise ValueError("gosh needs vi with yi (or a fitted random_effects result)")
    else:
        yi = result
    method, _, _ = check_options("FE" if method is None else method, "z", 0.95)
    n_rows = np.size(yi)
    labels = (np.array([f"Study {i + 1}" for i in range(n_rows)], dtype=object)
              if slab is None else np.asarray(slab, dtype=object))
    y, v, (labels,), _ = effect_arrays(yi, vi, labels, names=["slab"])
    k = y.size
    if k < 2:
        raise ValueError("GOSH needs at least two studies")
    limit = MAX_SUBSETS
    if subsets is not None:
        limit = round(subsets)
        if limit < 2:
            raise ValueError(f"subsets must be at least 2; got {subsets!r}")
    exact = 2**k - 1 <= limit
    incl = all_subsets(k) if exact else random_subsets(k, limit, np.random.default_rng(seed))
    fits = _fit_subsets(y, v, incl, method, progress, client, workers)
    return GoshResult(k=k, method=method, exact=exact, incl=incl,
                      slab=tuple(str(s) for s in labels), **fits)


def _fit_chunk(task: tuple[np.ndarray, np.ndarray, np.ndarray, str]) -> dict[str, np.ndarray]:
    """The statistics of one chunk of subsets (``incl`` rows masking y, v)."""
    y, v, incl, method = task
    b, k = incl.shape
    with warnings.catch_warnings():
        # counted in ``fallback`` and reported once by gosh(), not once per chunk
        warnings.filterwarnings("ignore", ".*did not converge", RuntimeWarning)
        fit = fit_arrays(np.broadcast_to(y, (b, k)), np.broadcast_to(v, (b, k)),
                         Design(np.ones((k, 1))), method, "z", 0.95, mask=incl)
    return {"estimate": fit.beta[:, 0], "tau2": fit.tau2, "q": fit.q, "i2": fit.i2,
            "h2": fit.h2, "fallback": fit.fallback}


def all_subsets(k: int) -> np.ndarray:
    """Every non-empty subset of k studies as a (2^k − 1, k) boolean matrix, in metafor's
    order: by size, and within a size by the binary code Σ_j 2^j [study j included]."""
    codes = np.arange(1, 2**k, dtype="<u8")
    incl = _code_bits(codes, k)
    return incl[np.argsort(incl.sum(axis=1), kind="stable")]


def random_subsets(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n subsets drawn uniformly from the 2^k − 1 non-empty ones (with replacement),
    ordered by size: each study is in with probability 1/2, empty draws are redrawn."""
    incl = _random_bits(rng, n, k)
    empty = np.flatnonzero(~incl.any(axis=1))
    while empty.size:
        incl[empty] = _random_bits(rng, empty.size, k)
        empty = empty[~incl[empty].any(axis=1)]
    return incl[np.argsort(incl.sum(axis=1), kind="stable")]


def _random_bits(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, -(-k // 8)), dtype=np.uint8)
    return np.unpackbits(raw, axis=1, count=k, bitorder="little").astype(bool)


def _code_bits(codes: np.ndarray, k: int) -> np.ndarray:
    """Bit j of each code as column j (little-endian), shape (len(codes), k)."""
    as_bytes = codes.astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1, count=k, bitorder="little").astype(bool)


def _fit_subsets(
    y: np.ndarray, v: np.ndarray, incl: np.ndarray, method: str, progress: bool | None,
    client: Any = None, workers: int | None = 1,
) -> dict[str, np.ndarray]:
    """Fit every row of ``incl`` (a mask over y, v) in chunks; the per-subset statistics."""
    n, k = incl.shape
    parts = slices(n, k)
    fitted = run_chunks(_fit_chunk, ((y, v, incl[rows], method) for rows in parts),
                        [r.stop - r.start for r in parts], client=client, workers=workers,
                        progress=progress, desc="GOSH", unit="subsets")
    out = {name: np.concatenate([f[name] for f in fitted]) if fitted else np.empty(0)
           for name in ("q", "i2", "h2", "tau2", "estimate", "fallback")}
    fallback = out.pop("fallback").astype(bool)
    size = incl.sum(axis=1)
    if method == "DL":   # metafor's FE/DL shortcut in gosh(): H² = Q/(k − 1), even below 1
        with np.errstate(divide="ignore", invalid="ignore"):
            out["h2"] = out["q"] / (size - 1)
    single = size == 1   # metafor's values for a one-study fit (the engine gives NaN)
    out["q"][single], out["i2"][single], out["h2"][single] = 0.0, 0.0, 1.0
    if fallback.any():
        warnings.warn(
            f"the tau^2 iteration did not converge for {int(fallback.sum())} of {n} subsets "
            "(metafor reports no fit for them); their tau^2 was found by a bracketing root "
            "search and they are flagged in `fallback`",
            RuntimeWarning,
            stacklevel=3,
        )
    return {"size": size, "fallback": fallback, **out}
