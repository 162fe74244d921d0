"""Effect sizes: conversions against hand-computed values, policies, and properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaally as ma
import metaally.allyship as ally
from metaally.data.studies import METRICS
from metaally.effects.compute import EFFECT_COLUMNS, METRIC_EFFECTS, d_from_f2, d_from_r

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def table2() -> pd.DataFrame:
    return ally.load_table2()


@pytest.fixture(scope="module")
def effects(table2: pd.DataFrame) -> pd.DataFrame:
    return ma.compute_effects(table2).set_index("es_id")


# --------------------------------------------------------------------------- conversions


def exact_j(m: float) -> float:
    """Hedges' (1981) c(m) = Γ(m/2)/(√(m/2)·Γ((m−1)/2)), here with the standard library."""
    return math.exp(math.lgamma(m / 2) - 0.5 * math.log(m / 2) - math.lgamma((m - 1) / 2))


def test_exact_j_by_hand() -> None:
    # m = 4: Γ(2)/(√2·Γ(3/2)) = 1/(√2·√π/2) = √(2/π)
    assert exact_j(4) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)


def test_d_row_by_hand() -> None:
    # d = 0.5, n1 = n2 = 20: g = c(38)*0.5, v = 0.1 + g^2/80
    row = ma.escalc("SMD", di=0.5, n1i=20, n2i=20).iloc[0]
    g = exact_j(38) * 0.5
    assert row["yi"] == pytest.approx(g, rel=1e-14)
    assert row["vi"] == pytest.approx(0.1 + g**2 / 80, rel=1e-14)


def test_d_from_f2_by_hand() -> None:
    # f2 = 0.0625 -> f = 0.25; for two groups f = d/2, so d = 0.5
    assert d_from_f2(0.0625) == pytest.approx(0.5, rel=1e-15)
    assert d_from_f2(0.0) == 0.0


def test_d_from_r_by_hand() -> None:
    # r = 0.6: sqrt(1 - 0.36) = 0.8, d = 2 * 0.6 / 0.8 = 1.5; odd in r
    assert d_from_r(0.6) == pytest.approx(1.5, rel=1e-15)
    assert d_from_r(-0.6) == pytest.approx(-1.5, rel=1e-15)


def test_t_rows_use_the_arm_sizes(tmp_path: Path) -> None:
    # the fixture's first row as t = 2.5 with n = 100 over 2 arms: d = 2.5 * sqrt(2/50) = 0.5
    text = (FIXTURES / "valid.csv").read_text(encoding="utf-8")
    path = tmp_path / "t.csv"
    path.write_text(text.replace(",d,0.5,", ",t,2.5,", 1), encoding="utf-8")
    row = ma.compute_effects(ma.load_studies(path)).iloc[0]
    assert row["metric"] == "t"
    assert row["yi"] == pytest.approx(0.5 * exact_j(98), rel=1e-14)
    assert "d=t*sqrt(1/n1+1/n2)=0.500000" in row["derivation"]


def test_every_contrast_metric_has_a_conversion() -> None:
    assert set(METRIC_EFFECTS) == {name for name, m in METRICS.items() if m.contrast}


# --------------------------------------------------------------------------- the table


def test_table_shape_and_columns(table2: pd.DataFrame) -> None:
    # 41 rows, 8 of them ranges -> 49 effects; the R2 association is the only one not pooled
    eff = ma.compute_effects(table2)
    assert len(eff) == 49
    assert eff["included"].sum() == 48
    assert list(eff.columns) == list(EFFECT_COLUMNS)
    assert eff["es_id"].is_unique


def test_bonam_row_by_hand(effects: pd.DataFrame) -> None:
    # d = 0.27, n = 387 over 2 arms: n1 = n2 = 193.5, df = 385, exact J = c(385)
    row = effects.loc["bonam2019-01"]
    g = 0.27 * exact_j(385)
    assert row["yi"] == pytest.approx(g, rel=1e-14)
    assert row["vi"] == pytest.approx(387 / 193.5**2 + g**2 / 774, rel=1e-14)
    assert row["sei"] == pytest.approx(math.sqrt(row["vi"]), rel=1e-15)
    assert (row["n1"], row["n2"], row["source_line"]) == (193.5, 193.5, 2)


