"""Network meta-analysis: variants against metafor, shape of the network (disconnected,
single-study edge, multi-arm study), ranking and inconsistency properties, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from network_reference import NETWORKS, RTOL, fit

import metaally as ma


@pytest.mark.parametrize("name", ["senn2013_selfrow", "hasselblad1998_duplicate"],
                         ids=["all_zero_contrast_row", "same_comparison_twice_in_a_study"])
def test_variants_match_metafor(name: str) -> None:
    """A row comparing a treatment with itself informs tau2 only; two rows of one study on the
    same comparison share one random effect (metafor's ``comp | study``)."""
    res, ref = fit(name), NETWORKS[name]
    np.testing.assert_allclose(res.coef["estimate"], ref["beta"], rtol=RTOL)
    np.testing.assert_allclose(res.coef["se"], ref["se"], rtol=RTOL)
    np.testing.assert_allclose(res.tau2, ref["tau2"], rtol=RTOL)
    np.testing.assert_allclose(res.loglik, ref["loglik"], rtol=1e-9)


def test_all_zero_row_changes_tau2_not_the_design() -> None:
    base, with_row = fit("senn2013"), fit("senn2013_selfrow")
    assert with_row.treatments == base.treatments
    assert with_row.k == base.k + 1
    assert not np.isclose(with_row.tau2, base.tau2, rtol=1e-3)


# ------------------------------------------------------------------ shape of the network


def _two_arm(rows: list[tuple[str, str, str, float, float]]) -> dict:
    study, t1, t2, y, v = zip(*rows, strict=True)
    return {"yi": np.array(y), "V": np.diag(v), "study": list(study), "treat1": list(t1),
            "treat2": list(t2)}


def test_disconnected_network_is_named() -> None:
    data = _two_arm([("s1", "a", "control", 0.3, 0.04), ("s2", "a", "control", 0.5, 0.05),
                     ("s3", "b", "control", 0.2, 0.04), ("s4", "c", "d", 0.1, 0.03),
                     ("s5", "c", "d", 0.4, 0.06)])
    with pytest.raises(ValueError, match=r"disconnected into 2 parts: \{a, b, control\}; "
                                         r"\{c, d\}"):
        ma.network_meta_analysis(**data)
    assert ma.network_components(data["treat1"], data["treat2"]) == [
        ["a", "b", "control"], ["c", "d"]]
    # each part on its own
    part = ma.network_meta_analysis(**{k: (v[:3] if k != "V" else v[:3, :3])
                                       for k, v in data.items()})
    assert part.treatments == ["a", "b"]


def test_self_comparison_is_its_own_component() -> None:
    """A node compared only with itself (an all-zero row) is not linked to anything."""
    parts = ma.network_components(["a", "b", "x"], ["control", "control", "x"])
    assert parts == [["a", "b", "control"], ["x"]]


def test_single_study_edge_is_that_studys_contrast() -> None:
    """A treatment observed in one two-arm study only: its effect is that study's y, with
    variance v + tau2 (no other evidence), whatever the rest of the network."""
    rows = [("s1", "a", "control", 0.3, 0.04), ("s2", "a", "control", 0.9, 0.05),
            ("s3", "a", "control", 0.1, 0.03), ("s4", "b", "control", 0.2, 0.04),
            ("s5", "b", "control", 0.6, 0.06), ("s6", "c", "control", 0.45, 0.07)]
    res = ma.network_meta_analysis(**_two_arm(rows))
    assert res.tau2 > 0
    c = res.coef.loc["c"]
    np.testing.assert_allclose(c["estimate"], 0.45, rtol=1e-10)
    np.testing.assert_allclose(c["se"] ** 2, 0.07 + res.tau2, rtol=1e-8)
    with pytest.warns(RuntimeWarning, match="c is zero"):
        rob = res.robust()
    assert np.isnan(rob.coef.loc["c", "se"])


def _senn_contrasts(reference: str) -> ma.Contrasts:
    arms = NETWORKS["senn2013"]["arms"]
    return ma.arm_contrasts(arms["study"], arms["treatment"], arms["mean"], arms["sd"],
                            arms["n"], reference=reference)


def test_multi_arm_study_is_not_double_counted() -> None:
    """The three-arm trial gives two contrasts sharing its baseline arm.  With the shared-arm
    covariance the fit does not depend on which arm is the baseline (the same two
    independent pieces of information); treating the two contrasts as independent counts
    the shared arm twice and changes the result."""
    by_placebo, by_acarbose = _senn_contrasts("placebo"), _senn_contrasts("acarbose")
    willms = by_acarbose.frame["study"] == "Willms (1999)"
    assert set(by_acarbose.frame.loc[willms, "treat2"]) == {"acarbose"}
    fits = [ma.network_meta_analysis(c.frame["yi"], c.V, c.frame["study"], c.frame["treat1"],
                                     c.frame["treat2"], reference="placebo")
            for c in (by_placebo, by_acarbose)]
    np.testing.assert_allclose(fits[0].coef["estimate"], fits[1].coef["estimate"], rtol=1e-9)
    np.testing.assert_allclose(fits[0].coef["se"], fits[1].coef["se"], rtol=1e-9)
    np.testing.assert_allclose(fits[0].tau2, fits[1].tau2, rtol=1e-8)
    naive = ma.network_meta_analysis(by_placebo.frame["yi"], np.diag(np.diag(by_placebo.V)),
                                     by_placebo.frame["study"], by_placebo.frame["treat1"],
                                     by_placebo.frame["treat2"], reference="placebo")
    assert not np.allclose(naive.coef["se"], fits[0].coef["se"], rtol=1e-3)


def test_shared_arm_covariance_of_smds() -> None:
    """Gleser & Olkin (2009): Cov = 1/n_C + g1 g2 / (2N) for two arms vs one control; the
    sign of 1/n_C flips when the shared arm changes side; same arms twice: rho sqrt(v v)."""
    y = np.array([0.4, 0.2, -0.2, 0.3])
    v = np.array([0.05, 0.06, 0.06, 0.07])
    V = ma.shared_arm_covariance(y, v, ["s"] * 3 + ["t"], ["a", "b", "c", "a"],
                                 ["c", "c", "d", "c"], [20, 30, 40, 10], [40, 40, 25, 10],
                                 rho=0.6)
    np.testing.assert_allclose(V[0, 1], 1 / 40 + 0.4 * 0.2 / (2 * 90))
    np.testing.assert_allclose(V[0, 2], -1 / 40 + 0.4 * -0.2 / (2 * 85))
    np.testing.assert_allclose(V[1, 2], -1 / 40 + 0.2 * -0.2 / (2 * 95))
    assert V[0, 3] == 0.0
    W = ma.shared_arm_covariance(y[:2], v[:2], ["s", "s"], ["a", "a"], ["c", "c"], [20, 20],
                                 [40, 40], rho=0.6)
    np.testing.assert_allclose(W[0, 1], 0.6 * np.sqrt(0.05 * 0.06))


# ------------------------------------------------------------------ ranking and league


def test_league_table_is_antisymmetric_and_extends_coef() -> None:
    res = fit("hasselblad1998")
    league = res.league_table().set_index(["treat1", "treat2"])
    n = len(res.all_treatments)
    assert len(league) == n * (n - 1)
    for t in res.treatments:
        row = league.loc[(t, res.reference)]
        np.testing.assert_allclose(row[["estimate", "se", "ci_low", "ci_high", "pvalue"]],
                                   res.coef.loc[t, ["estimate", "se", "ci_low", "ci_high",
                                                    "pvalue"]], rtol=1e-12)
    for (a, b), row in league.iterrows():
        back = league.loc[(b, a)]
        assert back["estimate"] == pytest.approx(-row["estimate"])
        assert back["se"] == pytest.approx(row["se"])


def test_sucra_converges_to_pscores() -> None:
    """E[SUCRA] = P-score (Rücker & Schwarzer 2015); 200,000 draws: Monte Carlo error < 0.003."""
    res = fit("senn2013")
    np.testing.assert_allclose(res.sucra(higher_is_better=False, n_sim=200_000),
                               res.pscores(higher_is_better=False), atol=0.003)
    probs = res.rank_probabilities(n_sim=20_000)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), higher=st.booleans())
