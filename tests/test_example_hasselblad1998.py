"""Network meta-analysis of dat.hasselblad1998 against metafor's rma.mv.

Hasselblad (1998), Med Decis Making 18:37-43: 24 trials of smoking-cessation
interventions (log odds ratios of abstinence), 4 treatments, two three-arm trials;
the contrast-based model of metafor's help page ``?dat.hasselblad1998``.
"""

from __future__ import annotations

from network_reference import NetworkExample


class TestHasselblad1998(NetworkExample):
    dataset = "hasselblad1998"
