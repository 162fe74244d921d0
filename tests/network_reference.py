"""Reference networks of tests/reference/network.json (metafor 3.8 ``rma.mv`` + clubSandwich,
written by tests/reference/network.R), shared by the example tests of each data set."""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import metaally as ma

REFERENCE = json.loads((Path(__file__).parent / "reference" / "network.json").read_text())
NETWORKS = REFERENCE["networks"]
RTOL = 1e-6  # the parity target (measured: <= 4e-14 relative)


@functools.cache
def fit(name: str) -> ma.NetworkResult:
    net = NETWORKS[name]
    return ma.network_meta_analysis(net["yi"], net["V"], net["study"], net["treat1"],
                                    net["treat2"], reference=net["reference"])


def floats(values: list) -> np.ndarray:
    """JSON list with nulls (R's NA) as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


class NetworkExample:
    """Parity of one metadat network with metafor: subclass and set ``dataset``."""

    dataset: str

    @pytest.fixture
    def res(self) -> ma.NetworkResult:
        return fit(self.dataset)

    @pytest.fixture
    def ref(self) -> dict:
        return NETWORKS[self.dataset]

    def test_treatments_are_metafors_columns(self, res, ref) -> None:
        assert res.treatments == ref["treatments"]
        assert res.reference == ref["reference"]

    @pytest.mark.parametrize("field", ["estimate", "se"])
    def test_coefficients(self, res, ref, field) -> None:
        expected = ref["beta"] if field == "estimate" else ref["se"]
        np.testing.assert_allclose(res.coef[field], expected, rtol=RTOL)

    def test_vcov(self, res, ref) -> None:
        np.testing.assert_allclose(res.vcov, ref["vcov"], rtol=RTOL, atol=1e-14)

    def test_tau2(self, res, ref) -> None:
        np.testing.assert_allclose(res.tau2, ref["tau2"], rtol=RTOL)

    def test_loglik_and_q(self, res, ref) -> None:
        np.testing.assert_allclose(res.loglik, ref["loglik"], rtol=1e-9)
        np.testing.assert_allclose(res.q, ref["QE"], rtol=1e-9)
        np.testing.assert_allclose(res.qm, ref["QM"], rtol=RTOL)
        assert res.k - len(res.treatments) == ref["QE_df"]

    @pytest.mark.parametrize("higher", [True, False], ids=["higher_better", "lower_better"])
    def test_pscores_from_metafors_estimates(self, res, ref, higher) -> None:
        p = res.pscores(higher_is_better=higher)
        assert list(p.index) == ref["pscore_names"]
        np.testing.assert_allclose(p, ref["pscore_higher" if higher else "pscore_lower"],
                                   rtol=RTOL)

    def test_design_by_treatment(self, res, ref) -> None:
        test = res.design_by_treatment()
        assert test.df == ref["dbt"]["df"]
        np.testing.assert_allclose(test.stat, ref["dbt"]["Q"], rtol=RTOL)
        np.testing.assert_allclose(test.pvalue, ref["dbt"]["pvalue"], rtol=RTOL)
        np.testing.assert_allclose(test.tau2, ref["dbt"]["tau2"], rtol=RTOL)

    def test_node_split(self, res, ref) -> None:
        table = res.node_split()
        expected = ref["splits"]
        assert list(zip(table["treat1"], table["treat2"], strict=True)) == [
            (s["treat1"], s["treat2"]) for s in expected]
        for column in ("direct", "direct_se", "indirect", "indirect_se", "difference",
                       "difference_se", "pvalue", "tau2"):
            np.testing.assert_allclose(table[column], [s[column] for s in expected],
                                       rtol=RTOL, atol=1e-12, err_msg=column)

    def test_ml(self) -> None:
        assert_ml_matches(self.dataset)

    def test_cr2(self, res, ref) -> None:
        """clubSandwich's SE 0 / df NA for a coefficient one study identifies is NaN here."""
        se = floats(ref["cr2_se"])
        single = se == 0.0
        se[single] = np.nan
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rob = res.robust()
        assert any("identified by a single study" in str(w.message) for w in caught) == \
            bool(single.any())
        np.testing.assert_allclose(rob.coef["se"], se, rtol=RTOL)
        np.testing.assert_allclose(rob.coef["df"], floats(ref["cr2_df"]), rtol=RTOL)
        np.testing.assert_allclose(rob.coef["pvalue"], floats(ref["cr2_p"]), rtol=RTOL)


def assert_ml_matches(name: str) -> None:
    """method="ML" against metafor's ``rma.mv(..., method = "ML")`` (estimates, se, tau2)."""
    net, ref = NETWORKS[name], NETWORKS[name]["ml"]
    res = ma.network_meta_analysis(net["yi"], net["V"], net["study"], net["treat1"],
                                   net["treat2"], reference=net["reference"], method="ML")
    np.testing.assert_allclose(res.coef["estimate"], ref["beta"], rtol=RTOL)
    np.testing.assert_allclose(res.coef["se"], ref["se"], rtol=RTOL)
    np.testing.assert_allclose(res.tau2, ref["tau2"], rtol=RTOL)
    np.testing.assert_allclose(res.loglik, ref["loglik"], rtol=1e-9)
