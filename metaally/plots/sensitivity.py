"""Sensitivity plot: the pooled estimate and 95% CI of each level under every scenario.

One panel per component (dot and whisker per scenario), scenarios on the y axis grouped
under bold headings, the default analysis first and drawn in the pooled colour, a solid
reference line at the default estimate with its CI shaded, a dashed line at 0.  A hollow
marker flags an interval that is unreliable (robust df < 4) or a single study's own effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from metaally.diagnostics.sensitivity import DEFAULT_GROUP, unreliable_df
from metaally.models.pooling import level_label
from metaally.plots import style

__all__ = [
    "sensitivity_plot",
]

_ROW_INCHES = 0.19
_LABEL_INCHES = 2.0
_PANEL_INCHES = 1.9
_EMPTY_PANEL = 0.45  # width of a panel without studies, relative to the others
_NEEDED = ["scenario", "scenario_group", "component", "k_studies", "estimate", "ci_low",
           "ci_high", "df"]


def sensitivity_plot(
    frame: pd.DataFrame,
    ax: Axes | Sequence[Axes] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Dot-and-whisker plot of ``sensitivity_analysis`` output; returns the Figure.

    ``ax``: ``None`` (a new figure, one panel per level sharing the y axis), or one
    Axes per level of ``frame`` in order of appearance.  Scenarios keep the order of
    the frame, grouped by ``scenario_group``; the group "Default" holds the reference
    analysis.  A level without studies in every scenario shows "no studies yet".
    ``labels``: display names of the levels (default ``level_label``).
    """
    missing = [c for c in _NEEDED if c not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing column(s) {', '.join(missing)} "
                         "(use metaally.diagnostics.sensitivity.sensitivity_analysis)")
    if frame.empty:
        raise ValueError("the sensitivity frame has no rows")
    components = list(dict.fromkeys(frame["component"]))
    rows_shown, positions, kinds = _layout(frame)
    empty = [bool((frame.loc[frame["component"] == c, "k_studies"] == 0).all())
             for c in components]
    xlim = _limits(frame)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            widths = [_EMPTY_PANEL if e else 1.0 for e in empty]
            fig, axes = plt.subplots(
                1, len(components), sharey=True, squeeze=False, layout="constrained",
                figsize=(_LABEL_INCHES + _PANEL_INCHES * sum(widths),
                         1.3 + _ROW_INCHES * len(rows_shown)),
                gridspec_kw={"width_ratios": widths},
            )
            axes = list(axes[0])
        else:
            axes = [ax] if isinstance(ax, Axes) else list(ax)
            if len(axes) != len(components):
                raise ValueError(f"ax must hold one Axes per component ({len(components)}), "
                                 f"got {len(axes)}")
            fig = axes[0].figure
        for i, (panel, component, is_empty) in enumerate(
            zip(axes, components, empty, strict=True)
        ):
            rows = frame[frame["component"] == component]
            _panel(panel, rows, positions, is_empty, xlim)
            panel.set_ylim(len(rows_shown) - 0.4, -0.6)
            panel.tick_params(axis="y", length=0, labelleft=i == 0)
            panel.set_title(_title(component, rows, labels), loc="center")
            if not is_empty:
                panel.set_xlabel("Hedges' g")
        axes[0].set_yticks(range(len(rows_shown)), rows_shown)
        for tick, kind in zip(axes[0].get_yticklabels(), kinds, strict=True):
            if kind:
                tick.set_fontweight("bold")
                tick.set_color(style.POOLED if kind == "default" else style.MUTED)
        if ax is None:
            fig.suptitle("How the pooled estimates (95% CI) change with the analysis choices",
                         x=0.01, ha="left", fontweight="bold", fontsize=10)
            _legend(fig)
    return fig


def _layout(frame: pd.DataFrame) -> tuple[list[str], dict[str, int], list[str]]:
    """Row labels top to bottom (group headings, then their scenarios), the row of each
    scenario, and each row's kind: "heading", "default" (the default group's rows, which
    have no heading) or ""."""
    labels: list[str] = []
    kinds: list[str] = []
    positions: dict[str, int] = {}
    scenarios = frame.drop_duplicates("scenario")
    for group, members in scenarios.groupby("scenario_group", sort=False):
        is_default = group == DEFAULT_GROUP
        if not is_default:
            labels.append(str(group))
            kinds.append("heading")
        for name in members["scenario"]:
            positions[name] = len(labels)
            labels.append(str(name).capitalize() if is_default else str(name))
            kinds.append("default" if is_default else "")
    return labels, positions, kinds


