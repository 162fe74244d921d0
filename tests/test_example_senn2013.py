"""Network meta-analysis of dat.senn2013 against metafor's rma.mv.

Senn et al. (2013), Stat Methods Med Res 22:169-189: 26 trials of glucose-lowering
agents (change in HbA1c, mean differences), 10 treatments, one three-arm trial
(Willms 1999); the contrast-based model of metafor's help page ``?dat.senn2013``.
"""

from __future__ import annotations

import numpy as np
from network_reference import NETWORKS, RTOL, NetworkExample

import metaally as ma


class TestSenn2013(NetworkExample):
    dataset = "senn2013"


def test_arm_contrasts_reproduce_to_wide_escalc_and_shared_arm() -> None:
    """Arm-level data -> contrasts and V as metafor's to.wide + escalc("MD") + bldiag do."""
    ref = NETWORKS["senn2013"]
    arms = ref["arms"]
    c = ma.arm_contrasts(arms["study"], arms["treatment"], arms["mean"], arms["sd"],
                         arms["n"], reference="placebo")
    mine = {(s, a, b): i for i, (s, a, b) in enumerate(
        zip(c.frame["study"], c.frame["treat1"], c.frame["treat2"], strict=True))}
    order, sign = [], []
    for s, a, b in zip(ref["study"], ref["treat1"], ref["treat2"], strict=True):
        if (s, a, b) in mine:
            order.append(mine[(s, a, b)])
            sign.append(1.0)
        else:  # to.wide orders a study without placebo by its own rule: same contrast, flipped
            order.append(mine[(s, b, a)])
            sign.append(-1.0)
    sign = np.array(sign)
    np.testing.assert_allclose(c.frame["yi"].to_numpy()[order] * sign, ref["yi"], rtol=1e-12)
    V = c.V[np.ix_(order, order)] * np.outer(sign, sign)
    np.testing.assert_allclose(V, ref["V"], rtol=1e-12, atol=0)
    res = ma.network_meta_analysis(c.frame["yi"], c.V, c.frame["study"], c.frame["treat1"],
                                   c.frame["treat2"], reference="placebo")
    np.testing.assert_allclose(res.coef["estimate"], ref["beta"], rtol=RTOL)
    np.testing.assert_allclose(res.tau2, ref["tau2"], rtol=RTOL)
