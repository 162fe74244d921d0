"""Figures of a network meta-analysis: the network, the league table, every treatment vs the
reference, and the ranking (the figures netmeta's ``netgraph``, ``netleague``, ``forest`` and
``netrank`` draw; Rücker & Schwarzer 2015 for P-scores).

``network_graph`` takes the rows (study, treat1, treat2) so that a disconnected network is
drawn whole, each part in its own colour; the other three take a ``NetworkResult``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from metaally.models.network import NetworkResult, network_components
from metaally.plots import style

__all__ = [
    "CMAP",
    "league_heatmap",
    "network_edges",
    "network_forest",
    "network_graph",
    "ranking_plot",
]

_PART_COLOURS = ("#1b4f8a", "#b5651d", "#2e7d32", "#7b3f98", "#8c8c8c", "#c0392b")
CMAP = "BrBG"
#: league table: inches of figure per treatment, room for "[−0.88, −0.52]" at 6.5 pt (0.7 in)
#: in a cell once the labels and colour bar have theirs, and no more (was 1.15: ten
#: treatments made a 14.4 in figure, shown at 3/4 size in a report)
_CELL_INCHES = 0.9


def network_edges(study: Any, treat1: Any, treat2: Any) -> pd.DataFrame:
    """One row per pair of treatments observed together: ``treat_a``, ``treat_b`` (sorted) and
    ``n_studies``, the number of studies holding both (each study once, whatever its
    number of rows; a multi-arm study gives an edge between each pair of its arms).  A
    study comparing a treatment only with itself gives a pair (t, t)."""
    sets: dict[Any, set] = {}
    loops: dict[Any, set] = {}
    for s, a, b in zip(np.asarray(study, dtype=object), np.asarray(treat1, dtype=object),
                       np.asarray(treat2, dtype=object), strict=True):
        sets.setdefault(s, set()).update((str(a), str(b)))
        if a == b:
            loops.setdefault(s, set()).add(str(a))
    counts: dict[tuple[str, str], int] = {}
    for s, trts in sets.items():
        ordered = sorted(trts)
        pairs = [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]]
        pairs += [(t, t) for t in sorted(loops.get(s, set()))]
        for pair in pairs:
            counts[pair] = counts.get(pair, 0) + 1
    rows = [(a, b, n) for (a, b), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["treat_a", "treat_b", "n_studies"])


def network_graph(
    study: Any,
    treat1: Any,
    treat2: Any,
    participants: Mapping[str, float] | None = None,
    ax: Axes | None = None,
    *,
    labels: Callable[[str], str] | None = None,
    title: str | None = None,
    center: str | None = None,
    width: float = 7.0,
) -> Figure:
    """Draw the network: nodes on a circle (``center``, e.g. the reference of a star-shaped
    network, in the middle), each connected part in its own colour.

    Node area is proportional to ``participants[node]`` (else to the number of studies
    with that node); edge width to the number of studies comparing the two nodes
    (numbers printed on the edges).  A node compared only with itself gets a loop.
    Parts of a disconnected network are named in the legend.  ``labels`` maps a node
    to its printed label.
    """
    edges = network_edges(study, treat1, treat2)
    parts = network_components(treat1, treat2)
    nodes = [t for part in parts for t in part]
    if center is not None and center not in nodes:
        raise ValueError(f"center {center!r} is not a node of the network")
    label = labels or (lambda t: t)
    ring = [t for t in nodes if t != center]
    n = len(ring)
    angle = {t: math.pi / 2 - 2 * math.pi * (i + 0.5) / n for i, t in enumerate(ring)}
    pos = {t: (math.cos(a), math.sin(a)) for t, a in angle.items()}
    if center is not None:
        pos[center] = (0.0, 0.0)
    if participants is not None:
        size = np.array([float(participants.get(t, 0.0)) for t in nodes])
        size_note = "node area: participants"
    else:
        size = np.array([float(_studies_per_node(study, treat1, treat2).get(t, 0))
                         for t in nodes])
        size_note = "node area: studies"
    area = 120.0 + 1400.0 * size / max(size.max(), 1.0)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            fig, ax = plt.subplots(figsize=(width, width * 0.75), layout="constrained")
            _margin(fig)
        top = max(edges["n_studies"].max(), 1) if not edges.empty else 1
        placed: list[tuple[float, float]] = [pos[t] for t in nodes]  # numbers avoid these
        for row in edges.itertuples(index=False):
            lw = 1.0 + 5.0 * row.n_studies / top
            (xa, ya), (xb, yb) = pos[row.treat_a], pos[row.treat_b]
            if row.treat_a == row.treat_b:
                r = 0.16
                ax.add_patch(plt.Circle((xa * (1 + r), ya * (1 + r)), r, fill=False,
                                        lw=lw, color=style.GUIDE, zorder=1))
                continue
            ax.plot([xa, xb], [ya, yb], color=style.GUIDE, lw=lw, zorder=1,
                    solid_capstyle="round")
            # the number sits off the hub, nearer the outer node, and clear of the nodes
            # and of the numbers already placed (crossing edges would stack them)
            where = {row.treat_a: 0.65, row.treat_b: 0.35}.get(center, 0.5)
            x, y = _clear_spot(xa, ya, xb, yb, where, placed)
            placed.append((x, y))
            ax.text(x, y, str(row.n_studies),
                    ha="center", va="center", fontsize=7.5, color=style.MUTED, zorder=3,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
        colour = {t: _PART_COLOURS[min(i, len(_PART_COLOURS) - 1)]
                  for i, part in enumerate(parts) for t in part}
        ax.scatter([pos[t][0] for t in nodes], [pos[t][1] for t in nodes], s=area,
                   c=[colour[t] for t in nodes], zorder=2, edgecolors="white", linewidths=1.0)
        for t, a in zip(nodes, area, strict=True):
            x, y = pos[t]
            if t == center:
                ax.text(0.0, -0.1 - 0.1 * math.sqrt(a / area.max()), label(t), ha="center",
                        va="top", fontsize=8, color=style.INK, fontweight="bold", zorder=4,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                              "alpha": 0.85})
                continue
            looped = any((edges["treat_a"] == t) & (edges["treat_b"] == t))
            push = 1.5 if looped else 1.14 + 0.12 * math.sqrt(a / area.max())
            ax.text(x * push, y * push, label(t), ha="center" if abs(x) < 0.3 else
                    ("left" if x > 0 else "right"), va="center", fontsize=8, color=style.INK)
        if len(parts) > 1:
            for i, part in enumerate(parts):
                ax.scatter([], [], s=60, c=_PART_COLOURS[min(i, len(_PART_COLOURS) - 1)],
                           label=f"part {i + 1}: {len(part)} node{'s' * (len(part) > 1)}")
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, -0.02), frameon=False,
                      fontsize=7.5, title="not connected to each other",
                      title_fontsize=7.5)
        ax.set_xlim(-1.95, 1.95)
        ax.set_ylim(-1.45, 1.62)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.text(1.0, 0.0, f"{size_note}; edge width and number: studies",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color=style.MUTED)
        if title:
            ax.set_title(title, loc="left")
    return ax.figure


def _clear_spot(xa: float, ya: float, xb: float, yb: float, where: float,
                taken: list[tuple[float, float]], room: float = 0.13) -> tuple[float, float]:
    """The first point along the edge (a -> b), trying ``where`` then positions further
    from it, that is at least ``room`` (data units; the ring has radius 1) from every point
    in ``taken``; ``where`` itself when none is."""
    tries = [where] + [where + d for step in (0.1, 0.2, 0.3) for d in (step, -step)]
    for f in tries:
        if not 0.15 <= f <= 0.85:
            continue
        x, y = xa + f * (xb - xa), ya + f * (yb - ya)
        if all(math.hypot(x - u, y - v) >= room for u, v in taken):
            return x, y
    return xa + where * (xb - xa), ya + where * (yb - ya)


def _studies_per_node(study: Any, treat1: Any, treat2: Any) -> pd.Series:
    frame = pd.DataFrame({"study": np.asarray(study, dtype=object),
                          "t1": np.asarray(treat1, dtype=object),
                          "t2": np.asarray(treat2, dtype=object)})
    long = pd.concat([frame[["study", "t1"]].set_axis(["study", "t"], axis=1),
                      frame[["study", "t2"]].set_axis(["study", "t"], axis=1)])
    return long.drop_duplicates().groupby("t")["study"].size()


def _margin(fig: Figure) -> None:
    """A margin for text measured at the layout's 100 dpi but saved at 200 dpi, where the
    rendered text is a little wider."""
    fig.get_layout_engine().set(w_pad=0.12, h_pad=0.06)


def _fix_tick_fonts(ax: Axes) -> None:
    """Tick labels are created when drawn, after the style's rc_context has closed: give
    them the style's sizes now, so the saved figure is laid out with the sizes it shows."""
    ax.tick_params(axis="x", labelsize=style.RC["xtick.labelsize"])
    ax.tick_params(axis="y", labelsize=style.RC["ytick.labelsize"])


