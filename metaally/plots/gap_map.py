"""Evidence gap map: a matrix of where the evidence is and where it is missing.

Rows are the levels of one coding column (e.g. the component an intervention targets),
columns the levels of another (e.g. the component its outcome measures); each cell shows
how many studies and effects it holds and, where at least two studies allow pooling,
the pooled g with its confidence interval, coloured by g.  A cell with one study shows
that study's effect, marked as not pooled; an empty cell is left blank with a "no
studies" mark, and a row without any study says "no studies yet" across its width
(the way systematic-review groups draw gap maps, e.g. Snilstveit et al. 2016,
*J. Clin. Epidemiol.* 79:120–129).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from metaally.plots import style

__all__ = [
    "CMAP",
    "EMPTY",
    "GRID",
    "SINGLE",
    "color_scale",
    "evidence_gap_map",
]

CMAP = "BrBG"          # diverging: brown for harm, teal for benefit, pale near zero
EMPTY = "#ffffff"
SINGLE = "#ececec"     # one study: not pooled, not coloured by g
GRID = "#b8b8b8"
_NEEDED = ["row", "column", "k_studies", "k_effects", "estimate", "ci_low", "ci_high", "df"]


def evidence_gap_map(
    cells: pd.DataFrame,
    ax: Axes | None = None,
    *,
    row_title: str = "Component the intervention targets",
    column_title: str = "Component the outcome measures",
    title: str | None = None,
    limit: float | None = None,
    note: str | None = None,
    width: float = 9.0,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Draw an evidence gap map from ``cells`` (``pool_cells``' table) and return the Figure.

    Rows and columns appear in the order of the table.  Cells with ``k_studies`` >= 2
    are filled on a colour scale of the pooled g up to ``limit`` (default: the largest |g|
    rounded up to 0.25): diverging about 0 when the pooled values have both signs, one-sided
    when they do not (``color_scale``); a dagger marks intervals with fewer than 4 robust
    df.  Labels come from ``labels`` (a level's display name) or else ``level_label``;
    ``note`` is added to
    the key printed under the map.  ``width`` is the figure width in inches when ``ax`` is
    not given.
    """
    from metaally.models.pooling import level_label

    def label(name: str) -> str:
        return level_label(name, labels)

    missing = [c for c in _NEEDED if c not in cells.columns]
    if missing:
        raise ValueError(f"cells is missing column(s) {', '.join(missing)}")
    if cells.empty:
        raise ValueError("cells has no rows")
    rows = list(dict.fromkeys(cells["row"]))
    columns = list(dict.fromkeys(cells["column"]))
    grid = cells.set_index(["row", "column"])
    pooled = cells[cells["k_studies"] >= 2]["estimate"].to_numpy(dtype=float)
    if limit is None:
        top = np.nanmax(np.abs(pooled)) if np.isfinite(pooled).any() else 1.0
        limit = max(0.25, math.ceil(top / 0.25) * 0.25)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            fig, ax = plt.subplots(figsize=(width, 1.5 + 0.95 * len(rows)), layout="constrained")
        cmap, norm = color_scale(pooled, limit)
        unreliable = False
        for i, row in enumerate(rows):
            empty_row = int(grid.loc[row, "k_studies"].sum()) == 0
            for j, column in enumerate(columns):
                cell = grid.loc[(row, column)] if (row, column) in grid.index else None
                unreliable |= _draw_cell(ax, i, j, cell, cmap, norm, label_empty=not empty_row)
            if empty_row:
                ax.text((len(columns) - 1) / 2, i, "no studies yet", ha="center", va="center",
                        fontsize=10, fontstyle="italic", color=style.MUTED, zorder=4,
                        bbox={"facecolor": EMPTY, "edgecolor": "none", "pad": 3})
        _frame(ax, rows, columns, label, row_title, column_title)
        bar = ax.figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                                 fraction=0.035, pad=0.02)
        bar.set_label("Pooled Hedges' g (cells with ≥ 2 studies)")
        bar.outline.set_visible(False)
        ax.text(0.0, -0.03, _legend(unreliable, note), transform=ax.transAxes, ha="left",
                va="top", fontsize="small", color=style.MUTED)
        if title:
            ax.set_title(title, loc="left", pad=10)
    return ax.figure


