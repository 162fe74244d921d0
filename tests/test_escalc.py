"""metaally.escalc against metafor 3.8's escalc (tests/reference/escalc.R), and its input checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma
from metaally.effects.escalc import MEASURES, hedges_c

REFERENCE = json.loads(
    (Path(__file__).parent / "reference" / "escalc.json").read_text(encoding="utf-8")
)
CASES = REFERENCE["cases"]
RTOL = 1e-10


def _case_id(case: dict) -> str:
    args = "+".join(case["args"])
    return f"{case['measure']}-{case['vtype']}-{case['to']}-add{case['add']:g}-{args}"


def _max_rel(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours - ref) / np.abs(ref).clip(min=1e-300)))


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_metafor(case: dict) -> None:
    kwargs = {"vtype": case["vtype"]} if MEASURES[case["measure"]].vtypes else {}
    if MEASURES[case["measure"]].table:
        kwargs = {"add": case["add"], "to": case["to"]}
    res = ma.escalc(case["measure"], **kwargs, **case["args"])
    yi_ref, vi_ref = np.array(case["yi"]), np.array(case["vi"])
    exact_zero = yi_ref == 0
    assert np.all(res["yi"].to_numpy()[exact_zero] == 0)
    np.testing.assert_allclose(res["yi"].to_numpy()[~exact_zero], yi_ref[~exact_zero], rtol=RTOL,
                               atol=0)
    np.testing.assert_allclose(res["vi"], vi_ref, rtol=RTOL, atol=0)


def test_reference_grid_is_complete() -> None:
    seen = {(c["measure"], c["vtype"]) for c in CASES if not MEASURES[c["measure"]].table}
    expected = {(name, vt) for name, m in MEASURES.items() for vt in m.vtypes}
    assert expected <= seen
    tables = {c["measure"] for c in CASES if MEASURES[c["measure"]].table}
    assert tables == {name for name, m in MEASURES.items() if m.table}
    assert REFERENCE["metafor_version"].startswith("3.8")
    # the extremes the reference must contain
    n = np.concatenate([np.ravel(c["args"].get("n1i", [])) for c in CASES])
    assert {2.0, 1e6} <= set(n)
    ti = np.concatenate([np.ravel(c["args"].get("ti", [])) for c in CASES])
    assert (ti < 0).any()
    ai = np.concatenate([np.ravel(c["args"].get("ai", [])) for c in CASES])
    assert (ai == 0).any()


def test_max_relative_error_is_reported() -> None:
    """The largest relative error over every reference value (printed with -s)."""
    worst = 0.0
    for case in CASES:
        kwargs = {"vtype": case["vtype"]} if MEASURES[case["measure"]].vtypes else {}
        if MEASURES[case["measure"]].table:
            kwargs = {"add": case["add"], "to": case["to"]}
        res = ma.escalc(case["measure"], **kwargs, **case["args"])
        for col in ("yi", "vi"):
            ref = np.array(case[col])
            keep = ref != 0
            worst = max(worst, _max_rel(res[col].to_numpy()[keep], ref[keep]))
    print(f"max relative error vs metafor over {len(CASES)} cases: {worst:.3g}")
    assert worst < RTOL


# --------------------------------------------------------------------------- shape of the result


def test_index_is_kept_and_scalars_broadcast() -> None:
    idx = pd.Index(["a", "b", "c"], name="study")
    res = ma.escalc("SMD", di=pd.Series([0.2, 0.5, -0.1], index=idx), n1i=20, n2i=22)
    assert list(res.columns) == ["yi", "vi"]
    assert res.index.equals(idx)


def test_hedges_c_by_hand() -> None:
    # m = 2: Γ(1)/(√1·Γ(1/2)) = 1/√π;  m = 4: Γ(2)/(√2·Γ(3/2)) = 1/(√2·√π/2) = √2/√π
    assert hedges_c(2.0) == pytest.approx(1 / np.sqrt(np.pi), rel=1e-15)
    assert hedges_c(4.0) == pytest.approx(np.sqrt(2 / np.pi), rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(m=st.floats(2.0, 1e7))
def test_exact_correction_is_close_to_hedges_approximation(m: float) -> None:
    # Hedges (1981): c(m) ≈ 1 − 3/(4m − 1), error O(m⁻²); the log-gamma difference (as
    # metafor computes it) carries a rounding error of about m·log(m) ulps
    assert hedges_c(m) == pytest.approx(1 - 3 / (4 * m - 1), abs=0.05 / m**2 + 1e-14 * m)
    assert 0 < hedges_c(m) < 1


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("measure", "kwargs", "match"),
    [
        ("XYZ", {}, "measure must be one of"),
        ("SMD", {"di": 0.2, "n1i": 10, "n2i": 10, "x": 1}, "got 'x'"),
        ("SMD", {"m1i": 1, "m2i": 0, "sd1i": 1, "n1i": 10, "n2i": 10}, "'sd2i' has missing"),
        ("SMD", {"m1i": 1, "m2i": 0, "sd1i": -1, "sd2i": 1, "n1i": 10, "n2i": 10}, "'sd1i'"),
        ("SMD", {"di": 0.2, "n1i": 0, "n2i": 10}, "'n1i' must be > 0"),
        ("SMD", {"di": 0.2, "n1i": 1, "n2i": 2}, "small-sample correction"),
        ("SMD", {"di": [0.2, 0.3], "n1i": [10, 10, 10], "n2i": 10}, "differ in length"),
        ("SMD", {"di": 0.2, "n1i": 10, "n2i": 10, "vtype": "HO"}, "vtype must be"),
        ("SMCR", {"m1i": 1, "m2i": 0, "sd1i": 1, "ni": 10, "ri": 1.5}, "'ri'"),
        ("OR2DL", {"ai": 12, "n1i": 10, "ci": 1, "n2i": 10}, "'bi'"),
        ("OR2DL", {"ai": 1, "bi": 2, "ci": 1, "di": 2, "n1i": 4, "n2i": 3}, "n1i must equal"),
        ("PBIT", {"ai": 1, "bi": 2, "ci": 1, "di": 2, "to": "some"}, "to must be"),
        ("SMD", {"di": "big", "n1i": 10, "n2i": 10}, "'di' must be numeric"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_names_the_argument(measure: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ma.escalc(measure, **kwargs)
