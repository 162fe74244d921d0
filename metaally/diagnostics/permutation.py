"""Permutation tests for a fitted univariate model (metafor's ``permutest()``).

Follows metafor 3.8's ``permutest.rma.uni`` (Viechtbauer et al. 2015,
Psychol Methods 20(3):360-374; Good 2000 for sign flips):

- with moderators, the rows of the design matrix X are permuted (y, v stay in
  place) and the model refitted; the test is exact, over every distinct
  arrangement of the rows, when there are at most ``n_perm`` of them
  (k! / Π n_g! for n_g identical rows of each kind), else ``n_perm`` random
  permutations, the first of which is the observed arrangement;
- without moderators, the signs of the y_i are flipped instead: all 2^k sign
  vectors when 2^k ≤ ``n_perm``, else ``n_perm`` random ones, the first being
  the observed data;
- two-sided p-value of coefficient j: the proportion of permutations with
  |stat_j*| ≥ |stat_j| − ε (the observed data among them), ε = √(machine
  epsilon), where stat is the model's z (or t with ``test="knha"``);
  omnibus test: the proportion with QM* ≥ QM − ε.

Every refit is a row of one batch run through
:func:`metaally.models.univariate.fit_arrays` (the engine of ``random_effects``), in
chunks of :data:`metaally.models.progress.CHUNK_ELEMENTS` entries, so memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaally.diagnostics.runner import run_chunks
from metaally.models.printing import Printable, coef_table, fmt_num, pvalue_phrase
from metaally.models.progress import slices
from metaally.models.univariate import RandomEffectsResult, fit_arrays
from metaally.models.wls import Design

__all__ = [
    "COMPTOL",
    "Batches",
    "distinct_permutations",
    "permutation_test",
    "PermutationResult",
]

COMPTOL = float(np.sqrt(np.finfo(float).eps))
"""metafor's ``comptol``: permuted statistics this close to the observed one count as ties."""


@dataclass(frozen=True)
class PermutationResult(Printable):
    """A permutation test of a fitted model (metafor's ``permutest.rma.uni`` object).

    ``coef`` has one row per coefficient: estimate, se, stat, pvalue (the
    model's), pvalue_perm and the model's ci_low, ci_high.  ``stat_perm``
    (n_perm × p) and ``qm_perm`` hold the statistic of every permutation, the
    observed data included.
    """

    coef: pd.DataFrame
    qm: float
    qm_df1: int
    qm_df2: float
    qm_pvalue: float
    qm_pvalue_perm: float
    n_perm: int
    exact: bool
    stat_perm: np.ndarray
    qm_perm: np.ndarray
    k: int
    method: str
    test: str
    moderators: bool

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient, with the omnibus test and the permutation counts."""
        frame = self.coef.rename_axis("term").reset_index()
        for name in ("qm", "qm_pvalue", "qm_pvalue_perm", "n_perm", "exact"):
            frame[name] = getattr(self, name)
        return frame

    def summary(self) -> str:
        """Printout in the layout of metafor's ``print.permutest.rma.uni``."""
        kind = "exact" if self.exact else "approximate"
        what = "sign flips of yi" if not self.moderators else "permutations of the moderators"
        lines = [
            f"Permutation test ({kind}: {self.n_perm} {what}; k = {self.k}; "
            f"tau^2 estimator: {self.method})",
        ]
        if self.moderators:
            if self.test == "z":
                test = f"QM(df = {self.qm_df1}) = {fmt_num(self.qm)}"
            else:
                test = f"F(df1 = {self.qm_df1}, df2 = {int(self.qm_df2)}) = {fmt_num(self.qm)}"
            phrase = pvalue_phrase(self.qm_pvalue_perm).replace("p-val", "p-val*", 1)
            lines += ["", f"Test of Moderators: {test}, {phrase}"]
        table = self.coef.drop(columns="pvalue").rename(columns={"pvalue_perm": "pvalue"})
        if self.test != "z":
            table = table.assign(df=self.qm_df2)
        stat = "zval" if self.test == "z" else "tval"
        lines += ["", "Model Results:", "", coef_table(table, stat), "",
                  "* p-values based on permutation testing"]
        return "\n".join(lines)


