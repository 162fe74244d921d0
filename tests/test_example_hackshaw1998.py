"""Univariate models on hackshaw1998 against metafor 3.8 (tests/reference/univariate.json).

Hackshaw et al. (1997, BMJ 315:980): 37 studies of lung cancer and environmental tobacco smoke,
log odds ratios (metadat ``dat.hackshaw1998``); moderator: publication year.
"""

from __future__ import annotations

from univariate_cases import UnivariateExample


class TestHackshaw1998(UnivariateExample):
    dataset = "hackshaw1998"
