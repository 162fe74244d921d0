"""Monte Carlo power, coverage, bias and RMSE of the analyses a report runs.

Data-generating model (one replication of one design cell): k studies of n
participants (two arms of n/2), m effects per study,

    θ_i  = μ + τ·u_i,         θ_ij = θ_i + ω·u_ij,        u ~ N(0, 1)

and observed effects drawn by ``sampling``:

- ``"normal"``: y_ij = θ_ij + e_ij, (e_i1, …, e_im) ~ N(0, v·R_ρ) with
  v = (n1 + n2)/(n1·n2) + μ²/(2(n1 + n2)) the variance at the design effect and
  R_ρ compound symmetry with correlation ρ; the analyses are given vi = v
  (the assumptions of the analytic power formula, :func:`metaally.meta_power`);
- ``"smd"`` (default): Hedges' g of two normal arms: d_ij = √c·(θ_ij/√c + z_ij)/√(x_ij/ν)
  with c = 1/n1 + 1/n2, ν = n − 2, (z_i1, …, z_im) ~ N(0, R_ρ), x_ij ~ χ²(ν)
  (for m = 1 exactly the noncentral t of Hedges 1981), g = J(ν)·d, and the
  analyses see vi = c + g²/(2n) (metafor's vtype "LS"), as in a real review.

Analyses (two-sided tests of μ = 0 and ``level`` intervals):
``"fe"`` (fixed effect, z), ``"reml_z"``, ``"reml_knha"`` (REML with the
Hartung–Knapp–Sidik–Jonkman t test), all on every effect as if independent, on
the batch engine of :func:`metaally.random_effects_batch`; ``"che_cr2"``: the
CHE working model with ρ as generated, CR2 standard errors and Satterthwaite
df (:func:`metaally.multilevel` + ``.robust()``; Pustejovsky & Tipton 2022).

Performance measures with Monte Carlo standard errors (Morris, White &
Crowther 2019, Stat Med 38(11), Table 6): power = P(p < α), MCSE √(P(1−P)/R);
coverage = P(ci_low ≤ μ ≤ ci_high), same MCSE; bias = mean(μ̂ − μ), MCSE
sd(μ̂)/√R; RMSE = √mean((μ̂ − μ)²), MCSE sd((μ̂ − μ)²)/(2·RMSE·√R).  Replications
whose fit failed (non-finite estimate) are counted in ``failed`` and left out.

Reproducibility: replication chunk j of design cell c draws from
``SeedSequence(seed, spawn_key=(c, j))``, so local processes, a Dask cluster and
this process give identical results for the same ``seed`` and ``chunk_reps``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from metaally.diagnostics.runner import run_chunks
from metaally.models.multilevel import multilevel
from metaally.models.printing import Printable, fmt_num
from metaally.models.univariate import check_options, fit_arrays
from metaally.models.wls import Design

__all__ = ["simulate", "SimulationResult", "DESIGN_DEFAULTS", "ANALYSES"]

DESIGN_DEFAULTS: dict[str, Any] = {
    "effect": 0.3, "k": 5, "n": 100, "tau": 0.1, "m": 1, "omega": 0.0, "rho": 0.6,
    "sampling": "smd",
}
"""Design factors and their defaults; any of them may be given as a list (a grid)."""

ANALYSES = ("fe", "reml_z", "reml_knha", "che_cr2")
_SUMS = ("reps", "failed", "reject", "cover", "err", "err2", "err4", "width")


@dataclass(frozen=True)
class SimulationResult(Printable):
    """Performance of each analysis in each design cell (one row each) with MC errors."""

    table: pd.DataFrame
    n_reps: int
    seed: int
    level: float

    def to_frame(self) -> pd.DataFrame:
        """The design factors, the analysis, and power/coverage/bias/rmse with ``*_mcse``."""
        return self.table.copy()

    def summary(self) -> str:
        """One line per cell and analysis: power and coverage with MC standard errors."""
        lines = [f"Simulation: {self.n_reps} replications per cell, seed {self.seed}, "
                 f"level {self.level:g}"]
        for row in self.table.itertuples(index=False):
            lines.append(
                f"  k={row.k} n={row.n:g} m={row.m} effect={row.effect:g} tau={row.tau:g} "
                f"{row.analysis}: power {fmt_num(row.power, 3)} ({fmt_num(row.power_mcse, 3)}), "
                f"coverage {fmt_num(row.coverage, 3)} ({fmt_num(row.coverage_mcse, 3)})"
            )
        return "\n".join(lines)


def simulate(
    design: Mapping[str, Any],
    analysis: str | Sequence[str] = ("reml_knha",),
    n_reps: int = 1000,
    seed: int = 0,
    *,
    level: float = 0.95,
    chunk_reps: int = 2000,
    client: Any = None,
    workers: int | None = 1,
    progress: bool | None = None,
) -> SimulationResult:
    """Simulate ``n_reps`` meta-analyses per design cell and measure each ``analysis``.

    Parameters
    ----------
    design : factors of the data-generating model (module docstring), each a value
        or a list of values; the grid is their Cartesian product.  Missing factors
        take :data:`DESIGN_DEFAULTS`.  ``effect`` μ, ``k`` studies, ``n`` participants
        per study, ``tau`` τ, ``m`` effects per study, ``omega`` ω, ``rho`` ρ,
        ``sampling`` ``"smd"`` or ``"normal"``.
    analysis : one or more of :data:`ANALYSES`.
    n_reps, seed : replications per cell and the seed of every draw.
    level : confidence level of tests and intervals.
    chunk_reps : replications per chunk (memory stays flat; part of the seed key).
    client, workers : where chunks run (:func:`metaally.diagnostics.runner.run_chunks`):
        ``workers=1`` (default) in this process, ``None`` local processes, or a Dask
        ``client``/scheduler address; results are identical.
    progress : progress bar policy of :mod:`metaally.models.progress`.
    """
    analyses = (analysis,) if isinstance(analysis, str) else tuple(analysis)
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown or not analyses:
        raise ValueError(f"analysis must be among {', '.join(ANALYSES)}; got {analysis!r}")
    _, _, level = check_options("REML", "z", level)
    n_reps, chunk_reps = int(n_reps), int(chunk_reps)
    if n_reps < 2:
        raise ValueError(f"n_reps must be at least 2; got {n_reps}")
    if chunk_reps < 1:
        raise ValueError(f"chunk_reps must be positive; got {chunk_reps}")
    cells = _grid(design)
    tasks = []
    for c, cell in enumerate(cells):
        for j, start in enumerate(range(0, n_reps, chunk_reps)):
            tasks.append((cell, analyses, min(chunk_reps, n_reps - start), level, seed, c, j))
    sums = run_chunks(_run_chunk, tasks, [t[2] for t in tasks], client=client, workers=workers,
                      progress=progress, desc="simulation", unit="replications")
    rows = []
    for c, cell in enumerate(cells):
        total = sum(s for t, s in zip(tasks, sums, strict=True) if t[5] == c)
        for a, name in enumerate(analyses):
            rows.append({**cell, "analysis": name, **_measures(total[a])})
    return SimulationResult(table=pd.DataFrame(rows), n_reps=n_reps, seed=int(seed), level=level)


def _grid(design: Mapping[str, Any]) -> list[dict[str, Any]]:
    unknown = sorted(set(design) - set(DESIGN_DEFAULTS))
    if unknown:
        raise ValueError(f"design has unknown factors {unknown}; known: {sorted(DESIGN_DEFAULTS)}")
    factors = {**DESIGN_DEFAULTS, **design}
    values = {key: (list(val) if isinstance(val, list | tuple | np.ndarray) else [val])
              for key, val in factors.items()}
    cells = [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]
    for cell in cells:
        _check_cell(cell)
    return cells


def _check_cell(cell: dict[str, Any]) -> None:
    if int(cell["k"]) != cell["k"] or cell["k"] < 1:
        raise ValueError(f"design factor k must be a whole number >= 1; got {cell['k']!r}")
    if int(cell["m"]) != cell["m"] or cell["m"] < 1:
        raise ValueError(f"design factor m must be a whole number >= 1; got {cell['m']!r}")
    if not np.isfinite(cell["n"]) or cell["n"] < 4:
        raise ValueError(f"design factor n must be >= 4 (two arms of 2); got {cell['n']!r}")
    for key in ("tau", "omega"):
        if not np.isfinite(cell[key]) or cell[key] < 0:
            raise ValueError(f"design factor {key} must be a finite number >= 0")
    if not np.isfinite(cell["effect"]):
        raise ValueError("design factor effect must be finite")
    if not 0 <= cell["rho"] < 1:
        raise ValueError(f"design factor rho must be in [0, 1); got {cell['rho']!r}")
    if cell["sampling"] not in ("smd", "normal"):
        raise ValueError("design factor sampling must be 'smd' or 'normal'; "
                         f"got {cell['sampling']!r}")
    cell["k"], cell["m"] = int(cell["k"]), int(cell["m"])


def _draw(cell: dict[str, Any], reps: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(reps, k·m) effects and sampling variances of one chunk; study-major columns."""
    k, m, n = cell["k"], cell["m"], float(cell["n"])
    n1 = n2 = n / 2.0
    c = 1.0 / n1 + 1.0 / n2
    theta = (cell["effect"] + cell["tau"] * rng.standard_normal((reps, k, 1))
             + cell["omega"] * rng.standard_normal((reps, k, m)))
    z = rng.standard_normal((reps, k, m))
    if m > 1:  # compound symmetry: z_ij = √ρ·s_i + √(1−ρ)·e_ij
        rho = cell["rho"]
        shared = rng.standard_normal((reps, k, 1))
        z = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * z
    if cell["sampling"] == "normal":
        v = c + cell["effect"] ** 2 / (2.0 * n)
        y = theta + np.sqrt(v) * z
        vi = np.full(y.shape, v)
    else:
        nu = n - 2.0
        x = rng.chisquare(nu, size=(reps, k, m))
        d = np.sqrt(c) * (theta / np.sqrt(c) + z) / np.sqrt(x / nu)
        j = np.exp(special.gammaln(nu / 2) - special.gammaln((nu - 1) / 2)) / np.sqrt(nu / 2)
        y = j * d
        vi = c + y**2 / (2.0 * n)
    return y.reshape(reps, k * m), vi.reshape(reps, k * m)


