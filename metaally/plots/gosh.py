"""GOSH plots (metafor's ``plot.gosh.rma``): the estimate of every subset fit against its
heterogeneity (I² by default), with the marginal distribution of each along the edges.

Olkin, Dahabreh & Trikalinos (2012), Res Synth Methods 3(3):214-223: a single cloud
suggests homogeneous studies; several clusters point at studies that drive the
heterogeneity.  ``out`` colours the subsets that contain one study (red) against those
that do not (blue), as metafor's ``out=`` argument, to show whether that study makes a
cluster.  Points are drawn with transparency n^(-0.2) as metafor does; above
:data:`HEXBIN_ABOVE` subsets a hexbin density replaces the scatter (unless ``out``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metaally.diagnostics.subsets import gosh
from metaally.models.protocol import FittedModel
from metaally.plots import style

__all__ = [
    "HEXBIN_ABOVE",
    "gosh_plot",
]

HEXBIN_ABOVE = 50_000
"""More subsets than this: draw a hexbin density instead of points (``kind="auto"``)."""

_HET = {"i2": "I² (%)", "h2": "H²", "q": "Q", "tau2": "τ²"}
_INCLUDED, _EXCLUDED = "#c0392b", "#1b4f8a"


def gosh_plot(
    result: Any,
    ax: Axes | None = None,
    *,
    het: str = "i2",
    kind: str = "auto",
    out: int | str | None = None,
    bins: int = 40,
    xlabel: str = "Estimate",
) -> Figure:
    """Draw the GOSH plot of a :class:`~metaally.diagnostics.subsets.GoshResult` (or of
    ``gosh(result)`` for a fitted random_effects result) and return the Figure.

    ``het``: the heterogeneity statistic on the y axis (i2, h2, q or tau2);
    ``kind``: "scatter", "hexbin" or "auto" (hexbin above :data:`HEXBIN_ABOVE`
    subsets); ``out``: a study (0-based position or its label) whose subsets are
    coloured apart; ``bins``: bins of the marginal histograms.  Marginal histograms
    are appended above and to the right of ``ax``.
    """
    if isinstance(result, FittedModel):  # a fitted model: its GOSH analysis first
        result = gosh(result)
    het = het.lower()
    if het not in _HET:
        raise ValueError(f"het must be one of {', '.join(_HET)}; got {het!r}")
    if het == "tau2" and result.method == "FE":
        raise ValueError("a fixed-effects GOSH has no tau^2 to plot")
    if kind not in ("auto", "scatter", "hexbin"):
        raise ValueError(f"kind must be 'auto', 'scatter' or 'hexbin'; got {kind!r}")
    x, y = np.asarray(result.estimate), np.asarray(getattr(result, het))
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    groups = [(x, y, style.INK)]
    if out is not None:
        inside = np.asarray(result.incl)[keep, _study_index(result, out)]
        groups = [(x[~inside], y[~inside], _EXCLUDED), (x[inside], y[inside], _INCLUDED)]
    if kind == "auto":
        kind = "hexbin" if x.size > HEXBIN_ABOVE and out is None else "scatter"

    plt = style.pyplot()
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    with plt.rc_context(style.RC):
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 5.5), layout="constrained")
        fig = ax.figure
        divider = make_axes_locatable(ax)
        top = divider.append_axes("top", size="25%", pad=0.05, sharex=ax)
        right = divider.append_axes("right", size="25%", pad=0.05, sharey=ax)
        if kind == "hexbin":
            ax.hexbin(x, y, gridsize=60, bins="log", cmap="Greys", mincnt=1, linewidths=0)
        else:
            alpha = float(min(1.0, x.size ** -0.2))
            for gx, gy, colour in groups:
                ax.scatter(gx, gy, s=4, color=colour, alpha=alpha, linewidths=0,
                           rasterized=x.size > 5000)
        x_edges = np.histogram_bin_edges(x, bins=bins)
        y_edges = np.histogram_bin_edges(y, bins=bins)
        for gx, gy, colour in groups:
            top.hist(gx, bins=x_edges, density=True, color=colour, alpha=0.5)
            right.hist(gy, bins=y_edges, density=True, color=colour, alpha=0.5,
                       orientation="horizontal")
        for margin in (top, right):
            margin.set_axis_off()
        ax.spines["left"].set_visible(True)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_HET[het])
        what = "all" if result.exact else "random"
        top.text(1.05, 0.5,
                 f"k = {result.k}\n{result.n_subsets:,} subsets\n({what})\n{result.method}",
                 transform=top.transAxes, va="center", ha="left", color=style.MUTED)
        if out is not None:
            name = result.slab[_study_index(result, out)]
            ax.scatter([], [], color=_INCLUDED, label=f"with {name}")
            ax.scatter([], [], color=_EXCLUDED, label=f"without {name}")
            ax.legend(frameon=False, loc="best", markerscale=2)
    return fig


def _study_index(result: Any, out: int | str) -> int:
    if isinstance(out, str):
        if out not in result.slab:
            raise ValueError(f"no study labelled {out!r}")
        return result.slab.index(out)
    if not 0 <= int(out) < result.k:
        raise ValueError(f"out must be a study position between 0 and {result.k - 1}; got {out!r}")
    return int(out)
