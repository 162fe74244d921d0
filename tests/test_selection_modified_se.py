"""Small-study tests with the modified SE of an SMD, √((n1+n2)/(n1·n2)) (Pustejovsky & Rodgers
2019, Res Synth Methods 10(1):57–71), against metafor 3.8's ``regtest(yi, sei = ...)`` and R's
``lm`` (tests/reference/modified_se.R on metadat's dat.normand1999)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import metaally as ma

REF = json.loads((Path(__file__).parent / "reference" / "modified_se.json").read_text())


def test_modified_se_formula():
    assert ma.modified_se(REF["n1"], REF["n2"]) == pytest.approx(REF["modified_se"], rel=1e-14)


def test_egger_with_modified_se_matches_regtest():
    res = ma.egger_test(REF["yi"], REF["vi"], sei=ma.modified_se(REF["n1"], REF["n2"]))
    exp = REF["egger"]
    assert res.stat == pytest.approx(exp["stat"], rel=1e-6)
    assert res.pvalue == pytest.approx(exp["pvalue"], rel=1e-6)
    assert res.limit_estimate == pytest.approx(exp["limit"], rel=1e-6)
    assert res.limit_ci_low == pytest.approx(exp["limit_ci_low"], rel=1e-6)
    assert res.limit_ci_high == pytest.approx(exp["limit_ci_high"], rel=1e-6)
    assert res.se_used == "sei as given"
    assert "sei as given" in res.summary()


def test_egger_default_is_the_vi_based_test():
    res = ma.egger_test(REF["yi"], REF["vi"])
    assert res.stat == pytest.approx(REF["egger_vi"]["stat"], rel=1e-6)
    assert res.limit_estimate == pytest.approx(REF["egger_vi"]["limit"], rel=1e-6)
    assert res.se_used == "sqrt(vi)"


def test_pet_peese_with_modified_se_matches_lm():
    res = ma.pet_peese(REF["yi"], REF["vi"], sei=ma.modified_se(REF["n1"], REF["n2"]))
    for model in ("pet", "peese"):
        exp = REF[model]
        assert getattr(res, f"{model}_estimate") == pytest.approx(exp["estimate"], rel=1e-10)
        assert getattr(res, f"{model}_se") == pytest.approx(exp["se"], rel=1e-10)
        assert getattr(res, f"{model}_pvalue") == pytest.approx(exp["pvalue"], rel=1e-8)


def test_sei_equal_to_sqrt_vi_changes_nothing():
    yi, vi = np.array(REF["yi"]), np.array(REF["vi"])
    a, b = ma.egger_test(yi, vi), ma.egger_test(yi, vi, sei=np.sqrt(vi))
    assert a.stat == pytest.approx(b.stat, rel=1e-12)
    p, q = ma.pet_peese(yi, vi), ma.pet_peese(yi, vi, sei=np.sqrt(vi))
    assert p.estimate == pytest.approx(q.estimate, rel=1e-12)


@pytest.mark.parametrize("bad", [[1.0, 2.0], [0.1] * 8 + [0.0], [0.1] * 8 + [np.inf]])
def test_bad_sei_names_the_argument(bad):
    with pytest.raises(ValueError, match="sei"):
        ma.egger_test(REF["yi"], REF["vi"], sei=bad)


def test_bad_sample_sizes():
    with pytest.raises(ValueError, match="n1 and n2"):
        ma.modified_se([10, 0], [10, 10])