def test_pscores_average_one_half_and_reverse(seed: int, higher: bool) -> None:
    """mean P-score = 1/2; reversing the direction gives 1 - P (Rücker & Schwarzer 2015)."""
    rng = np.random.default_rng(seed)
    rows = [(f"s{i}", t, "control", rng.normal(0.3, 0.3), rng.uniform(0.02, 0.1))
            for i, t in enumerate(["a", "a", "b", "b", "c", "c", "a"])]
    rows.append(("s9", "a", "b", rng.normal(0.0, 0.3), 0.05))
    res = ma.network_meta_analysis(**_two_arm(rows))
    p = res.pscores(higher_is_better=higher)
    assert p.mean() == pytest.approx(0.5)
    np.testing.assert_allclose(res.pscores(higher_is_better=not higher), 1.0 - p)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_reference_choice_and_row_orientation_do_not_matter(seed: int) -> None:
    """Re-basing on another reference, or flipping a row (y -> -y, treat1 <-> treat2), leaves
    every pairwise contrast and tau2 unchanged (the model is invariant, as metafor's)."""
    rng = np.random.default_rng(seed)
    rows = [(f"s{i}", t1, t2, rng.normal(0.3, 0.4), rng.uniform(0.02, 0.1)) for i, (t1, t2)
            in enumerate([("a", "control"), ("a", "control"), ("b", "control"), ("b", "a"),
                          ("c", "b"), ("c", "control"), ("b", "control")])]
    data = _two_arm(rows)
    base = ma.network_meta_analysis(**data)
    flipped = dict(data, yi=-data["yi"], treat1=data["treat2"], treat2=data["treat1"])
    for other in (ma.network_meta_analysis(**data, reference="b"),
                  ma.network_meta_analysis(**flipped)):
        a = base.league_table().set_index(["treat1", "treat2"])
        b = other.league_table().set_index(["treat1", "treat2"]).loc[a.index]
        np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(a["se"], b["se"], rtol=1e-7)
        assert other.tau2 == pytest.approx(base.tau2, rel=1e-7, abs=1e-10)


