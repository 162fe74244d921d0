"""Univariate models on bcg against metafor 3.8 (tests/reference/univariate.json).

BCG vaccine trials (Colditz et al. 1994, JAMA 271:698; metadat ``dat.bcg``): 13 trials,
log risk ratios of tuberculosis (escalc RR); moderator: absolute latitude (``ablat``).
Reproduces Viechtbauer (2010, J Stat Softw 36(3)) sections 3-4 with every estimator and test.
"""

from __future__ import annotations

from univariate_cases import UnivariateExample


class TestBcg(UnivariateExample):
    dataset = "bcg"