def permutation_test(
    result: RandomEffectsResult,
    n_perm: int = 1000,
    seed: int | np.random.Generator | None = None,
    progress: bool | None = None,
    *,
    client: Any = None,
    workers: int | None = 1,
) -> PermutationResult:
    """Permutation p-values for the coefficients and the omnibus test of ``result``.

    Parameters
    ----------
    result : a :class:`metaally.RandomEffectsResult` (``random_effects(...)``).
    n_perm : number of random permutations; the test is exact (all of them)
        when there are no more than this many distinct ones.
    seed : seed (or numpy Generator) for the random permutations.
    progress : progress bar policy of :mod:`metaally.models.progress`.
    client, workers : where the chunks of refits run
        (:func:`metaally.diagnostics.runner.run_chunks`): in this process (default),
        local processes, or a Dask cluster.  The permutations are drawn here, in order,
        so the results are identical on every executor.

    The model is refitted with the same ``method``, ``test``, ``level`` and
    (fixed) τ² as ``result``.  Two-sided p-value of coefficient j: the share of
    permutations (the observed one among them) with |stat_j*| ≥ |stat_j| − √eps;
    of the omnibus test, with QM* ≥ QM − √eps (metafor ``permutest.rma.uni``;
    Viechtbauer et al. 2015).  The module docstring says which permutations.
    """
    if not isinstance(result, RandomEffectsResult):
        raise ValueError("permutation_test needs a fitted model from random_effects()")
    if not (np.isfinite(n_perm) and round(n_perm) >= 2):
        raise ValueError(f"n_perm must be at least 2; got {n_perm!r}")
    n_perm = int(round(n_perm))
    y, v, X = result.yi, result.vi, result.X
    k, p = X.shape
    moderators = not (result.intercept and p == 1)
    rng = np.random.default_rng(seed)
    if moderators:
        labels = np.unique(X, axis=0, return_inverse=True)[1].ravel()
        counts = np.bincount(labels)
        n_exact = math.factorial(k) // math.prod(math.factorial(int(c)) for c in counts)
    else:
        n_exact = 2**k
    exact = n_exact <= n_perm
    total = n_exact if exact else n_perm
    if not moderators:
        batches = _sign_flips(y, v, exact, rng)
    elif exact:
        batches = _exact_rearrangements(y, v, labels)
    else:
        batches = _random_rearrangements(y, v, rng)

    stat_perm = np.empty((total, p))
    qm_perm = np.empty(total)
    tau2 = result.tau2 if result.tau2_fixed else None
    options = (X, result.method, result.test, result.level, tau2, result.intercept)
    parts = slices(total, k)
    tasks = ((*batches(rows.start, rows.stop - rows.start), options) for rows in parts)
    fitted = run_chunks(_refit_chunk, tasks, [r.stop - r.start for r in parts], client=client,
                        workers=workers, progress=progress, desc="permutation test",
                        unit="fits")
    for rows, (stat_rows, qm_rows) in zip(parts, fitted, strict=True):
        stat_perm[rows], qm_perm[rows] = stat_rows, qm_rows

    stat = result.coef["stat"].to_numpy()
    coef = result.coef[["estimate", "se", "stat", "pvalue"]].assign(
        pvalue_perm=_proportion(np.abs(stat_perm) >= np.abs(stat) - COMPTOL, stat_perm),
        ci_low=result.coef["ci_low"], ci_high=result.coef["ci_high"],
    )
    qm_pvalue_perm = _proportion(qm_perm >= result.qm - COMPTOL, qm_perm)
    return PermutationResult(
        coef=coef, qm=result.qm, qm_df1=result.qm_df1, qm_df2=result.qm_df2,
        qm_pvalue=result.qm_pvalue, qm_pvalue_perm=float(qm_pvalue_perm), n_perm=total,
        exact=exact, stat_perm=stat_perm, qm_perm=qm_perm, k=k, method=result.method,
        test=result.test, moderators=moderators,
    )


def _refit_chunk(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient statistics and QM of one chunk of permuted data sets."""
    Y, V, (X, method, test, level, tau2, intercept) = task
    fit = fit_arrays(Y, V, Design(X), method, test, level, tau2=tau2, intercept=intercept)
    return fit.stat, fit.qm


def distinct_permutations(labels: np.ndarray) -> np.ndarray:
    """Every distinct ordering of the multiset ``labels`` (ints 0..G−1), one per row.

    Built position by position: each partial ordering is extended by every
    label it has left, so the work is proportional to the output.
    """
    counts = np.bincount(labels)
    seqs = np.zeros((1, 0), dtype=np.intp)
    left = counts[None, :]
    for _ in range(labels.size):
        grown, remaining = [], []
        for g in range(counts.size):
            ok = left[:, g] > 0
            grown.append(np.column_stack([seqs[ok], np.full(int(ok.sum()), g)]))
            rest = left[ok].copy()
            rest[:, g] -= 1
            remaining.append(rest)
        seqs, left = np.concatenate(grown), np.concatenate(remaining)
    return seqs


Batches = Callable[[int, int], tuple[np.ndarray, np.ndarray]]
"""(start, size) → the (Y, V) arrays, shape (size, k), of that chunk of refits."""


def _sign_flips(
    y: np.ndarray, v: np.ndarray, exact: bool, rng: np.random.Generator
) -> Batches:
    """All 2^k sign vectors (row i flips study j when bit j of i is set), or random
    ones with the observed data first."""
    k = y.size

    def batch(start: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        if exact:
            codes = np.arange(start, start + b, dtype="<u8").view(np.uint8).reshape(-1, 8)
            flips = np.unpackbits(codes, axis=1, count=k, bitorder="little")
        else:
            flips = rng.integers(0, 2, size=(b, k), dtype=np.uint8)
            if start == 0:
                flips[0] = 0
        return (1.0 - 2.0 * flips) * y, np.broadcast_to(v, (b, k))

    return batch


def _exact_rearrangements(y: np.ndarray, v: np.ndarray, labels: np.ndarray) -> Batches:
    """Every distinct arrangement of the design rows, as (y, v) moved instead of X.

    Arrangement s gives study j a design row of kind s_j.  With X fixed instead,
    study j moves to a row of X of kind s_j: the t-th study (in order) given kind g
    by s goes to the t-th row of X of kind g.
    """
    orders = distinct_permutations(labels)
    by_kind = np.argsort(labels, kind="stable")

    def batch(start: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        source = np.empty((b, labels.size), dtype=np.intp)
        source[:, by_kind] = np.argsort(orders[start:start + b], axis=1, kind="stable")
        return y[source], v[source]

    return batch


def _random_rearrangements(y: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> Batches:
    """Random permutations of the (y_i, v_i) pairs against fixed X rows, the observed
    order first: the same distribution as randomly permuting the rows of X."""
    k = y.size

    def batch(start: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        source = rng.permuted(np.tile(np.arange(k), (b, 1)), axis=1)
        if start == 0:
            source[0] = np.arange(k)
        return y[source], v[source]

    return batch


def _proportion(hits: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``hits`` among the permutations whose statistic is not NaN (na.rm)."""
    valid = ~np.isnan(values)
    return np.sum(hits & valid, axis=0) / np.sum(valid, axis=0)

