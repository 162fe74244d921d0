"""Eight schools (bayesmeta's Rubin1981) against bayesmeta's published output.

Reference: tests/reference/rubin1981_bayesmeta.json, the printed results of the bayesmeta
3.4 vignette (Röver; Röver 2020, J Stat Softw 93(6)): example 1 with a half-Cauchy(25)
prior on tau and N(0, 50^2) on mu, example 2 with uniform priors on both.  bayesmeta mixes
the conditionals of mu over its DIRECT grid (Röver & Friede 2017), so its summaries of mu
carry that approximation (up to ~1e-3 relative); ``integration="direct"`` reproduces them.
The summaries of tau come from exact integration in bayesmeta too, so the default quadrature
must match them as well.  Printed values have 7 significant digits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import metaally as ma

REF = json.loads((Path(__file__).parent / "reference" / "rubin1981_bayesmeta.json").read_text())
DATA = REF["data"]
Y = np.array(DATA["effect"])
V = np.array(DATA["stderr"]) ** 2
RTOL = 1e-5  # the issue asks for 1e-4; the printed digits allow ~1e-7
#: uniform(0, 2000) stands in for bayesmeta's improper uniform prior on tau: with a flat mu
#: prior the posterior of tau decays like tau^-(k-1) = tau^-7, so the mass beyond 2000 is
#: about (10 / 2000)^6 ~ 1e-14 of the total.
PRIORS = {
    "example1": {"mu_prior": stats.norm(0, 50), "tau_prior": stats.halfcauchy(scale=25)},
    "example2": {"mu_prior": None, "tau_prior": stats.uniform(0, 2000)},
}


def fit(example: str, integration: str = "direct") -> ma.BayesResult:
    return ma.bayes_random_effects(Y, V, slab=DATA["school"], integration=integration,
                                   **PRIORS[example])


CELLS = [(ex, row, col) for ex in ("example1", "example2")
         for row, cols in REF[ex]["summary"].items() for col in cols]


def test_reference_grid_is_complete() -> None:
    assert len(CELLS) == 30
    assert {row for _, row, _ in CELLS} == {"tau", "mu", "theta_new"}


@pytest.mark.parametrize(("example", "row", "column"), CELLS,
                         ids=[f"{e}-{r}-{c}" for e, r, c in CELLS])
def test_summary_matches_bayesmeta(example: str, row: str, column: str) -> None:
    expected = REF[example]["summary"][row][column]
    got = fit(example).table.loc[row, column]
    assert got == pytest.approx(expected, rel=RTOL, abs=1e-6)


@pytest.mark.parametrize("example", ["example1", "example2"])
def test_tau_summaries_exact_under_quadrature(example: str) -> None:
    """tau's summaries do not depend on the DIRECT grid: the quadrature gives them too."""
    table = fit(example, "quadrature").table
    for column, expected in REF[example]["summary"]["tau"].items():
        assert table.loc["tau", column] == pytest.approx(expected, rel=RTOL, abs=1e-6)


def test_probabilities_and_quantiles() -> None:
    res = fit("example1")
    ex = REF["example1"]
    assert res.prob_greater(0.0) == pytest.approx(ex["prob_mu_greater_0"], rel=RTOL)
    assert res.mu.quantile(0.95) == pytest.approx(ex["mu_quantile_0.95"], rel=RTOL)
    assert res.posterior.tau_ppf(0, 0.95) == pytest.approx(ex["tau_quantile_0.95"], rel=RTOL)
    central = [res.table.loc["tau", "ci_low"], res.table.loc["tau", "ci_high"]]
    assert central == pytest.approx(ex["tau_central"], rel=RTOL)


@pytest.mark.parametrize("school", ["A", "G", "H"])
def test_shrinkage_matches_bayesmeta(school: str) -> None:
    rows = fit("example1").shrinkage().set_index("study")
    for column, expected in REF["example1"]["shrinkage"][school].items():
        assert rows.loc[school, column] == pytest.approx(expected, rel=RTOL)


def test_quadrature_close_to_direct_but_not_equal() -> None:
    """The exact mixture and bayesmeta's DIRECT approximation agree to ~1e-3 of the sd."""
    exact, direct = fit("example1", "quadrature"), fit("example1", "direct")
    diff = (exact.table.loc["mu"] - direct.table.loc["mu"]).abs().max()
    assert 1e-6 < diff < 5e-3 * direct.table.loc["mu", "sd"]
