"""Rendering any pooled table: CSV files with one number format, Markdown tables.

Generic: a pooled table is what ``pool_by`` / ``pool_groups`` return, for any coding
column; level names go through ``level_label`` with the review's declared labels.
Numbers are formatted by ``metaally.models.printing`` (the one formatter of the
package); every file is written atomically (``metaally.data.files.atomic_write``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from metaally.data.files import atomic_write
from metaally.models.pooling import level_label
from metaally.models.printing import fmt_bounds, fmt_num, fmt_pvalue, is_missing

__all__ = ["FLOAT_FORMAT", "write_csv", "write_text", "markdown_table", "pooled_markdown",
           "fmt_p", "MISSING"]

FLOAT_FORMAT = "%.8g"
#: how a report shows a missing number
MISSING = "—"


def write_csv(frame: pd.DataFrame, path: str | Path, float_format: str = FLOAT_FORMAT) -> Path:
    """Write ``frame`` without index, floats as ``float_format`` (``%.8g``), "\\n" line
    ends (stable diffs), atomically."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False,
                                                       float_format=float_format,
                                                       lineterminator="\n"))


def write_text(text: str, path: str | Path) -> Path:
    """Write a UTF-8 text file (a Markdown report) atomically."""
    return atomic_write(path, text)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of the frame's cells as strings."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def fmt_p(p: float) -> str:
    """A p-value as reports write it: three decimals, "<0.001", "—" when missing."""
    return fmt_pvalue(p, 3, missing=MISSING, leading_zero=True)


def pooled_markdown(
    rows: pd.DataFrame,
    first: str,
    labels: Mapping[str, str] | None = None,
    level_column: str = "level",
) -> str:
    """Markdown table of pooled rows (``POOLED_COLUMNS``): level, studies, effects, g,
    95% CI, df, p, 95% PI, I² and note.  ``first`` heads the level column; an empty
    ``first`` makes a one-row "Pooled | All effects" table."""
    records = []
    for r in rows.to_dict("records"):
        empty = r["k_studies"] == 0
        records.append({
            first or "Pooled": level_label(str(r[level_column]), labels) if first
            else "All effects",
            "Studies": str(r["k_studies"]),
            "Effects": str(r["k_effects"]),
            "g": MISSING if empty else f"{r['estimate']:.2f}",
            "95% CI": MISSING if empty else fmt_bounds(r["ci_low"], r["ci_high"]),
            "df": fmt_num(r["df"], 1, missing=MISSING),
            "p": fmt_p(r["pvalue"]),
            "95% PI": fmt_bounds(r["pi_low"], r["pi_high"]),
            "I²": MISSING if is_missing(r["i2"]) else f"{r['i2']:.0f}%",
            "Note": str(r["note"]) if isinstance(r["note"], str) else "",
        })
    return markdown_table(pd.DataFrame(records))