def test_node_split_without_indirect_evidence_is_left_out() -> None:
    """A star network (every comparison vs control) has no loop: nothing to split, and the
    design-by-treatment test has no degrees of freedom."""
    rows = [("s1", "a", "control", 0.3, 0.04), ("s2", "a", "control", 0.5, 0.05),
            ("s3", "b", "control", 0.2, 0.04), ("s4", "b", "control", 0.1, 0.05)]
    res = ma.network_meta_analysis(**_two_arm(rows))
    assert res.node_split().empty
    assert res.design_by_treatment().df == 0


def test_summary_reads_like_metafor() -> None:
    text = fit("hasselblad1998").summary()
    assert "Network Meta-Analysis" in text and "tau^2" in text
    assert "ind_counseling" in text and "no_contact" in text
    frame = fit("hasselblad1998").to_frame()
    assert list(frame["treatment"]) == NETWORKS["hasselblad1998"]["treatments"]


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"V": np.eye(3)}, "V must be the full 4 x 4"),
        ({"reference": "placebo"}, "reference 'placebo' is not a treatment"),
        ({"method": "DL"}, "method must be one of REML, ML"),
        ({"yi": [0.1, np.nan, 0.2, 0.3]}, "yi must be finite"),
        ({"treat2": ["control", None, "control", "control"]}, "treat2 must not have missing"),
        ({"study": ["s1", "s2"]}, "study has 2"),
    ],
    ids=["V_shape", "reference", "method", "nan", "missing_label", "length"],
)
def test_bad_input_names_the_argument(change: dict, message: str) -> None:
    data = _two_arm([("s1", "a", "control", 0.3, 0.04), ("s2", "a", "control", 0.5, 0.05),
                     ("s3", "b", "control", 0.2, 0.04), ("s4", "b", "control", 0.1, 0.05)])
    with pytest.raises(ValueError, match=message):
        ma.network_meta_analysis(**{**data, **change})


def test_covariance_across_studies_is_rejected() -> None:
    data = _two_arm([("s1", "a", "control", 0.3, 0.04), ("s2", "a", "control", 0.5, 0.05),
                     ("s3", "b", "control", 0.2, 0.04), ("s4", "b", "control", 0.1, 0.05)])
    data["V"][0, 1] = data["V"][1, 0] = 0.01
    with pytest.raises(ValueError, match="block-diagonal by study: rows 0 and 1"):
        ma.network_meta_analysis(**data)


def test_table_frames_are_plain_pandas() -> None:
    res = fit("hasselblad1998")
    assert isinstance(res.pscores(), pd.Series)
    assert res.pscores().name == "pscore"
    assert {"treat1", "treat2", "estimate", "se", "ci_low", "ci_high", "pvalue"} <= set(
        res.league_table().columns)


def test_robust_league_extends_robust_coef() -> None:
    """The CR2 league row (t, reference) is the robust coefficient of t (clubSandwich values are
    checked in the example tests); single-study contrasts are NaN, so are their P-scores."""
    rob = fit("hasselblad1998").robust()
    league = rob.league_table().set_index(["treat1", "treat2"])
    for t in rob.treatments:
        np.testing.assert_allclose(league.loc[(t, rob.reference), ["se", "df", "pvalue"]],
                                   rob.coef.loc[t, ["se", "df", "pvalue"]], rtol=1e-10)
    with pytest.warns(RuntimeWarning, match="single study"):
        senn = fit("senn2013").robust()
    league = senn.league_table().set_index(["treat1", "treat2"])
    assert np.isnan(league.loc[("sitagliptin", "placebo"), "se"])
    assert np.isfinite(league.loc[("sitagliptin", "acarbose"), "se"])
    p = senn.pscores()
    assert np.isnan(p["sitagliptin"]) and np.isfinite(p["acarbose"])