def test_f2_row_by_hand(effects: pd.DataFrame) -> None:
    # dietze2020: f2 = 0.011 -> d = 2 * sqrt(0.011); n = 1861 over 2 arms, df = 1859
    row = effects.loc["dietze2020-01"]
    g = 2 * math.sqrt(0.011) * exact_j(1859)
    assert row["yi"] == pytest.approx(g, rel=1e-14)
    assert row["vi"] == pytest.approx(1861 / 930.5**2 + g**2 / (2 * 1861), rel=1e-14)
    assert "d=2*sqrt(f2)=0.209762" in row["derivation"]


def test_association_is_kept_but_not_pooled(effects: pd.DataFrame) -> None:
    row = effects.loc[effects["role"] == "association"].iloc[0]
    assert (row["study_id"], row["metric"], row["value_used"]) == ("lyubkyk2024", "R2", 0.35)
    assert not row["included"]
    assert np.isnan(row["yi"]) and np.isnan(row["vi"])
    assert "association" in row["derivation"]


def test_flags_are_carried(effects: pd.DataFrame) -> None:
    assert set(effects.loc[effects["comparator"] == "active", "ref"]) == {165, 172, 175}
    assert set(effects.loc[~effects["peer_reviewed"], "study_id"]) == {"pietri2021"}


def test_es_ids_are_stable_and_numbered_in_file_order(table2: pd.DataFrame) -> None:
    first = ma.compute_effects(table2)
    pd.testing.assert_frame_equal(first, ma.compute_effects(table2))
    case = first[first["study_id"] == "case2014"]
    assert case["es_id"].tolist() == [f"case2014-0{i}" for i in range(1, 5)]
    assert case["source_line"].tolist() == sorted(case["source_line"])


# --------------------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("policy", "used"),
    [("endpoints", [0.39, 0.45]), ("midpoint", [0.42]), ("low", [0.39]), ("high", [0.45])],
    ids=["endpoints", "midpoint", "low", "high"],
)
def test_range_policies(table2: pd.DataFrame, policy: str, used: list[float]) -> None:
    eff = ma.compute_effects(table2, range_policy=policy)
    handout = eff[(eff["study_id"] == "case2014") & eff["outcome"].str.startswith("No effects")]
    assert handout["value_used"].tolist() == pytest.approx(used)
    assert len(eff) == (49 if policy == "endpoints" else 41)
    if policy == "endpoints":  # the two endpoints get consecutive ids
        assert handout["es_id"].tolist() == ["case2014-03", "case2014-04"]


def test_arms_policy_two(table2: pd.DataFrame) -> None:
    # mossracusin2018: n = 148 over 4 arms -> 37 per arm; under "two", 74 per arm
    stated = ma.compute_effects(table2).set_index("es_id").loc["mossracusin2018-01"]
    two = ma.compute_effects(table2, arms_policy="two").set_index("es_id").loc["mossracusin2018-01"]
    assert (stated["n1"], two["n1"]) == (37.0, 74.0)
    g = 0.55 * exact_j(146)
    assert two["vi"] == pytest.approx(148 / 74**2 + g**2 / 296, rel=1e-14)
    assert two["vi"] < stated["vi"]


def test_per_arm_n_overrides_both_arms_policies() -> None:
    # beta2021 states n1 = 90, n2 = 100 (n = 200): f2 = 0.01 -> d = 0.2, df = 188
    studies = ma.load_studies(FIXTURES / "valid.csv")
    for policy in ("stated", "two"):
        row = ma.compute_effects(studies, arms_policy=policy).iloc[-1]
        g = 0.2 * exact_j(188)
        assert (row["n1"], row["n2"]) == (90, 100)
        assert row["yi"] == pytest.approx(g, rel=1e-14)
        assert row["vi"] == pytest.approx(190 / 9000 + g**2 / 380, rel=1e-14)


