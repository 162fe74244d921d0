"""Reference cases of tests/reference/multilevel.json (metafor 3.8 + clubSandwich), shared by
the example tests of each data set (the JSON is written by tests/reference/multilevel.R), and
the random clustered data of the CHE model and robust inference property tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

import metaally as ma

REFERENCE = json.loads((Path(__file__).parent / "reference" / "multilevel.json").read_text())

# (rho, with moderator, method) fitted for every data set
GRID = {
    (0.0, False, "REML"), (0.0, True, "REML"), (0.6, False, "REML"), (0.6, True, "REML"),
}
EXTRA_ML = {"konstantopoulos2011": (0.6, False, "ML"), "assink2016": (0.6, True, "ML")}


@st.composite
def clustered_effects(
    draw: st.DrawFn, min_studies: int, max_studies: int, max_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """yi, vi, study and the generator that drew them: ``min_studies``..``max_studies``
    studies of 1..``max_size`` effects, study and effect random effects plus sampling error."""
    sizes = draw(st.lists(st.integers(1, max_size), min_size=min_studies, max_size=max_studies))
    k = sum(sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    study = np.repeat(np.arange(len(sizes)), sizes)
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.2, 0.3, len(sizes))[study] + rng.normal(0.0, 0.2, k) + \
        rng.normal(0.0, np.sqrt(vi))
    return yi, vi, study, rng


def cases(dataset: str) -> list[dict]:
    return [c for c in REFERENCE["cases"] if c["dataset"] == dataset]


def grid(dataset: str) -> set[tuple[float, bool, str]]:
    return {(float(c["rho"]), bool(c["mods"]), c["method"]) for c in cases(dataset)}


def moderators(dataset: str) -> pd.DataFrame:
    """The moderator as R codes it: numeric as is, a factor as treatment dummies."""
    mod = pd.Series(REFERENCE["data"][dataset]["mod"], name="mod")
    if not pd.api.types.is_numeric_dtype(mod):
        return pd.get_dummies(mod, prefix="mod", prefix_sep="").astype(float).iloc[:, 1:]
    return mod.to_frame()


def fit(case: dict) -> ma.MultilevelResult:
    data = REFERENCE["data"][case["dataset"]]
    return ma.multilevel(
        data["yi"], data["vi"], data["cluster"], data["es_id"], rho=case["rho"],
        mods=moderators(case["dataset"]) if case["mods"] else None, method=case["method"],
    )


def assert_model_matches(case: dict) -> None:
    m = fit(case)
    rtol = 1e-5
    assert list(m.coef_names) == case["coef_names"]
    np.testing.assert_allclose(m.coef["estimate"], case["estimate"], rtol=rtol)
    np.testing.assert_allclose(m.coef["se"], case["se"], rtol=rtol)
    np.testing.assert_allclose(m.coef["stat"], case["stat"], rtol=rtol)
    np.testing.assert_allclose(m.coef["pvalue"], case["pvalue"], rtol=rtol)
    np.testing.assert_allclose(m.coef["ci_low"], case["ci_low"], rtol=rtol)
    np.testing.assert_allclose(m.coef["ci_high"], case["ci_high"], rtol=rtol)
    np.testing.assert_allclose(m.vcov, np.reshape(case["vcov"], m.vcov.shape), rtol=rtol)
    np.testing.assert_allclose(m.sigma2_study, case["sigma2_study"], rtol=rtol)
    np.testing.assert_allclose(m.sigma2_within, case["sigma2_within"], rtol=rtol)
    np.testing.assert_allclose(m.loglik, case["loglik"], rtol=1e-8)
    np.testing.assert_allclose(m.q, case["qe"], rtol=1e-8)
    np.testing.assert_allclose(m.q_pvalue, case["qe_pvalue"], rtol=1e-5, atol=1e-300)
    np.testing.assert_allclose(m.i2, case["i2"], rtol=rtol)
    assert (m.k, m.n_clusters) == (case["k"], case["n_clusters"])
    if case["mods"]:
        np.testing.assert_allclose(m.qm, case["qm"], rtol=rtol)
        np.testing.assert_allclose(m.qm_pvalue, case["qm_pvalue"], rtol=rtol)
        assert np.isnan(m.pi_low)
    else:
        assert m.estimate == m.coef["estimate"].iloc[0]
        np.testing.assert_allclose([m.pi_low, m.pi_high], [case["pi_low"], case["pi_high"]],
                                   rtol=rtol)


def assert_robust_matches(case: dict, adjust: str) -> None:
    m = fit(case)
    ref = case[adjust]
    rb = m.robust(adjust)
    rtol = 1e-4
    assert rb.adjust == adjust and rb.n_clusters == case["n_clusters"]
    np.testing.assert_allclose(rb.coef["estimate"], case["estimate"], rtol=1e-5)
    np.testing.assert_allclose(rb.vcov, np.reshape(ref["vcov"], rb.vcov.shape), rtol=rtol)
    for ours, theirs in [("se", "se"), ("df", "df"), ("stat", "stat"), ("pvalue", "pvalue"),
                         ("ci_low", "ci_low"), ("ci_high", "ci_high")]:
        np.testing.assert_allclose(rb.coef[ours], ref[theirs], rtol=rtol, err_msg=ours)
    assert (rb.se, rb.df) == (rb.coef["se"].iloc[0], rb.coef["df"].iloc[0])
    if case["mods"]:
        np.testing.assert_allclose([rb.qm, rb.qm_df2, rb.qm_pvalue],
                                   [ref["qm"], ref["qm_df2"], ref["qm_pvalue"]], rtol=rtol)
        assert rb.qm_df1 == ref["qm_df1"]
        C = np.reshape(ref["wald_constraints"], (-1, m.X.shape[1]))
        wald = rb.wald_test(C)
        np.testing.assert_allclose([wald.stat, wald.df2, wald.pvalue],
                                   [ref["wald"]["stat"], ref["wald"]["df2"],
                                    ref["wald"]["pvalue"]], rtol=rtol)
        assert (wald.df1, wald.test) == (ref["wald"]["df1"], "HTZ")
    else:
        # metafor's robust(..., clubSandwich = TRUE) and predict() on it
        np.testing.assert_allclose([rb.se, rb.df], [ref["metafor_se"], ref["metafor_df"]],
                                   rtol=rtol)
        np.testing.assert_allclose([rb.pi_low, rb.pi_high], [ref["pi_low"], ref["pi_high"]],
                                   rtol=rtol)


class MultilevelExample:
    """The reference tests of one multilevel data set: a ``Test<Name>`` subclass in
    ``tests/test_example_<dataset>.py`` sets ``dataset``; ``conftest.pytest_generate_tests``
    parametrises ``case`` with that data set's reference fits via ``reference_cases``."""

    dataset: str

    @classmethod
    def reference_cases(cls) -> dict[str, list[dict]]:
        return {"case": cases(cls.dataset)}

    @staticmethod
    def case_id(case: dict) -> str:
        return case["id"]

    def test_reference_grid_is_complete(self):
        assert grid(self.dataset) == GRID | {EXTRA_ML[self.dataset]}

    def test_model_matches_metafor(self, case):
        assert_model_matches(case)

    @pytest.mark.parametrize("adjust", ["CR2", "CR1"])
    def test_robust_matches_clubsandwich(self, case, adjust):
        assert_robust_matches(case, adjust)
