"""The review's publication-bias paragraph is rendered from the table's values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from metaally.allyship.publication_bias_text import (
    publication_bias_facts,
    publication_bias_markdown,
)


def _table() -> pd.DataFrame:
    base = {"se_type": np.nan, "stat": np.nan, "delta": np.nan, "lrt": np.nan,
            "lrt_pvalue": np.nan, "k_per_interval": np.nan, "k0": np.nan}
    few = "fewer than 10 studies: too few (Sterne et al. 2011, BMJ 343:d4002)"
    rows = [
        {**base, "analysis": "overall", "k_studies": 12, "k_effects": 20,
         "method": "selection_3psm", "estimate": 0.3, "ci_low": 0.1, "ci_high": 0.5,
         "delta": 0.4, "lrt_pvalue": 0.2, "k_per_interval": "9;3", "note": ""},
        {**base, "analysis": "overall", "k_studies": 12, "k_effects": 20, "method": "egger",
         "se_type": "modified", "estimate": 0.2, "ci_low": 0.0, "ci_high": 0.4,
         "pvalue": 0.33, "note": ""},
        {**base, "analysis": "overall", "k_studies": 12, "k_effects": 20, "method": "egger",
         "se_type": "sqrt(vi)", "estimate": 0.2, "ci_low": 0.0, "ci_high": 0.4,
         "pvalue": 0.04, "note": ""},
        {**base, "analysis": "awareness", "k_studies": 7, "k_effects": 9,
         "method": "selection_3psm", "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
         "note": few},
        {**base, "analysis": "all_inclusivity", "k_studies": 0, "k_effects": 0,
         "method": "none", "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
         "note": few},
    ]
    return pd.DataFrame(rows)


def test_facts_carry_the_numbers():
    facts = {f.analysis: f for f in publication_bias_facts(_table())}
    assert facts["overall"].selection["delta"] == 0.4
    assert facts["overall"].egger_vi["pvalue"] == 0.04
    assert facts["awareness"].too_few and facts["awareness"].selection is None


def test_markdown_states_numbers_threshold_and_reason():
    text = publication_bias_markdown(_table())
    assert "3PSM selection model 0.30 (95% CI 0.10 to 0.50)" in text
    assert "3 studies with p > .025" in text
    assert "p = 0.330 with the modified SE (p = 0.040 with the usual SE)" in text
    assert "fewer than 10 studies" in text.lower() and "Sterne et al. 2011" in text
    assert "All-inclusivity: 0 studies; no method applies." in text
    assert "Pustejovsky & Rodgers 2019" in text