def _num(x: float, digits: int = 2) -> str:
    """``style.number`` without a negative zero."""
    return style.number(0.0 if round(float(x), digits) == 0 else x, digits)


def _order(res: NetworkResult, higher_is_better: bool) -> list[str]:
    """Treatments from the highest P-score down."""
    return list(res.pscores(higher_is_better).sort_values(ascending=False, kind="stable").index)


def league_heatmap(
    res: NetworkResult,
    ax: Axes | None = None,
    *,
    higher_is_better: bool = True,
    labels: Callable[[str], str] | None = None,
    title: str | None = None,
    measure: str = "Hedges' g",
    digits: int = 2,
) -> Figure:
    """League table as a heat map: cell (row, column) = row treatment minus column treatment
    with its CI, coloured by the estimate (diverging about 0); rows and columns ordered
    by P-score, so the best-ranked treatment is at the top left."""
    order = _order(res, higher_is_better)
    league = res.league_table().set_index(["treat1", "treat2"])
    n = len(order)
    values = np.full((n, n), np.nan)
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            if i != j:
                values[i, j] = league.loc[(a, b), "estimate"]
    label = labels or (lambda t: t)
    limit = max(float(np.nanmax(np.abs(values))), 1e-9)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            side = 1.3 + _CELL_INCHES * n
            fig, ax = plt.subplots(figsize=(side + 1.6, side), layout="constrained")
            _margin(fig)
        cmap = CMAP if higher_is_better else CMAP + "_r"  # teal: the row treatment is better
        image = ax.imshow(values, cmap=cmap, norm=TwoSlopeNorm(0.0, -limit, limit))
        for i, a in enumerate(order):
            for j, b in enumerate(order):
                if i == j:  # the names are on the axes; the diagonal is blank
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="#ececec"))
                    continue
                row = league.loc[(a, b)]
                strong = abs(values[i, j]) > 0.6 * limit
                ax.text(j, i, f"{_num(row['estimate'], digits)}\n"
                              f"[{_num(row['ci_low'], digits)}, {_num(row['ci_high'], digits)}]",
                        ha="center", va="center", fontsize=6.5,
                        color="white" if strong else style.INK)
        ax.set_xticks(range(n), [label(t) for t in order], rotation=35, ha="right")
        ax.set_yticks(range(n), [label(t) for t in order])
        _fix_tick_fonts(ax)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.6)
        better = "higher" if higher_is_better else "lower"
        bar.set_label(f"row minus column ({better} is better: teal = row better)")
        ax.set_title(title or f"League table: row minus column treatment, {measure} (95% CI)",
                     loc="left")
    return ax.figure


