"""Univariate models on raudenbush1985 against metafor 3.8 (tests/reference/univariate.json).

Raudenbush (1984, J Educ Psychol 76:85): 19 studies of teacher expectancy on pupil IQ,
standardised mean differences (metadat ``dat.raudenbush1985``); moderator: weeks of prior
teacher-pupil contact, which takes tau^2 to its bound 0 for most estimators.
"""

from __future__ import annotations

from univariate_cases import UnivariateExample


class TestRaudenbush1985(UnivariateExample):
    dataset = "raudenbush1985"
