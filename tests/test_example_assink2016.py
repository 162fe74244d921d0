"""CHE model, CR2/CR1 robust inference on assink2016 against metafor + clubSandwich.

Assink & Wibbelink (2016), The Quantitative Methods for Psychology 12:154-174:
100 effects of 17 studies on delinquency (metadat ``dat.assink2016``); moderator: deltype
(3 levels, treatment-coded).  Clusters = studies, es_id = esid.
"""

from __future__ import annotations

from multilevel_cases import MultilevelExample


class TestAssink2016(MultilevelExample):
    dataset = "assink2016"