def _run_chunk(task: tuple) -> np.ndarray:
    """Sufficient sums (one row per analysis, columns :data:`_SUMS`) of one chunk."""
    cell, analyses, reps, level, seed, c, j = task
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c, j)))
    y, v = _draw(cell, reps, rng)
    out = np.zeros((len(analyses), len(_SUMS)))
    for a, name in enumerate(analyses):
        est, low, high, p = _analyse(name, y, v, cell, level)
        out[a] = _sums(est, low, high, p, cell["effect"], level)
    return out


def _analyse(name: str, y: np.ndarray, v: np.ndarray, cell: dict[str, Any],
             level: float) -> tuple[np.ndarray, ...]:
    if name == "che_cr2":
        return _che_cr2(y, v, cell, level)
    method, test = {"fe": ("FE", "z"), "reml_z": ("REML", "z"), "reml_knha": ("REML", "knha")}[name]
    design = Design(np.ones((y.shape[1], 1)))
    fit = fit_arrays(y, v, design, method, test, level, warn=False)
    return fit.beta[:, 0], fit.ci_low[:, 0], fit.ci_high[:, 0], fit.pvalue[:, 0]


def _che_cr2(y: np.ndarray, v: np.ndarray, cell: dict[str, Any],
             level: float) -> tuple[np.ndarray, ...]:
    reps = y.shape[0]
    study = np.repeat(np.arange(cell["k"]), cell["m"])
    out = np.full((4, reps), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(reps):
            try:
                res = multilevel(y[r], v[r], study, rho=cell["rho"], level=level).robust()
            except (ValueError, np.linalg.LinAlgError):
                continue
            out[:, r] = res.estimate, res.ci_low, res.ci_high, res.pvalue
    return out[0], out[1], out[2], out[3]


def _sums(est: np.ndarray, low: np.ndarray, high: np.ndarray, p: np.ndarray,
          mu: float, level: float) -> np.ndarray:
    ok = np.isfinite(est) & np.isfinite(low) & np.isfinite(high) & np.isfinite(p)
    err = est[ok] - mu
    return np.array([
        ok.size, ok.size - ok.sum(), np.sum(p[ok] < 1.0 - level),
        np.sum((low[ok] <= mu) & (mu <= high[ok])), err.sum(), np.sum(err**2), np.sum(err**4),
        np.sum(high[ok] - low[ok]),
    ])


def _measures(s: np.ndarray) -> dict[str, float]:
    total = dict(zip(_SUMS, s, strict=True))
    r = total["reps"] - total["failed"]
    if r < 2:
        nan = float("nan")
        return {"reps": int(total["reps"]), "failed": int(total["failed"]), "power": nan,
                "power_mcse": nan, "coverage": nan, "coverage_mcse": nan, "bias": nan,
                "bias_mcse": nan, "rmse": nan, "rmse_mcse": nan, "ci_width": nan}
    power, cover = total["reject"] / r, total["cover"] / r
    bias = total["err"] / r
    mse = total["err2"] / r
    var_err = max(total["err2"] - r * bias**2, 0.0) / (r - 1)
    var_sq = max(total["err4"] - r * mse**2, 0.0) / (r - 1)
    rmse = np.sqrt(mse)
    return {
        "reps": int(total["reps"]), "failed": int(total["failed"]),
        "power": power, "power_mcse": np.sqrt(power * (1 - power) / r),
        "coverage": cover, "coverage_mcse": np.sqrt(cover * (1 - cover) / r),
        "bias": bias, "bias_mcse": np.sqrt(var_err / r),
        "rmse": rmse, "rmse_mcse": np.sqrt(var_sq / r) / (2 * rmse) if rmse > 0 else np.nan,
        "ci_width": total["width"] / r,
    }
