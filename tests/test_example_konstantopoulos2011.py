"""CHE model, CR2/CR1 robust inference on konstantopoulos2011 against metafor + clubSandwich.

Konstantopoulos (2011), Research Synthesis Methods 2:61-76: 56 studies of
modified school calendars in 11 districts (metadat ``dat.konstantopoulos2011``); moderator: year,
centred.  Clusters = districts, es_id = school.
"""

from __future__ import annotations

from multilevel_cases import MultilevelExample


class TestKonstantopoulos2011(MultilevelExample):
    dataset = "konstantopoulos2011"
