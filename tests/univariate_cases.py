"""Reference fits of tests/reference/univariate.json (metafor 3.8 ``rma.uni``), shared by the
example tests of each data set.  The JSON is written by tests/reference/univariate.R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import metaally as ma

REFERENCE = json.loads((Path(__file__).parent / "reference" / "univariate.json").read_text())

METHODS = {"FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML"}
TESTS = {"z", "knha", "adhoc"}
MODELS = {"intercept", "moderator"}
GRID = {(model, method, test) for model in MODELS for method in METHODS for test in TESTS}

RTOL = 1e-6
"""Agreement required on estimates, SEs, tau^2, Q, I^2, prediction bounds."""
RTOL_QPROFILE = 1e-4


def case_id(case: dict) -> str:
    return "-".join(str(case[key]) for key in ("dataset", "model", "method", "test") if key in case)


def fits(dataset: str) -> list[dict]:
    return [c for c in REFERENCE["fits"] if c["dataset"] == dataset]


def qprofiles(dataset: str) -> list[dict]:
    return [c for c in REFERENCE["qprofile"] if c["dataset"] == dataset]


def grid(dataset: str) -> set[tuple[str, str, str]]:
    return {(c["model"], c["method"], c["test"]) for c in fits(dataset)}


def fit(case: dict, **options) -> ma.RandomEffectsResult:
    """Our fit of a reference case (same data, model, method, test)."""
    data = REFERENCE["data"][case["dataset"]]
    mods = {
        "intercept": {},
        "moderator": {"mods": np.asarray(data["mod"], dtype=float)},
        "no_intercept": {"mods": np.asarray(data["mod"], dtype=float), "intercept": False},
        "fixed_tau2": {},
    }[case["model"]]
    return ma.random_effects(
        data["yi"], data["vi"], method=case["method"], test=case.get("test", "z"),
        **mods, **options,
    )


def scale(case: dict) -> float:
    """Absolute tolerance unit for tau^2-like quantities near 0 (variance scale of yi)."""
    return max(1.0, float(np.var(REFERENCE["data"][case["dataset"]]["yi"], ddof=1)))


def assert_close(ours, ref, what: str, rtol: float = RTOL, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(
        np.asarray(ours, dtype=float), np.asarray(ref, dtype=float), rtol=rtol, atol=atol,
        err_msg=what,
    )


def assert_fit_matches(case: dict, res: ma.RandomEffectsResult | None = None) -> None:
    """Every reported quantity of ``case`` agrees with our fit to RTOL."""
    res = fit(case) if res is None else res
    unit = scale(case)
    assert res.k == case["k"] and res.p == case["p"]
    coef = res.coef
    assert_close(coef["estimate"], case["beta"], "beta", atol=1e-9 * np.sqrt(unit))
    assert_close(coef["se"], case["se"], "se")
    assert_close(coef["stat"], case["stat"], "stat")
    assert_close(coef["pvalue"], case["pval"], "pvalue", atol=1e-12)
    assert_close(coef["ci_low"], case["ci_lb"], "ci_low", atol=1e-9 * np.sqrt(unit))
    assert_close(coef["ci_high"], case["ci_ub"], "ci_high", atol=1e-9 * np.sqrt(unit))
    assert_close(res.tau2, case["tau2"], "tau2", atol=1e-9 * unit)
    assert_close(res.i2, case["I2"], "I2", atol=1e-7)
    assert_close(res.h2, case["H2"], "H2")
    assert_close(res.q, case["QE"], "Q")
    assert_close(res.q_pvalue, case["QEp"], "Q p-value", atol=1e-12)
    assert_close(res.qm, case["QM"], "QM")
    assert_close(res.qm_pvalue, case["QMp"], "QM p-value", atol=1e-12)
    assert res.qm_df1 == case["QMdf"][0]
    assert_close(res.loglik, case["loglik"], "logLik")
    if case.get("dfs") is not None:
        assert res.df == case["dfs"] and res.qm_df2 == case["QMdf"][1]
    else:
        assert res.df == np.inf
    if "pi_lb" in case:
        assert_close(res.pi_low, case["pi_lb"], "pi_low", atol=1e-9 * np.sqrt(unit))
        assert_close(res.pi_high, case["pi_ub"], "pi_high", atol=1e-9 * np.sqrt(unit))
    elif case["model"] == "intercept":  # FE: metafor's predict() gives no PI; ours is the CI
        assert case["method"] == "FE"
        assert (res.pi_low, res.pi_high) == (res.ci_low, res.ci_high)
    else:
        assert np.isnan(res.pi_low) and np.isnan(res.pi_high)


def assert_qprofile_matches(case: dict) -> None:
    res = fit(case)
    low, high = res.tau2_ci()
    unit = scale(case)
    assert_close(low, case["tau2_lb"], "tau2 CI low", rtol=RTOL_QPROFILE, atol=1e-8 * unit)
    assert_close(high, case["tau2_ub"], "tau2 CI high", rtol=RTOL_QPROFILE, atol=1e-8 * unit)


class UnivariateExample:
    """The reference tests of one data set: a ``Test<Name>`` subclass in
    ``tests/test_example_<dataset>.py`` sets ``dataset`` (and cites the source in its module
    docstring); ``conftest.pytest_generate_tests`` parametrises ``fit_case``/``qprofile_case``
    with that data set's reference fits via ``reference_cases``."""

    dataset: str

    @classmethod
    def reference_cases(cls) -> dict[str, list[dict]]:
        return {"fit_case": fits(cls.dataset), "qprofile_case": qprofiles(cls.dataset)}

    case_id = staticmethod(case_id)

    def test_reference_grid_is_complete(self):
        assert grid(self.dataset) == GRID
        assert {(c["model"], c["method"]) for c in qprofiles(self.dataset)} == {
            (model, method) for model, method, _ in GRID if method != "FE"
        }

    def test_fit_matches_metafor(self, fit_case):
        assert_fit_matches(fit_case)

    def test_qprofile_ci_matches_metafor(self, qprofile_case):
        assert_qprofile_matches(qprofile_case)
