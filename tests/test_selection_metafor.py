"""selection_model against metafor 3.8's selmodel (tests/reference/selmodel.json, made by
tests/reference/selmodel.R with nlminb rel.tol ≤ 1e-10, integration rel.tol 1e-12, Richardson
Hessian r = 8, and cross-checked with a second optimizer).

Published examples are the data sets of metafor's ``help(selmodel)``: Hackshaw et al. (1998,
BMJ 315:980; metadat ``dat.hackshaw1998``), Cohen (1981, Rev Educ Res 51:281;
``dat.cohen1981``), Baskerville et al. (2012, Ann Fam Med 10:63; ``dat.baskerville2012``, with
the moderator ``blind``) and Hahn et al. (2001, BMJ 323:1444; ``dat.hahn2001``, equal-effects
model); the rest are generated (k = 60, two moderators, selected on p).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metaally as ma
from metaally.diagnostics.selection import TYPES

REFERENCE = json.loads((Path(__file__).parent / "reference" / "selmodel.json").read_text())
CASES = REFERENCE["cases"]
RTOL = 1e-4


def _fit(case: dict) -> ma.SelectionModelResult:
    mods = None if case["mods"] is None else np.asarray(case["mods"], dtype=float)
    res = ma.random_effects(case["yi"], case["vi"], method=case["method"], mods=mods)
    steps = case["steps"]
    return ma.selection_model(res, type=case["type"], alternative=case["alternative"],
                              steps=None if steps is None else steps)


BOUNDS = {"beta": (1e-5, 100.0)}


def _at_bound(case: dict) -> bool:
    """A δ of metafor's fit at its bound: the likelihood is flat there and the SEs undefined."""
    lo, hi = BOUNDS.get(case["type"], (0.0, 100.0))
    delta = np.atleast_1d(case["expected"]["delta"]).astype(float)
    return bool(np.any((delta - lo < 1e-4) | (hi - delta < 1e-4)))


def _close(actual: float, expected: float | None) -> bool:
    if expected is None:
        return bool(np.isnan(actual))
    return abs(actual - expected) <= RTOL * max(abs(expected), 1e-6)


def test_grid_is_complete():
    """Every type, with and without moderators, and the documented special cases."""
    with_mods = {c["type"] for c in CASES if c["mods"] is not None}
    without = {c["type"] for c in CASES if c["mods"] is None}
    assert with_mods == without == set(TYPES)
    assert {c["alternative"] for c in CASES} == {"greater", "less", "two.sided"}
    assert {c["method"] for c in CASES} == {"ML", "REML", "FE"}


CROSS_TOL = 1e-3


def _rel(a: object, b: object, floor: float = 1e-8) -> float:
    a = np.atleast_1d(np.asarray(a, dtype=float))
    b = np.atleast_1d(np.asarray(b, dtype=float))
    ok = ~np.isnan(a) & ~np.isnan(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), floor), initial=0.0))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_reference_is_converged(case):
    """A second R optimizer (nlm) lands on the same optimum as nlminb: every estimate and SE
    within CROSS_TOL (nlm stops earlier than nlminb: up to 4e-4 apart; metaally agrees with
    the nlminb values to 1e-5, see test_matches_metafor), or, where a δ is at its bound
    (flat likelihood), β, τ² and log L.  τ² is compared on the scale of the vi (τ² ≈ 0).
    Where nlm stops at a lower likelihood (a worse point, e.g. generated_beta_mods), the
    reference must be the higher one."""
    first, second = case["expected"], case["second_optimizer"]
    if second["beta"] is None:
        pytest.skip("the second optimizer failed in R; reference from nlminb only")
    assert first["loglik"] >= second["loglik"] - 1e-8 * abs(second["loglik"])
    if first["loglik"] - second["loglik"] > 1e-6:
        return
    names = ["beta", "tau2", "loglik"]
    if not _at_bound(case):
        names += ["delta", "lrt", "se", "se_tau2", "se_delta"]
    floors = {"tau2": 1e-6 * float(np.mean(case["vi"])), "se_tau2": 1e-6}
    for name in names:
        if first[name] is not None:
            assert _rel(second[name], first[name], floors.get(name, 1e-8)) < CROSS_TOL, name


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_metafor(case):
    exp = case["expected"]
    boundary = _at_bound(case)
    if boundary:
        with pytest.warns(RuntimeWarning, match="bound"):
            sel = _fit(case)
    else:
        sel = _fit(case)
    beta = np.atleast_1d(exp["beta"])
    assert sel.coef["estimate"].to_numpy() == pytest.approx(beta, rel=RTOL, abs=1e-6)
    assert _close(sel.tau2, exp["tau2"])
    delta = np.atleast_1d(exp["delta"]).astype(float)
    assert sel.delta == pytest.approx(delta, rel=RTOL, abs=1e-4 if boundary else 0)
    assert sel.lrt == pytest.approx(exp["lrt"], rel=RTOL, abs=1e-6)
    assert sel.loglik == pytest.approx(exp["loglik"], rel=1e-8)
    if boundary:   # metafor's SEs come from a Hessian across the bound; ours are NaN there
        lo, hi = BOUNDS.get(case["type"], (0.0, 100.0))
        assert np.all(np.isnan(sel.delta_se[(sel.delta - lo < 1e-4) | (hi - sel.delta < 1e-4)]))
        return
    se = np.atleast_1d(exp["se"])
    assert sel.coef["se"].to_numpy() == pytest.approx(se, rel=RTOL)
    if exp["tau2"] < 1e-6 * np.mean(case["vi"]):   # tau^2 at 0: no SE (metafor: one across 0)
        assert np.isnan(sel.tau2_se)
    elif case["method"] != "FE":
        assert _close(sel.tau2_se, exp["se_tau2"])
    se_delta = np.array([np.nan if d is None else d for d in np.atleast_1d(exp["se_delta"])],
                        dtype=float)
    assert sel.delta_se == pytest.approx(se_delta, rel=RTOL, nan_ok=True)
    assert sel.lrt_df == exp["lrt_df"]
    # the ML random-effects fit that selmodel starts from used rma's default threshold (1e-5)
    assert sel.loglik0 == pytest.approx(exp["loglik0"], rel=1e-6)
    if exp["lrt_tau2"] is not None:
        assert sel.lrt_tau2 == pytest.approx(exp["lrt_tau2"], rel=RTOL, abs=1e-6)
