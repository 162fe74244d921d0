"""Formatting shared by every result object's printout.

Printouts follow metafor's ``print.rma``: numbers to a fixed number of digits,
p-values below 1e-4 shown as ``<.0001``.
"""

from __future__ import annotations

import html
import math


def fmt_num(x: float, digits: int = 4) -> str:
    """Format a number with ``digits`` decimals; NaN prints as ``NA`` (as in R)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return f"{x:.{digits}f}"


def fmt_pvalue(p: float, digits: int = 4) -> str:
    """Format a p-value as metafor does: ``<.0001`` below 10^-digits."""
    if p is None or math.isnan(p):
        return "NA"
    if p < 10.0**-digits:
        return "<." + "0" * (digits - 1) + "1"
    return f"{p:.{digits}f}"


class Printable:
    """Mixin: ``str()`` and the notebook view of a result are its ``summary()``."""

    def summary(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"