def test_design_policy_prepost(table2: pd.DataFrame) -> None:
    between = ma.compute_effects(table2).set_index("es_id")
    pre = ma.compute_effects(table2, design_policy="prepost", prepost_r=0.5).set_index("es_id")
    changed = (between["vi"] != pre["vi"]) & between["vi"].notna()
    assert set(between.loc[changed, "ref"]) == {166, 167}
    assert changed.sum() == (between["design"] == "prepost").sum()
    # case2014-01: d = 0.57 in the video arm of n = 131/2 = 65.5: metafor's SMCR with
    # J = c(n - 1) and vi = 2(1 - r)/n + g^2/(2n) (Becker 1988)
    n = 65.5
    g = 0.57 * exact_j(64.5)
    row = pre.loc["case2014-01"]
    assert row["yi"] == pytest.approx(g, rel=1e-14)
    assert row["vi"] == pytest.approx(2 * (1 - 0.5) / n + g**2 / (2 * n), rel=1e-14)
    assert np.isnan(row["n2"])


@pytest.mark.parametrize(
    "kwargs",
    [{"range_policy": "mean"}, {"arms_policy": "three"}, {"design_policy": "within"},
     {"prepost_r": 1.0}],
    ids=["range", "arms", "design", "prepost_r"],
)
def test_bad_arguments_raise(table2: pd.DataFrame, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        ma.compute_effects(table2, **kwargs)


def test_missing_columns_raise(table2: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing column.*arms"):
        ma.compute_effects(table2.drop(columns="arms"))


# --------------------------------------------------------------------------- properties


@settings(max_examples=100, deadline=None)
@given(
    d=st.floats(-10, 10, allow_nan=False),
    n1=st.integers(2, 5000),
    n2=st.integers(2, 5000),
)
def test_g_shrinks_d_and_variance_is_positive(d: float, n1: int, n2: int) -> None:
    g, v = ma.escalc("SMD", di=d, n1i=n1, n2i=n2).iloc[0]
    assert abs(g) <= abs(d)
    assert np.sign(g) == np.sign(d)
    assert v > 0 and np.isfinite(v)
    assert v >= (1 / n1 + 1 / n2) * (1 - 1e-15)


@settings(max_examples=100, deadline=None)
@given(
    d=st.floats(-10, 10, allow_nan=False),
    n=st.integers(3, 5000),
    r=st.floats(-0.99, 0.99),
)
def test_prepost_g_shrinks_d_and_variance_is_positive(d: float, n: int, r: float) -> None:
    g, v = ma.escalc("SMCR", m1i=d, m2i=0.0, sd1i=1.0, ni=n, ri=r).iloc[0]
    assert abs(g) <= abs(d)
    assert v > 0 and np.isfinite(v)


@settings(max_examples=100, deadline=None)
@given(a=st.floats(-0.999, 0.999), b=st.floats(-0.999, 0.999))
def test_r_to_d_is_odd_and_increasing(a: float, b: float) -> None:
    assert d_from_r(a) == pytest.approx(-d_from_r(-a))
    low, high = sorted((a, b))
    assert d_from_r(low) <= d_from_r(high)


# --------------------------------------------------------------------------- metafor


def test_matches_metafor_escalc(table2: pd.DataFrame) -> None:
    """escalc("SMD") on the same d, n1, n2 (tests/reference/effects.R): metafor's exact J.

    The approximation J = 1 − 3/(4m − 1) used before differed by up to 1e-5
    here; with the exact correction the values agree to rounding.
    """
    ref = json.loads((Path(__file__).parent / "reference" / "effects.json").read_text())
    ours = ma.compute_effects(table2).set_index("es_id").loc[ref["es_id"]]
    assert len(ref["es_id"]) == 48
    np.testing.assert_allclose(ours["yi"], ref["yi"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(ours["vi"], ref["vi"], rtol=1e-10, atol=0)
