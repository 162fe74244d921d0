"""Shrinkage forest plots of a Bayesian meta-analysis (bayesmeta's ``forestplot``).

For every study: the observed effect with its confidence interval (black square; for a
study with several effects their composite, see ``BayesResult.shrinkage``) and,
just below it, the posterior of the study's true effect given all studies (the shrinkage
estimate: posterior median and equal-tailed credible interval, open circle); then the
posterior of mu (diamond: median and credible interval) and of a new study's effect (bar).
Observed estimates far from the rest move towards mu, the more so the less precise they are
and the smaller tau is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import norm

from metaally.plots import style

__all__ = [
    "SHRUNK",
    "shrinkage_panels",
    "shrinkage_plot",
]

SHRUNK = "#2e7d6b"   # posterior (shrunken) study effects
_ROW = 0.34          # inches per study (two lines)


def _rows(result: Any, labels: Mapping[Any, str] | None) -> tuple[list[str], np.ndarray]:
    table = result.shrinkage()
    names = [labels.get(s, str(s)) if labels else str(s) for s in table["study"]]
    z = norm.ppf(0.5 + result.level / 2)
    obs = np.column_stack([table["yi"], table["yi"] - z * table["sei"],
                           table["yi"] + z * table["sei"]])
    post = table[["median", "ci_low", "ci_high"]].to_numpy()
    return names, np.stack([obs, post])


def _draw(ax: Axes, result: Any, labels: Mapping[Any, str] | None, title: str | None,
          xlabel: str | None, xlim: tuple[float, float] | None) -> None:
    names, (obs, post) = _rows(result, labels)
    n = len(names)
    ys = -np.arange(n, dtype=float)
    for y, o, p in zip(ys, obs, post, strict=True):
        ax.plot(o[1:], [y + 0.15] * 2, color=style.INK, linewidth=0.9, solid_capstyle="butt")
        ax.scatter([o[0]], [y + 0.15], marker="s", s=18, color=style.INK, zorder=3, linewidths=0)
        ax.plot(p[1:], [y - 0.15] * 2, color=SHRUNK, linewidth=1.3, solid_capstyle="butt")
        ax.scatter([p[0]], [y - 0.15], marker="o", s=20, facecolor="white", edgecolor=SHRUNK,
                   zorder=3, linewidths=1.2)
    mu_lo, mu_hi = result.ci_low, result.ci_high
    y_mu, y_new = -n - 0.4, -n - 1.2
    ax.fill([mu_lo, result.estimate, mu_hi, result.estimate],
            [y_mu, y_mu + 0.3, y_mu, y_mu - 0.3], color=style.POOLED, linewidth=0, zorder=4)
    new = result.theta_new
    lo_new, hi_new = new.interval(result.level)
    ax.plot([lo_new, hi_new], [y_new] * 2, color=style.PREDICTION, linewidth=1.4,
            solid_capstyle="butt")
    ax.axvline(0.0, color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
    pct = f"{100 * result.level:g}%"
    ax.set_yticks([*ys, y_mu, y_new],
                  [*names, f"mean effect μ ({pct} CrI)", f"new study θ ({pct} interval)"])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(y_new - 0.8, 0.8)
    if xlim is not None:
        ax.set_xlim(*xlim)
    text = (f"μ: median {style.number(result.estimate)} [{style.number(mu_lo)}, "
            f"{style.number(mu_hi)}], P(μ > 0) = {result.prob_greater(0.0):.2f}")
    ax.set_title(f"{title}   {text}" if title else text, loc="left")
    if xlabel:
        ax.set_xlabel(xlabel)


def _legend(fig: Figure, level: float) -> None:
    from matplotlib.lines import Line2D

    pct = f"{100 * level:g}%"
    handles = [
        Line2D([], [], color=style.INK, marker="s", markersize=4, linewidth=0.9,
               label=f"observed ({pct} CI)"),
        Line2D([], [], color=SHRUNK, marker="o", markerfacecolor="white", markersize=4,
               linewidth=1.3, label=f"posterior, shrunken ({pct} CrI)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False,
               fontsize="small")


def _limits(results: Sequence[Any]) -> tuple[float, float]:
    values = [0.0]
    for res in results:
        _, (obs, post) = _rows(res, None)
        values += [*obs[:, 1:].ravel(), *post[:, 1:].ravel()]
        values += list(res.theta_new.interval(res.level))
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def shrinkage_plot(
    result: Any,
    ax: Axes | None = None,
    *,
    labels: Mapping[Any, str] | None = None,
    title: str | None = None,
    xlabel: str = "Hedges' g",
    width: float = 7.0,
) -> Figure:
    """Observed vs posterior (shrunken) study effects of a :class:`BayesResult`.

    ``labels`` maps the result's study ids to display names.  Returns the Figure.
    """
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            n = len(result.study)
            fig, ax = plt.subplots(figsize=(width, 1.4 + _ROW * (n + 2.5)), layout="constrained")
            _legend(fig, result.level)
        _draw(ax, result, labels, title, xlabel, _limits([result]))
    return ax.figure


def shrinkage_panels(
    results: Sequence[Any],
    titles: Sequence[str],
    *,
    labels: Mapping[Any, str] | None = None,
    xlabel: str = "Hedges' g",
    width: float = 7.0,
) -> Figure:
    """One shrinkage panel per result (e.g. per component), stacked on a shared x axis."""
    results = list(results)
    if not results:
        raise ValueError("shrinkage_panels needs at least one result")
    if len(titles) != len(results):
        raise ValueError(f"{len(titles)} titles for {len(results)} results")
    heights = [len(r.study) + 2.5 for r in results]
    xlim = _limits(results)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(
            len(results), 1, sharex=True, layout="constrained", squeeze=False,
            figsize=(width, 1.2 + _ROW * sum(heights) + 0.3 * len(results)),
            gridspec_kw={"height_ratios": heights},
        )
        for ax, res, title in zip(axes[:, 0], results, titles, strict=True):
            _draw(ax, res, labels, title, xlabel if ax is axes[-1, 0] else None, xlim)
        _legend(fig, results[0].level)
    return fig
