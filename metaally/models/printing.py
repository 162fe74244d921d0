"""Formatting shared by every result object's printout.

Printouts follow metafor's ``print.rma``: numbers to a fixed number of digits,
p-values below 1e-4 shown as ``<.0001``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COEF_COLUMNS",
    "MINUS",
    "Printable",
    "coef_frame",
    "coef_table",
    "fields_frame",
    "fmt_bounds",
    "fmt_count",
    "fmt_interval",
    "fmt_num",
    "fmt_pvalue",
    "is_missing",
    "model_results",
    "pvalue_phrase",
]



MINUS = "\u2212"
"""The typographic minus sign figures use (``fmt_num(x, minus=MINUS)``)."""


def is_missing(x: object) -> bool:
    """Whether a cell is missing: ``None``, NaN or ``pd.NA``."""
    if x is None:
        return True
    try:
        return bool(x != x)  # NaN (float or numpy) is the only value unequal to itself
    except TypeError:  # pd.NA
        return True


def fmt_num(x: float | None, digits: int = 4, minus: str = "-", missing: str = "NA") -> str:
    """Format a number with ``digits`` decimals; a missing value prints as ``missing``
    (``NA`` as in R's printouts; reports pass "—"), and a value that rounds to zero as
    unsigned zero (never "-0.00").

    The one number formatter of printouts, tables and figures (figures pass
    ``minus=MINUS`` for a typographic minus sign).
    """
    if is_missing(x):
        return missing
    text = f"{float(x):.{digits}f}"
    if text.startswith("-") and float(text) == 0.0:  # never "-0.00"
        text = text[1:]
    return text if minus == "-" else text.replace("-", minus)


def fmt_bounds(low: float, high: float, digits: int = 2, minus: str = "-",
               missing: str = "—") -> str:
    """``[low, high]``, each bound by :func:`fmt_num`; ``missing`` when either is missing."""
    if is_missing(low) or is_missing(high):
        return missing
    return f"[{fmt_num(low, digits, minus)}, {fmt_num(high, digits, minus)}]"


def fmt_interval(
    estimate: float, low: float, high: float, digits: int = 4, minus: str = "-"
) -> str:
    """``estimate [low, high]``, each number by :func:`fmt_num`."""
    return (f"{fmt_num(estimate, digits, minus)} "
            f"[{fmt_num(low, digits, minus)}, {fmt_num(high, digits, minus)}]")


def fmt_pvalue(p: float, digits: int = 4, missing: str = "NA", leading_zero: bool = False) -> str:
    """Format a p-value with ``digits`` decimals; below 10^-digits as metafor does,
    ``<.0001`` (or ``<0.001`` with ``leading_zero`` and 3 digits, as reports write it)."""
    if is_missing(p):
        return missing
    if p < 10.0**-digits:
        return ("<0." if leading_zero else "<.") + "0" * (digits - 1) + "1"
    return f"{p:.{digits}f}"


def fmt_count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 study", "2 studies", "0 studies": a count with its noun in the right number
    (regular plurals: a final "y" after a consonant becomes "ies", else "s" is added)."""
    if n == 1:
        return f"{n} {noun}"
    if plural is None:
        consonant_y = noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u")
        plural = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{n} {plural}"



class Printable:
    """Mixin: ``str()`` and the notebook view of a result are its ``summary()``."""

    def summary(self) -> str:  # pragma: no cover - overridden
        """The printout a reviewer reads (each result class writes its own)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"


def fields_frame(result: object, fields: Sequence[str]) -> pd.DataFrame:
    """One-row tidy DataFrame of ``result``'s named ``fields``, in that order (``to_frame``)."""
    import pandas as pd

    return pd.DataFrame([{name: getattr(result, name) for name in fields}], columns=list(fields))


COEF_COLUMNS = ("term", "estimate", "se", "stat", "df", "pvalue", "ci_low", "ci_high")
"""Leading columns of every fitted model's ``to_frame()`` (the result protocol)."""


def coef_frame(coef: pd.DataFrame, df: float | None = None, **extra: Any) -> pd.DataFrame:
    """A model's ``to_frame()``: one row per coefficient with :data:`COEF_COLUMNS` (``df``
    from the ``coef`` column, else the scalar ``df``), then the ``extra`` model statistics
    (scalars, repeated on every row) in the order given."""
    frame = coef.rename_axis("term").reset_index()
    if "df" not in frame:
        frame["df"] = df
    frame = frame[list(COEF_COLUMNS)]
    for name, value in extra.items():
        frame[name] = value
    return frame


def pvalue_phrase(p: float, digits: int = 4) -> str:
    """``p-val < .0001`` or ``p-val = 0.0289``, as metafor's printouts word it."""
    text = fmt_pvalue(p, digits)
    return f"p-val {'< ' + text[1:] if text.startswith('<') else '= ' + text}"


def coef_table(coef: pd.DataFrame, stat_label: str = "zval", digits: int = 4) -> str:
    """metafor-style table of a coefficient DataFrame.

    ``coef`` has columns estimate, se, stat, pvalue, ci_low, ci_high (and an
    optional df), one row per coefficient; significance stars as in R.
    """
    columns = ["estimate", "se", stat_label] + (["df"] if "df" in coef else [])
    columns += ["pval", "ci.lb", "ci.ub"]
    rows = [[""] + columns + [""]]
    for name, row in coef.iterrows():
        cells = [fmt_num(row["estimate"], digits), fmt_num(row["se"], digits),
                 fmt_num(row["stat"], digits)]
        if "df" in coef:
            cells.append(fmt_num(row["df"], 2))
        cells += [fmt_pvalue(row["pvalue"], digits), fmt_num(row["ci_low"], digits),
                  fmt_num(row["ci_high"], digits), _stars(row["pvalue"])]
        rows.append([str(name)] + cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        " ".join(cell.ljust(w) if i in (0, len(widths) - 1) else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in rows
    )


def model_results(
    coef: pd.DataFrame, stat_label: str, level: float, pi_low: float, pi_high: float
) -> list[str]:
    """The closing lines of a model printout: "Model Results:", the coefficient table and,
    when defined, the ``level`` prediction interval (metafor's ``print`` and ``predict``)."""
    lines = ["", "Model Results:", "", coef_table(coef, stat_label)]
    if not math.isnan(pi_low):
        lines += ["", f"{100 * level:g}% prediction interval: "
                      f"[{fmt_num(pi_low)}, {fmt_num(pi_high)}]"]
    return lines


def _stars(p: float) -> str:
    if math.isnan(p):
        return ""
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""