def color_scale(values: np.ndarray, limit: float):
    """The colour map and its range for pooled g ``values``: the diverging map symmetric
    about 0 on [−limit, limit] when the values have both signs, only its benefit half on
    [0, limit] when none is negative (and its harm half on [−limit, 0] when none is
    positive), so the key never shows a range the data do not reach."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    full = colormaps[CMAP]
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() >= 0:
        return ListedColormap(full(np.linspace(0.5, 1.0, 128))), Normalize(0.0, limit)
    if finite.size and finite.max() <= 0:
        return ListedColormap(full(np.linspace(0.0, 0.5, 128))), Normalize(-limit, 0.0)
    return full, Normalize(-limit, limit)


def _draw_cell(ax: Axes, i: int, j: int, cell: pd.Series | None, cmap, norm: Normalize,
               label_empty: bool) -> bool:
    """Draw cell (row i, column j); return whether its CI is flagged unreliable."""
    k = 0 if cell is None else int(cell["k_studies"])
    effects = 0 if cell is None else int(cell["k_effects"])
    if k >= 2:
        colour = cmap(norm(float(cell["estimate"])))
    else:
        colour = SINGLE if k == 1 else EMPTY
    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=colour, edgecolor=GRID,
                           linewidth=0.8, hatch="////" if k == 0 else None, zorder=1))
    if k == 0:
        ax.patches[-1].set_edgecolor("#e3e3e3")
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=GRID,
                               linewidth=0.8, zorder=2))
        if label_empty:
            ax.text(j, i, "no studies", ha="center", va="center", fontstyle="italic",
                    color=style.MUTED, zorder=4,
                    bbox={"facecolor": EMPTY, "edgecolor": "none", "pad": 1.5})
        return False
    counts = f"{k} {'study' if k == 1 else 'studies'} · {effects} effect{'s' * (effects > 1)}"
    ink = _ink(colour)
    if k == 1:
        ax.text(j, i - 0.2, counts, ha="center", va="center", color=style.INK, zorder=4)
        ax.text(j, i + 0.17, f"g = {style.number(cell['estimate'])}\none study, not pooled",
                ha="center", va="center", fontsize="small", fontstyle="italic",
                color=style.MUTED, linespacing=1.25, zorder=4)
        return False
    flagged = bool(cell["df"] < 4) if not math.isnan(float(cell["df"])) else False
    ax.text(j, i - 0.25, f"g = {style.number(cell['estimate'])}", ha="center", va="center",
            fontsize=10, fontweight="bold", color=ink, zorder=4)
    ax.text(j, i + 0.02, f"[{style.number(cell['ci_low'])}, {style.number(cell['ci_high'])}]"
            + ("†" if flagged else ""), ha="center", va="center", color=ink, zorder=4)
    ax.text(j, i + 0.28, counts, ha="center", va="center", fontsize="small", color=ink,
            zorder=4)
    return flagged


def _frame(ax: Axes, rows: list[str], columns: list[str], label, row_title: str,
           column_title: str) -> None:
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_aspect("auto")
    ax.set_xticks(range(len(columns)), [_wrap(label(c)) for c in columns])
    ax.set_yticks(range(len(rows)), [_wrap(label(r)) for r in rows])
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel(column_title, labelpad=8, fontweight="bold")
    ax.set_ylabel(row_title, labelpad=8, fontweight="bold")
    ax.tick_params(length=0, labelsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _legend(unreliable: bool, note: str | None) -> str:
    lines = ["Each cell: pooled g [95% CI] and the numbers of studies and effects; grey: one "
             "study, not pooled; hatched: no studies.",
             "A study counts in every cell its coding names, so cells share studies."]
    if unreliable:
        lines.append("† fewer than 4 robust degrees of freedom: the CI is unreliable.")
    if note:
        lines.append(note)
    return "\n".join(lines)


def _wrap(text: str) -> str:
    """Break a two-word label over two lines ("Story video" -> two lines)."""
    head, _, tail = text.partition(" ")
    return f"{head}\n{tail}" if tail and len(text) > 12 else text


def _ink(colour) -> str:
    """Black or white text, whichever reads on ``colour`` (relative luminance)."""
    if isinstance(colour, str):
        return style.INK
    r, g, b = colour[:3]
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 else style.INK

