"""Cumulative forest plot (metafor's ``forest.cumul.rma``): one row per step of a
cumulative meta-analysis, the pooled estimate and CI after adding each study.

The last row is the analysis of all studies and is drawn in the pooled colour.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metaally.diagnostics.influence import cumulative
from metaally.models.printing import fmt_interval
from metaally.plots import style

__all__ = [
    "cumulative_plot",
]

_ROW_INCHES = 0.2


def cumulative_plot(
    result_or_frame: Any,
    ax: Axes | None = None,
    *,
    order: Any = None,
    title: str | None = None,
    xlabel: str = "Hedges' g",
) -> Figure:
    """Draw a cumulative forest plot and return its Figure.

    ``result_or_frame``: the DataFrame returned by :func:`metaally.cumulative`
    (columns ``added``, ``estimate``, ``ci_low``, ``ci_high``), or a fitted
    model result (``RandomEffectsResult``, ``MultilevelResult``, ``RobustResult``), whose
    cumulative analysis is computed with ``order`` (sort keys, see
    :func:`metaally.cumulative`).
    Row i is labelled "+ <study added>" and shows the estimate and CI of the
    first i studies.
    """
    frame = _frame(result_or_frame, order)
    n = len(frame)
    y = np.arange(n)[::-1]
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.9 + _ROW_INCHES * n), layout="constrained")
        colors = [style.INK] * (n - 1) + [style.POOLED]
        ax.axvline(0.0, color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
        ax.hlines(y, frame["ci_low"], frame["ci_high"], colors=colors, linewidth=0.9, zorder=2)
        ax.scatter(frame["estimate"], y, s=18, marker="o", c=colors, zorder=3)
        ax.set_yticks(y, [f"+ {label}" for label in frame["added"]])
        ax.set_ylim(-0.7, n - 0.3)
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        right.set_yticks(
            y,
            [fmt_interval(e, lo, hi, 2)
             for e, lo, hi in zip(frame["estimate"], frame["ci_low"], frame["ci_high"],
                                  strict=True)],
        )
        for axis in (ax, right):
            axis.tick_params(axis="y", length=0)
            axis.spines["left"].set_visible(False)
            axis.spines["right"].set_visible(False)
        ax.spines["bottom"].set_color(style.MUTED)
        ax.set_xlabel(xlabel)
        ax.set_title(title or "Cumulative meta-analysis", loc="left")
    return ax.figure


def _frame(obj: Any, order: Any) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        frame = obj
    else:
        frame = cumulative(obj, order=order)
    missing = {"added", "estimate", "ci_low", "ci_high"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"a cumulative frame needs the columns {', '.join(sorted(missing))} "
            "(as returned by metaally.cumulative)"
        )
    if frame.empty:
        raise ValueError("the cumulative frame has no rows")
    return frame