def _panel(ax: Axes, rows: pd.DataFrame, positions: dict[str, int], empty: bool,
           xlim: tuple[float, float]) -> None:
    ax.set_xlim(xlim)
    for spine in ("left", "top", "right"):
        ax.spines[spine].set_visible(False)
    ax.spines["bottom"].set_color(style.MUTED)
    if empty:
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)
        ax.text(0.5, 0.5, "no studies\nyet", transform=ax.transAxes, ha="center",
                va="center", color=style.MUTED, style="italic")
        return
    ax.axvline(0.0, color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
    default = rows[rows["scenario_group"] == DEFAULT_GROUP]
    if len(default) and default["k_studies"].iloc[0] > 0:
        d = default.iloc[0]
        ax.axvspan(d["ci_low"], d["ci_high"], color=style.POOLED, alpha=0.07, linewidth=0,
                   zorder=0)
        ax.axvline(d["estimate"], color=style.POOLED, linewidth=0.9, alpha=0.7, zorder=1)
    shown = rows[rows["k_studies"] > 0]
    y = np.array([positions[s] for s in shown["scenario"]], dtype=float)
    is_default = (shown["scenario_group"] == DEFAULT_GROUP).to_numpy()
    colors = np.where(is_default, style.POOLED, style.INK)
    weak = (unreliable_df(shown) | (shown["k_studies"] == 1)).to_numpy()
    lo = np.maximum(shown["ci_low"].to_numpy(dtype=float), xlim[0])
    hi = np.minimum(shown["ci_high"].to_numpy(dtype=float), xlim[1])
    ax.hlines(y, lo, hi, colors=colors, linewidth=1.1, zorder=2)
    for clipped, side, marker in [(shown["ci_low"].to_numpy() < xlim[0], xlim[0], "<"),
                                  (shown["ci_high"].to_numpy() > xlim[1], xlim[1], ">")]:
        if clipped.any():
            ax.scatter(np.full(clipped.sum(), side), y[clipped], marker=marker, s=14,
                       c=colors[clipped], zorder=3, linewidths=0)
    est = shown["estimate"].to_numpy(dtype=float)
    size = np.where(is_default, 34.0, 22.0)
    shape_kw = {"zorder": 4, "linewidths": 1.0}
    ax.scatter(est[~weak], y[~weak], s=size[~weak], marker="o", c=colors[~weak], **shape_kw)
    ax.scatter(est[weak], y[weak], s=size[weak], marker="o", facecolors="white",
               edgecolors=colors[weak], **shape_kw)
    missing = rows.loc[rows["k_studies"] == 0, "scenario"]
    for name in missing:
        ax.text(0.0, positions[name], " no studies left", va="center", ha="left",
                color=style.MUTED, fontsize=7, style="italic")


def _limits(frame: pd.DataFrame) -> tuple[float, float]:
    """A shared x range covering every estimate and, within reason, every interval: an
    interval more than 1.5 widths of the estimates' spread beyond them is cut with an arrow."""
    est = frame["estimate"].to_numpy(dtype=float)
    est = est[np.isfinite(est)]
    if est.size == 0:
        return (-1.0, 1.0)
    lo = np.nanmin(frame["ci_low"].to_numpy(dtype=float))
    hi = np.nanmax(frame["ci_high"].to_numpy(dtype=float))
    spread = max(est.max() - est.min(), 0.25)
    lo = max(min(lo, 0.0), est.min() - 1.5 * spread)
    hi = min(max(hi, 0.0), est.max() + 1.5 * spread)
    pad = 0.04 * (hi - lo)
    return (math.floor((lo - pad) * 10) / 10, math.ceil((hi + pad) * 10) / 10)


def _title(component: str, rows: pd.DataFrame, labels: Mapping[str, str] | None) -> str:
    name = "All effects" if component == "overall" else level_label(component, labels)
    default = rows[rows["scenario_group"] == DEFAULT_GROUP]
    k = int(default["k_studies"].iloc[0]) if len(default) else int(rows["k_studies"].max())
    return f"{name}\n(k = {k} {'study' if k == 1 else 'studies'})"


def _legend(fig: Figure) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", color=style.POOLED, markersize=6, linewidth=1.1,
               label="default analysis (line: its estimate, band: its 95% CI)"),
        Line2D([], [], marker="o", color=style.INK, markersize=5, linewidth=1.1,
               label="alternative analysis, 95% CI"),
        Line2D([], [], marker="o", color=style.INK, markerfacecolor="white", markersize=5,
               linewidth=1.1, label="robust df < 4 (CI unreliable) or a single study"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False,
               fontsize=7.5)
