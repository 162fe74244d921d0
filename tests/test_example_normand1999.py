"""Univariate models on normand1999 against metafor 3.8 (tests/reference/univariate.json).

Normand (1999, Stat Med 18:321): 9 trials of specialist stroke care, mean differences in length
of hospital stay in days (metadat ``dat.normand1999``, escalc MD); moderator: log total sample
size.  Large-scale data (tau^2 ~ 800), so it also checks the scale-free convergence rules.
"""

from __future__ import annotations

from univariate_cases import UnivariateExample


class TestNormand1999(UnivariateExample):
    dataset = "normand1999"
