"""The benchmark cases: data, the timed metaally calls, their peers and checks.

Every case returns :class:`Row` objects: one per (metaally call, peer) pair, timed as
the best of a few runs (the machine is shared and noisy), with a correctness check
against the single-fit path, an independent computation, or metafor (where R ran).
Sizes come from :class:`Sizes` so that ``run.py --quick`` can shrink every case.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import metaally as ma


@dataclass(frozen=True)
class Row:
    """One line of results/benchmarks.md."""

    case: str
    size: str
    seconds: float
    peer: str = "—"
    peer_seconds: float = float("nan")
    target: str = "—"
    met: bool | None = None
    check: str = ""
    peak_mb: float = float("nan")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes: the issue's table (default) or a quick smoke-test set."""

    k_large: int = 10**6
    k_metafor: int = 1000
    che_clusters: int = 10_000
    che_clusters_metafor: int = 100
    batch: int = 100_000
    batch_metafor: int = 2000
    gosh_k: int = 20
    gosh_k_metafor: int = 15
    perm_k: int = 50
    n_perm: int = 10_000
    n_perm_metafor: int = 1000
    sim_reps: int = 1_000_000
    repeats: int = 3


QUICK = Sizes(k_large=10**4, k_metafor=200, che_clusters=500, che_clusters_metafor=30,
              batch=2000, batch_metafor=200, gosh_k=12, gosh_k_metafor=10, perm_k=20,
              n_perm=500, n_perm_metafor=200, sim_reps=20_000, repeats=1)


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Smallest wall time of ``repeats`` calls and the last call's result."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak memory (MB) allocated while ``fn`` runs, by tracemalloc (numpy arrays included);
    a separate, untimed run."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def best_times(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """``best_time`` for several calls, run in turn (round-robin) so that each sees the
    same machine load; a ratio between them is then fair on a noisy machine."""
    best = {name: np.inf for name in fns}
    result: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            result[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (best[name], result[name]) for name in fns}


def rel_diff(a: Any, b: Any, floor: float = 1e-12) -> float:
    """max |a − b| / max(|b|, floor), elementwise (``floor``: the scale of "near zero")."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


def checked(label: str, diff: float, tol: float) -> str:
    return f"{label}: {diff:.1e} {'ok' if diff <= tol else 'FAIL'}"


# ---- data ---------------------------------------------------------------------------

