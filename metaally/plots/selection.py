"""The estimated selection function of a selection model (metafor's ``plot.rma.uni.selmodel``):
the relative likelihood of selection w(p) against the p-value, with the observed p-values as
a rug along the bottom.

For a step function w is drawn as steps (δ_1 = 1 in the first interval); for the
continuous types it is evaluated on a grid of p-values (Vevea & Hedges 1995; metafor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metaally.diagnostics.selection import SelectionModelResult
from metaally.plots import style

__all__ = [
    "selection_plot",
]


def selection_plot(
    result: SelectionModelResult,
    ax: Axes | None = None,
    *,
    pvalues: Any = None,
    title: str | None = None,
) -> Figure:
    """Draw the estimated selection function w(p), p in [0, 1], and return the Figure.

    ``pvalues``: observed p-values to show as a rug (e.g. those of the effects the model was
    fitted to); the line at w = 1 marks "no selection relative to the first interval".
    """
    if not isinstance(result, SelectionModelResult):
        raise ValueError("result must be a selection_model result")
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 4.0), layout="constrained")
        if result.type == "stepfun":
            edges = np.concatenate([[0.0], result.steps])
            ax.stairs(result.delta, edges, baseline=None, color=style.POOLED, linewidth=1.6,
                      label="estimated weight")
            top = float(np.max(result.delta))
        else:
            grid = np.linspace(0.0, 1.0, 1001)
            weight = result.weight(grid)
            ax.plot(grid, weight, color=style.POOLED, linewidth=1.6, label="estimated weight")
            top = float(np.max(weight[np.isfinite(weight)]))
        ax.axhline(1.0, color=style.GUIDE, linewidth=0.8, linestyle="--", zorder=0)
        if pvalues is not None:
            pv = np.asarray(pvalues, dtype=float)
            ax.plot(pv, np.zeros_like(pv), "|", color=style.INK, markersize=10,
                    label="observed p-values")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.15 * max(top, 1.0))
        sided = "two-sided" if result.alternative == "two.sided" else "one-sided"
        ax.set_xlabel(f"p-value ({sided})")
        ax.set_ylabel("relative likelihood of selection")
        ax.set_title(title if title is not None else f"Selection function ({result.type})")
        ax.legend(loc="lower right", frameon=False)
    return ax.figure
