"""Funnel plots (metafor's ``funnel.rma``): effect sizes against their standard errors,
with pseudo-confidence regions ``center ± z_(1-α/2) · SE`` shaded for several levels.

Asymmetry in a funnel plot can reflect small-study effects (publication bias among
them) or genuine heterogeneity; it is a picture, not a test (Sterne et al. 2011,
*BMJ* 343:d4002).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy.stats import norm

from metaally.diagnostics.bias import TrimFillResult
from metaally.models.inputs import check_level, frame_yi_sei
from metaally.models.protocol import FittedModel
from metaally.models.univariate import random_effects
from metaally.plots import style

__all__ = [
    "funnel_plot",
]

_SHADES = ("#ffffff", "#e4e4e4", "#c8c8c8")   # innermost (smallest level) to outermost


def funnel_plot(
    result_or_frame: Any,
    ax: Axes | None = None,
    *,
    center: float | None = None,
    levels: Sequence[float] = (0.90, 0.95, 0.99),
    title: str | None = None,
    xlabel: str = "Hedges' g",
    center_label: str = "pooled estimate",
) -> Figure:
    """Draw a funnel plot (effect on x, standard error on y, inverted) and return the Figure.

    ``result_or_frame``: a fitted model result (``RandomEffectsResult``,
    ``MultilevelResult``, ``RobustResult``; its ``estimate`` is the default ``center``) or
    a DataFrame with ``yi`` and ``vi`` (or ``sei``); for a frame without ``center`` the fixed-effect
    (inverse-variance) mean is used.  ``levels`` are the pseudo-confidence levels whose
    regions ``center ± z · SE`` are shaded (at most three); ``center_label`` names the
    vertical line in the legend.

    A ``TrimFillResult`` (``trim_and_fill``) is drawn as metafor's ``funnel(trimfill(...))``:
    the observed effects as filled points, the k0 imputed ones as open circles, and the
    trim-and-fill adjusted estimate as a second, dashed centre line; the default ``center``
    is then the ``method`` random-effects estimate of the observed effects alone (with
    k0 = 0 nothing is filled and the plot is that of the observed effects).
    """
    filled = _filled(result_or_frame)
    if filled is not None:
        result_or_frame, filled_yi, filled_sei, adjusted = filled
        filled = filled if filled_yi.size else None
    yi, sei, estimate = _points(result_or_frame)
    if center is None:
        center = estimate if estimate is not None else float(np.sum(yi / sei**2) / np.sum(sei**-2))
    levels = sorted(check_level(lv, "levels") for lv in levels)
    if not 1 <= len(levels) <= len(_SHADES):
        raise ValueError(f"levels must be one to {len(_SHADES)} numbers between 0 and 1")
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            width = 7.5 if filled is None else 8.0  # the legend sits beside the plot
            fig, ax = plt.subplots(figsize=(width, 4.5), layout="constrained")
        all_yi = yi if filled is None else np.concatenate([yi, filled_yi])
        top = 1.08 * float(np.max(sei if filled is None else np.concatenate([sei, filled_sei])))
        se_grid = np.array([0.0, top])
        handles = []
        for level, shade in reversed(list(zip(levels, _SHADES, strict=False))):
            z = norm.ppf(0.5 + level / 2)
            ax.fill_betweenx(se_grid, center - z * se_grid, center + z * se_grid, color=shade,
                             edgecolor=style.GUIDE, linewidth=0.5, zorder=0)
            handles.append(Patch(facecolor=shade, edgecolor=style.GUIDE, linewidth=0.5,
                                 label=f"{level:.0%} pseudo-CI"))
        handles.insert(0, ax.axvline(center, color=style.POOLED, linewidth=1.0, zorder=1,
                                     label=f"{center_label} {style.number(center)}"))
        ax.axvline(0.0, color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=1)
        ax.scatter(yi, sei, s=22, color=style.INK, edgecolors="white", linewidths=0.5,
                   zorder=3, label="effect sizes")
        if filled is not None:
            handles[1:1] = [
                ax.axvline(adjusted, color=style.POOLED, linestyle=(0, (4, 2)), linewidth=1.0,
                           zorder=1, label=f"trim-and-fill estimate {style.number(adjusted)}"),
                ax.scatter(filled_yi, filled_sei, s=22, facecolors="white",
                           edgecolors=style.INK, linewidths=0.8, zorder=3,
                           label=f"filled by trim-and-fill ({filled_yi.size})"),
            ]
        z_out = norm.ppf(0.5 + levels[-1] / 2)
        low = min(float(np.min(all_yi)), center - z_out * top, 0.0)
        high = max(float(np.max(all_yi)), center + z_out * top)
        pad = 0.05 * (high - low)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(top, 0.0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Standard error")
        ax.spines["left"].set_visible(True)
        if title:
            ax.set_title(title, loc="left")
        lines = 1 if filled is None else 3
        # beside the plot, never over it: no corner of a funnel is reliably empty
        ax.legend(handles=[*handles[:lines], *handles[:lines - 1:-1]], frameon=False,
                  fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return ax.figure


def _filled(obj: Any) -> tuple[Any, np.ndarray, np.ndarray, float] | None:
    """For a trim-and-fill result: the ``method`` random-effects fit to the observed
    effects, the filled effects' yi and SE, and the adjusted estimate; else None."""
    if not isinstance(obj, TrimFillResult):
        return None
    mask = obj.filled_mask
    observed = random_effects(obj.yi_all[~mask], obj.vi_all[~mask], method=obj.method)
    return observed, obj.yi_all[mask], np.sqrt(obj.vi_all[mask]), float(obj.estimate)


def _points(obj: Any) -> tuple[np.ndarray, np.ndarray, float | None]:
    if isinstance(obj, pd.DataFrame):
        yi, sei = frame_yi_sei(obj)
        if sei is None:
            raise ValueError("the frame needs a vi or sei column")
        return yi, sei, None
    if isinstance(obj, FittedModel):
        return (np.asarray(obj.yi, dtype=float), np.sqrt(np.asarray(obj.vi, dtype=float)),
                float(obj.estimate))
    raise ValueError(
        "funnel_plot needs a fitted model result (random_effects, multilevel, .robust()), "
        f"a trim_and_fill result or a DataFrame with yi and vi/sei; got {type(obj).__name__}"
    )