def univariate_data(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k effects with v ~ U(0.01, 0.1) and true τ² = 0.02 around 0.3."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.1, k)
    return rng.normal(0.3, np.sqrt(v + 0.02)), v


def biased_data(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``univariate_data`` after publication bias: an effect with z = yi/√vi ≤ 1 is published
    with probability 0.5.  Trim-and-fill then needs dozens of trim-and-refit rounds before k0
    stops changing (unbiased data stop after one)."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.1, 2 * k)
    y = rng.normal(0.3, np.sqrt(v + 0.02))
    published = (y / np.sqrt(v) > 1.0) | (rng.uniform(size=2 * k) < 0.5)
    return y[published][:k], v[published][:k]


def che_data(clusters: int, per: int, seed: int) -> dict[str, np.ndarray]:
    """Clusters of ``per`` effects from the CHE model (σ²_study 0.05, σ²_within 0.02, ρ 0.6)."""
    rng = np.random.default_rng(seed)
    study = np.repeat(np.arange(1, clusters + 1), per)
    es_id = np.tile(np.arange(1, per + 1), clusters)
    v = np.repeat(rng.uniform(0.02, 0.2, clusters), per)
    shared = np.repeat(rng.normal(0, 1, clusters), per)
    e = np.sqrt(v) * (np.sqrt(0.6) * shared + np.sqrt(0.4) * rng.normal(0, 1, study.size))
    y = (0.3 + np.repeat(rng.normal(0, np.sqrt(0.05), clusters), per)
         + rng.normal(0, np.sqrt(0.02), study.size) + e)
    return {"study": study, "es_id": es_id, "yi": y, "vi": v}


def batch_data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.2, (n, k))
    return rng.normal(0.2, np.sqrt(v + 0.05)), v


def moderator_data(k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=k)
    v = rng.uniform(0.02, 0.2, k)
    return 0.2 + 0.1 * x + rng.normal(0, np.sqrt(v + 0.05)), v, x


# The data sets metafor also fits (run.py writes them for benchmarks/metafor.R).
def rma_input(s: Sizes) -> tuple[np.ndarray, np.ndarray]:
    return univariate_data(s.k_metafor, seed=2)


def che_input(s: Sizes) -> dict[str, np.ndarray]:
    return che_data(s.che_clusters_metafor, 5, seed=4)


def refits_input(s: Sizes) -> tuple[np.ndarray, np.ndarray]:
    return batch_data(s.batch_metafor, 10, seed=7)


def gosh_input(s: Sizes) -> tuple[np.ndarray, np.ndarray]:
    return univariate_data(s.gosh_k_metafor, seed=10)


def permutest_input(s: Sizes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return moderator_data(s.perm_k, seed=11)


def selmodel_input(s: Sizes) -> tuple[np.ndarray, np.ndarray]:
    return univariate_data(s.k_metafor, seed=14)


def metafor_data(s: Sizes) -> dict[str, pd.DataFrame]:
    """The inputs of benchmarks/metafor.R, one CSV each."""
    y, v = rma_input(s)
    sy, sv = selmodel_input(s)
    Y, V = refits_input(s)
    gy, gv = gosh_input(s)
    py, pv, px = permutest_input(s)
    return {
        "rma": pd.DataFrame({"yi": y, "vi": v}),
        "che": pd.DataFrame(che_input(s)),
        "refits_y": pd.DataFrame(Y),
        "refits_v": pd.DataFrame(V),
        "gosh": pd.DataFrame({"yi": gy, "vi": gv}),
        "permutest": pd.DataFrame({"yi": py, "vi": pv, "x": px}),
        "selmodel": pd.DataFrame({"yi": sy, "vi": sv}),
    }


# ---- cases --------------------------------------------------------------------------

def univariate(s: Sizes, r: dict | None) -> list[Row]:
    from statsmodels.stats.meta_analysis import combine_effects

    y, v = univariate_data(s.k_large, seed=1)
    size = f"k = {s.k_large:,}"
    timed = best_times({
        "reml": lambda: ma.random_effects(y, v, method="REML"),
        "pm": lambda: ma.random_effects(y, v, method="PM"),
        "dl": lambda: ma.random_effects(y, v, method="DL"),
        "sm_pm": lambda: combine_effects(y, v, method_re="iterated"),
        "sm_dl": lambda: combine_effects(y, v, method_re="chi2"),
    }, 3 * s.repeats)   # fast calls: more repeats against the noise
    (t_reml, reml), (t_pm, pm), (t_dl, dl) = timed["reml"], timed["pm"], timed["dl"]
    (t_sm_pm, sm_pm), (t_sm_dl, sm_dl) = timed["sm_pm"], timed["sm_dl"]
    rows = [
        Row("random_effects REML", size, t_reml, "statsmodels combine_effects PM", t_sm_pm,
            "no slower than statsmodels PM", t_reml <= t_sm_pm,
            checked("PM τ², μ vs statsmodels PM (metaally PM fit)",
                    max(rel_diff(pm.tau2, sm_pm.tau2), rel_diff(pm.estimate, sm_pm.mean_effect_re)),
                    1e-6),
            peak_mb=peak_mb(lambda: ma.random_effects(y, v, method="REML"))),
        Row("random_effects PM", size, t_pm, "statsmodels combine_effects PM", t_sm_pm,
            check="its τ², μ: see the row above"),
        Row("random_effects DL", size, t_dl, "statsmodels combine_effects DL", t_sm_dl,
            check=checked("τ², μ vs statsmodels DL",
                          max(rel_diff(dl.tau2, sm_dl.tau2),
                              rel_diff(dl.estimate, sm_dl.mean_effect_re)), 1e-9)),
    ]
    pymare = _pymare_reml(y, v, s.repeats)
    if pymare is not None:
        t_pymare, (tau2, mu) = pymare
        rows.append(Row("random_effects REML", size, t_reml, "PyMARE REML", t_pymare,
                        check=checked("τ², μ vs PyMARE (numerical optimiser)",
                                      max(rel_diff(reml.tau2, tau2), rel_diff(reml.estimate, mu)),
                                      1e-3)))
    else:
        rows.append(Row("random_effects REML", size, t_reml, "PyMARE (not installed)"))
    ym, vm = rma_input(s)
    t_small, small = best_time(lambda: ma.random_effects(ym, vm, method="REML"), s.repeats)
    rows.append(_vs_metafor(
        "random_effects REML", f"k = {s.k_metafor:,}", t_small, "metafor rma REML", r, "rma",
        lambda ref: checked("τ², μ, se vs metafor (its τ² stops at a 1e-5 step)",
                            max(rel_diff(small.tau2, ref["tau2"]),
                                rel_diff(small.estimate, ref["estimate"]),
                                rel_diff(small.se, ref["se"])), 1e-4)))
    return rows


def _pymare_reml(y: np.ndarray, v: np.ndarray, repeats: int) -> tuple[float, tuple] | None:
    try:
        from pymare import Dataset
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:
        return None

    def fit() -> tuple[float, float]:
        est = VarianceBasedLikelihoodEstimator(method="REML").fit_dataset(Dataset(y=y, v=v))
        summary = est.summary()
        return float(np.ravel(summary.tau2)[0]), float(np.ravel(summary.get_fe_stats()["est"])[0])

    return best_time(fit, repeats)


def multilevel(s: Sizes, r: dict | None) -> list[Row]:
    d = che_data(s.che_clusters, 5, seed=3)

    def fit() -> tuple[Any, Any]:
        model = ma.multilevel(d["yi"], d["vi"], d["study"], d["es_id"], rho=0.6)
        return model, model.robust("CR2")

    t, (model, _) = best_time(fit, s.repeats)
    rows = [Row("multilevel + robust CHE/CR2", f"{s.che_clusters:,} clusters × 5", t,
                target="≤ 2 s", met=t <= 2.0, peak_mb=peak_mb(fit),
                check=checked("μ vs dense per-cluster GLS at the fitted σ²",
                              rel_diff(model.estimate, _che_gls(d, model)), 1e-8))]
    small = che_input(s)
    t_small, (_, rob_small) = best_time(
        lambda: (lambda m: (m, m.robust("CR2")))(
            ma.multilevel(small["yi"], small["vi"], small["study"], small["es_id"], rho=0.6)),
        s.repeats)
    rows.append(_vs_metafor(
        "multilevel + robust CHE/CR2", f"{s.che_clusters_metafor:,} clusters × 5", t_small,
        "metafor rma.mv + clubSandwich", r, "che",
        lambda ref: checked("μ, CR2 se, df vs metafor + clubSandwich",
                            max(rel_diff(rob_small.estimate, ref["estimate"]),
                                rel_diff(rob_small.se, ref["se"]),
                                rel_diff(rob_small.df, ref["df"])), 1e-4)))
    return rows


def _che_gls(d: dict[str, np.ndarray], model: Any) -> float:
    """μ̂ = Σ 1'Σ_j⁻¹y_j / Σ 1'Σ_j⁻¹1 with Σ_j formed and inverted densely, cluster by cluster."""
    per = 5
    v = d["vi"].reshape(-1, per)
    y = d["yi"].reshape(-1, per)
    sd = np.sqrt(v)
    sigma = 0.6 * sd[:, :, None] * sd[:, None, :]
    idx = np.arange(per)
    sigma[:, idx, idx] = v
    sigma += model.sigma2_study + model.sigma2_within * np.eye(per)
    inv = np.linalg.inv(sigma)
    return float(np.einsum("cij,cj->", inv, y) / inv.sum())


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` without the engine's per-call fallback warning (the
    ``fallback`` column / attribute records it; the check below counts them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def batch(s: Sizes, r: dict | None) -> list[Row]:
    Y, V = batch_data(s.batch, 10, seed=5)

    def fit(Yb: np.ndarray, Vb: np.ndarray) -> pd.DataFrame:
        return _quiet(ma.random_effects_batch, Yb, Vb, method="REML", test="knha")

    t, frame = best_time(lambda: fit(Y, V), s.repeats)
    fallback = np.flatnonzero(frame["fallback"].to_numpy())
    rng = np.random.default_rng(6)
    rows_checked = np.concatenate([rng.choice(s.batch, 10, replace=False),
                                   rng.choice(fallback, min(10, fallback.size), replace=False)])
    singles = [_quiet(ma.random_effects, Y[i], V[i], method="REML", test="knha")
               for i in rows_checked]
    diff = max(rel_diff(frame.loc[rows_checked, col].to_numpy(), [getattr(f, col) for f in singles])
               for col in ("estimate", "se", "tau2"))
    rows = [Row("random_effects_batch REML + knha", f"{s.batch:,} data sets × k = 10", t,
                target="≤ 2 s", met=t <= 2.0, peak_mb=peak_mb(lambda: fit(Y, V)),
                check=checked(f"μ, se, τ² of {rows_checked.size} rows ({rows_checked.size - 10} "
                              f"of the {fallback.size} fitted by the bracketing fallback) vs "
                              "random_effects", diff, 1e-9))]
    Ym, Vm = refits_input(s)
    t_small, small = best_time(lambda: fit(Ym, Vm), s.repeats)

    def against(ref: dict) -> str:
        est, se = (np.asarray(ref[name], dtype=float) for name in ("estimate", "se"))
        fitted = ~np.isnan(est)   # NA: metafor's Fisher scoring did not converge
        diff = max(rel_diff(small["estimate"][fitted], est[fitted]),
                   rel_diff(small["se"][fitted], se[fitted]))
        return checked(f"μ, se vs metafor iterated to convergence ({fitted.sum()} fits; "
                       f"{(~fitted).sum()} did not converge)", diff, 1e-6)

    rows.append(_vs_metafor(
        "random_effects_batch REML + knha", f"{s.batch_metafor:,} data sets × k = 10", t_small,
        "metafor rma() in a loop", r, "refits", against))
    return rows


def gosh(s: Sizes, r: dict | None) -> list[Row]:
    y, v = univariate_data(s.gosh_k, seed=8)
    n_all = 2**s.gosh_k - 1
    rows = []
    for method, target, limit in (("FE", "≤ 3 s", 3.0), ("REML", "≤ 60 s", 60.0)):
        repeats = s.repeats if method == "FE" else 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t, res = best_time(lambda m=method: ma.gosh(y, v, method=m, subsets=n_all), repeats)
            peak = peak_mb(lambda m=method: ma.gosh(y, v, method=m, subsets=n_all))
        rng = np.random.default_rng(9)
        picked = rng.choice(np.flatnonzero(res.size >= 2), 20, replace=False)
        singles = [ma.random_effects(y[res.incl[i]], v[res.incl[i]], method=method) for i in picked]
        diff = max(rel_diff(res.estimate[picked], [f.estimate for f in singles]),
                   rel_diff(res.i2[picked], [f.i2 for f in singles], floor=1.0))
        rows.append(Row(f"gosh {method}", f"k = {s.gosh_k}, all {n_all:,} subsets", t,
                        target=target, met=t <= limit, peak_mb=peak,
                        check=checked("μ, I² of 20 subsets vs random_effects", diff, 1e-9)))
    ys, vs = gosh_input(s)
    t_small, small = best_time(lambda: ma.gosh(ys, vs, method="FE"), s.repeats)

    def against(ref: dict) -> str:
        codes = (small.incl * 2.0 ** np.arange(small.k)).sum(axis=1)
        if not np.array_equal(codes, np.asarray(ref["code"], dtype=float)):
            return "subset order vs metafor: FAIL"
        return checked("subset order; μ, I² of every subset vs metafor",
                       max(rel_diff(small.estimate, ref["estimate"]),
                           rel_diff(small.i2, ref["I2"], floor=1.0)), 1e-9)

    rows.append(_vs_metafor("gosh FE", f"k = {s.gosh_k_metafor}, all {2**s.gosh_k_metafor - 1:,}",
                            t_small, "metafor gosh()", r, "gosh", against))
    return rows


def permutation(s: Sizes, r: dict | None) -> list[Row]:
    y, v, x = permutest_input(s)
    model = ma.random_effects(y, v, mods=x, method="REML")
    t, res = best_time(lambda: ma.permutation_test(model, n_perm=s.n_perm, seed=12), s.repeats)
    first = max(rel_diff(res.stat_perm[0], model.coef["stat"]), rel_diff(res.qm_perm[0], model.qm))
    rows = [Row("permutation_test REML, 1 moderator", f"k = {s.perm_k}, {s.n_perm:,} permutations",
                t, target="≤ 2 s", met=t <= 2.0,
                peak_mb=peak_mb(lambda: ma.permutation_test(model, n_perm=s.n_perm, seed=12)),
                check=checked("observed arrangement refit vs random_effects", first, 1e-9))]
    t_small, small = best_time(
        lambda: ma.permutation_test(model, n_perm=s.n_perm_metafor, seed=13), s.repeats)

    def against(ref: dict) -> str:
        # random permutations differ between R and numpy: the observed statistics must
        # agree, the permutation p-values only within binomial error
        stats = max(rel_diff(model.coef["stat"], ref["stat"]), rel_diff(model.qm, ref["qm"]))
        p_ours, p_ref = float(small.coef["pvalue_perm"].iloc[1]), float(ref["pvalue_perm"][1])
        p = max((p_ours + p_ref) / 2, 3 / ref["iter"])
        close = abs(p_ours - p_ref) <= 5 * np.sqrt(2 * p * (1 - p) / ref["iter"])
        return (checked("observed z, QM vs metafor", stats, 1e-4)
                + f"; slope p {p_ours:.4f} vs {p_ref:.4f} {'ok' if close else 'FAIL'} (5 SE)")

    rows.append(_vs_metafor("permutation_test REML, 1 moderator",
                            f"k = {s.perm_k}, {s.n_perm_metafor:,} permutations", t_small,
                            "metafor permutest()", r, "permutest", against))
    return rows


def bayes(s: Sizes, r: dict | None) -> list[Row]:
    """One component's Bayesian fit (k = 4 studies; and the CHE model with
    4 studies x 4 effects), posterior median, CrI, P(mu > 0) and the Bayes factors, checked
    against an independent scipy.integrate.quad of the posterior mean of mu."""
    from scipy import integrate, stats

    y, v = univariate_data(4, seed=14)
    d = che_data(4, 4, seed=15)
    prior = stats.norm(0, 1)
    timed = best_times({
        "uni": lambda: ma.bayes_random_effects(y, v, mu_prior=prior),
        "che": lambda: ma.bayes_multilevel(d["yi"], d["vi"], d["study"], mu_prior=prior),
    }, 5 * s.repeats)
    (t_uni, uni), (t_che, che) = timed["uni"], timed["che"]
    tau_prior = ma.SMD_TAU_PRIOR

    def cond(t: float) -> tuple[float, float]:
        w = 1 / (v + t**2)
        prec = w.sum() + 1.0
        mean = w @ y / prec
        lik = stats.multivariate_normal(np.zeros(y.size), np.diag(v + t**2) + 1.0).pdf(y)
        return mean, lik * tau_prior.pdf(t)

    norm = integrate.quad(lambda t: cond(t)[1], 0, np.inf, epsrel=1e-12, epsabs=0)[0]
    mean = integrate.quad(lambda t: cond(t)[0] * cond(t)[1], 0, np.inf, epsrel=1e-12,
                          epsabs=0)[0] / norm
    return [
        Row("bayes_random_effects (N(0,1), half-normal(0.5))", "k = 4", t_uni,
            target="≤ 0.05 s", met=t_uni <= 0.05,
            check=checked("posterior mean of μ vs scipy quad", rel_diff(uni.mu.mean, mean),
                          1e-8)),
        Row("bayes_multilevel (CHE, 2-D quadrature)", "4 studies × 4 effects", t_che,
            target="≤ 0.05 s", met=t_che <= 0.05,
            check=f"P(μ > 0) = {che.prob_greater(0):.4f}, BF(μ ≠ 0) = {che.bf_effect:.3g}"),
    ]
def selection(s: Sizes, r: dict | None) -> list[Row]:
    """3PSM (selection_model, stepfun steps 0.025) on k = k_metafor effects vs metafor's
    selmodel with its default settings (optim BFGS, numDeriv Hessian)."""
    y, v = selmodel_input(s)
    model = ma.random_effects(y, v, method="ML")
    t, sel = best_time(lambda: ma.selection_model(model), s.repeats)
    row = _vs_metafor(
        "selection_model 3PSM", f"k = {s.k_metafor:,}", t, "metafor selmodel stepfun", r,
        "selmodel",
        lambda ref: checked("μ, τ², δ₂, se vs metafor (its default tolerances)",
                            max(rel_diff(sel.estimate, ref["estimate"]),
                                rel_diff(sel.tau2, ref["tau2"]),
                                rel_diff(sel.delta[1], ref["delta"]),
                                rel_diff(sel.se, ref["se"])), 1e-3),
    )
    return [dataclasses.replace(row, target="≤ 0.5 s", met=t <= 0.5)]


def import_time(s: Sizes) -> list[Row]:
    """``import metaally`` in fresh interpreters (best of a few), and the same followed by
    the first use of ``random_effects`` (which loads numpy, scipy and pandas)."""
    def fresh(statement: str) -> tuple[float, bool]:
        code = ("import sys, time; t = time.perf_counter(); " + statement
                + "; print(time.perf_counter() - t, 'matplotlib' in sys.modules)")
        times, heavy = [], False
        for _ in range(max(3, s.repeats)):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.split()
            times.append(float(out[0]))
            heavy |= out[1] == "True"
        return min(times), heavy

    t, heavy = fresh("import metaally")
    t_first, heavy_first = fresh("import metaally; metaally.random_effects")
    plots = "FAIL: matplotlib imported" if heavy or heavy_first else "matplotlib not imported"
    return [Row("import metaally", "fresh interpreter", t, target="≤ 0.5 s", met=t <= 0.5,
                check=plots),
            Row("import metaally + first use of random_effects", "fresh interpreter", t_first,
                check=plots)]


def _vs_metafor(
    case: str, size: str, seconds: float, peer: str, r: dict | None, key: str,
    check: Callable[[dict], str],
) -> Row:
    """A row timed against metafor's run of the same data (``r[key]``), if R ran."""
    if r is None or key not in r:
        return Row(case, size, seconds, f"{peer} (R not run)")
    return Row(case, size, seconds, peer, float(r[key]["seconds"]), check=check(r[key]))


def simulation(s: Sizes, r: dict | None) -> list[Row]:
    """simulate(): REML + knha meta-analyses of k = 10 per second on one core, and the same
    grid on a 2-worker Dask LocalCluster (identical results required)."""
    design = {"effect": 0.3, "k": 10, "n": 60, "tau": [0.0, 0.2], "sampling": "smd"}
    reps = s.sim_reps // 2   # two cells

    def run(**kwargs: Any) -> pd.DataFrame:
        return _quiet(ma.simulate, design, "reml_knha", n_reps=reps, seed=17,
                      chunk_reps=50_000, **kwargs).to_frame()

    t, here = best_time(lambda: run(workers=1), s.repeats)
    per_core = s.sim_reps / t
    Y, V = batch_data(s.sim_reps // 10, 10, seed=18)
    t_engine, _ = best_time(lambda: _quiet(ma.random_effects_batch, Y, V, method="REML",
                                           test="knha"), s.repeats)
    rows = [Row("simulate REML + knha, 1 process", f"{s.sim_reps:,} meta-analyses × k = 10", t,
                peer="random_effects_batch on 1/10 of the data sets, × 10",
                peer_seconds=10 * t_engine, target="≥ 10^5 per s per core",
                met=per_core >= 1e5, peak_mb=peak_mb(lambda: run(workers=1)),
                check=f"{per_core:,.0f} meta-analyses per second")]
    try:
        import distributed
    except ImportError:
        return rows
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        run(client=client)  # warm the workers (imports)
        t_dask, remote = best_time(lambda: run(client=client), s.repeats)
    same = here.equals(remote)
    rows.append(Row("simulate REML + knha, Dask LocalCluster (2 workers)",
                    f"{s.sim_reps:,} meta-analyses × k = 10", t_dask, peer="1 process",
                    peer_seconds=t, check="identical to the in-process results: "
                    + ("ok" if same else "FAIL")))
    return rows
# ---- scale and streaming -------------------------------------------------------------------

def scale(s: Sizes, r: dict | None) -> list[Row]:
    """CHE + CR2 and trim-and-fill at k = 10⁶ effect sizes (targets ≤ 3 s each)."""
    d = che_data(s.k_large // 5, 5, seed=14)

    def che() -> Any:
        return ma.multilevel(d["yi"], d["vi"], d["study"], d["es_id"], rho=0.6).robust("CR2")

    t_che, robust = best_time(che, 1)
    model = robust.model
    rows = [Row("multilevel + robust CHE/CR2", f"k = {s.k_large:,} ({s.k_large // 5:,} "
                "clusters × 5)", t_che, target="≤ 3 s", met=t_che <= 3.0, peak_mb=peak_mb(che),
                check=checked("μ vs dense per-cluster GLS at the fitted σ²",
                              rel_diff(model.estimate, _che_gls(d, model)), 1e-8))]
    y, v = biased_data(s.k_large, seed=15)
    t_tf, tf = best_time(lambda: ma.trim_and_fill(y, v), 1)
    refit = ma.random_effects(tf.yi_all, tf.vi_all)
    rows.append(Row("trim_and_fill L0 REML", f"k = {s.k_large:,} (publication-biased)", t_tf,
                    target="≤ 3 s",
                    met=t_tf <= 3.0, peak_mb=peak_mb(lambda: ma.trim_and_fill(y, v)),
                    check=checked(f"filled estimate (k0 = {tf.k0:,}) vs random_effects on the "
                                  "filled data", rel_diff(tf.estimate, refit.estimate), 1e-12)))
    return rows


# Peak memory of the reading itself: the kernel's high-water mark of this process's resident
# set (VmHWM), reset after the imports (clear_refs 5).  Not getrusage's ru_maxrss: Linux
# carries it over exec from the parent, so a child of a large benchmark process starts at
# the parent's peak and the growth read as 0.  Without /proc (not Linux): NaN.
_STUDIES_RUN = """
import os, sys, time
import pandas as pd
from metaally.data.reading import load_studies, validate_file

def resident(field):
    if not os.path.exists("/proc/self/status"):
        return float("nan")
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field)) / 1024

what, path = sys.argv[1], sys.argv[2]
if os.path.exists("/proc/self/clear_refs"):
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
base = resident("VmRSS:")
t = time.perf_counter()
if what == "validate":
    n = len(validate_file(path))
elif what == "load":
    n = len(load_studies(path))
else:
    n = len(pd.read_csv(path))
t = time.perf_counter() - t
print(t, resident("VmHWM:") - base, n)
"""


def studies_io(s: Sizes, r: dict | None) -> list[Row]:
    """validate_file and load_studies on a k_large-row studies CSV against pandas.read_csv,
    each in a fresh interpreter; memory is the growth of its peak resident set while it reads
    (Linux /proc: VmHWM after the read minus VmRSS before it)."""
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    header, *body = (root / "data" / "table2.csv").read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "studies.csv"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(header + "\n")
            for i in range(s.k_large):  # table2's rows, one copy of its studies per block
                sid, rest = body[i % len(body)].split(",", 1)
                fh.write(f"{sid}_{i // len(body)},{rest}\n")

        def run(what: str) -> tuple[float, float, int]:
            out = subprocess.run([sys.executable, "-c", _STUDIES_RUN, what, str(path)],
                                 capture_output=True, text=True, check=True).stdout.split()
            return float(out[0]), float(out[1]), int(out[2])

        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(s.repeats):  # round-robin, as best_times
            for what in ("pandas", "validate", "load"):
                got = run(what)
                if what not in best or got[0] < best[what][0]:
                    best[what] = got
    t_pd, _, n_pd = best["pandas"]
    size = f"{s.k_large:,} rows × {header.count(',') + 1} columns"
    t_val, mb_val, problems = best["validate"]
    t_load, mb_load, n_load = best["load"]
    return [
        Row("validate_file (streaming)", size, t_val, "pandas.read_csv", t_pd,
            "≥ pandas throughput, ≤ 300 MB", t_val <= t_pd and mb_val <= 300, peak_mb=mb_val,
            check=f"{problems} problems (expected 0): {'ok' if problems == 0 else 'FAIL'}"),
        Row("load_studies (streaming)", size, t_load, "pandas.read_csv", t_pd,
            "≥ pandas throughput", t_load <= t_pd, peak_mb=mb_load,
            check=f"{n_load:,} rows vs pandas {n_pd:,}: {'ok' if n_load == n_pd else 'FAIL'}"),
    ]