def network_forest(
    res: NetworkResult,
    ax: Axes | None = None,
    *,
    labels: Callable[[str], str] | None = None,
    xlabel: str = "Hedges' g",
    title: str | None = None,
    width: float = 6.5,
) -> Figure:
    """Every treatment vs the reference (network estimate and CI), largest effect on top."""
    coef = res.coef.sort_values("estimate", ascending=True, kind="stable")
    label = labels or (lambda t: t)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            fig, ax = plt.subplots(figsize=(width, 1.2 + 0.38 * len(coef)),
                                   layout="constrained")
            _margin(fig)
        y = np.arange(len(coef))
        ax.hlines(y, coef["ci_low"], coef["ci_high"], color=style.INK, lw=1.2)
        ax.scatter(coef["estimate"], y, marker="s", s=36, color=style.POOLED, zorder=3)
        ax.axvline(0.0, color=style.GUIDE, lw=0.8, ls="--")
        ax.set_yticks(y, [label(t) for t in coef.index])
        ax.set_ylim(-0.7, len(coef) - 0.3)
        right = ax.twinx()  # the estimates as a text column (tick labels: laid out, not clipped)
        right.set_ylim(ax.get_ylim())
        right.set_yticks(y, [f"{_num(r.estimate)} [{_num(r.ci_low)}, {_num(r.ci_high)}]"
                             for r in coef.itertuples()])
        right.tick_params(axis="y", length=0, labelsize=7.5)
        _fix_tick_fonts(ax)
        for spine in right.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(f"{xlabel} vs {label(res.reference)} (network estimate, 95% CI)")
        ax.tick_params(axis="y", length=0)
        ax.set_title(title or f"Every treatment vs {label(res.reference)}", loc="left")
    return ax.figure


def ranking_plot(
    res: NetworkResult,
    ax: Axes | None = None,
    *,
    higher_is_better: bool = True,
    labels: Callable[[str], str] | None = None,
    title: str | None = None,
    width: float = 6.0,
) -> Figure:
    """P-scores (Rücker & Schwarzer 2015) as horizontal bars, best on top; 0.5 marked."""
    p = res.pscores(higher_is_better).sort_values(ascending=True, kind="stable")
    label = labels or (lambda t: t)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            fig, ax = plt.subplots(figsize=(width, 1.2 + 0.36 * len(p)), layout="constrained")
            _margin(fig)
        y = np.arange(len(p))
        ax.barh(y, p.to_numpy(), color=style.POOLED, height=0.6)
        for yi, value in zip(y, p.to_numpy(), strict=True):
            ax.text(value + 0.01, yi, f"{value:.2f}", va="center", fontsize=7.5, zorder=3,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"})
        ax.axvline(0.5, color=style.GUIDE, lw=0.8, ls="--")
        ax.set_yticks(y, [label(t) for t in p.index])
        ax.set_xlim(0, 1.08)
        ax.set_xlabel("P-score: mean certainty of beating another treatment")
        _fix_tick_fonts(ax)
        ax.tick_params(axis="y", length=0)
        better = "higher" if higher_is_better else "lower"
        ax.set_title(title or f"Ranking by P-score ({better} values better)", loc="left")
    return ax.figure
