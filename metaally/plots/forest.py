"""Forest plots (metafor's ``forest.rma``): one row per study or effect with its CI, a
diamond for the pooled estimate with its prediction interval drawn through it.

``forest_plot`` accepts a ``PooledGroup`` (studies of one component …), a
``RandomEffectsResult``, a ``MultilevelResult`` (every effect, grouped by study) or a
DataFrame; ``forest_panels`` stacks several pooled groups over a shared x axis.
Marker area is proportional to the row's weight in the model (percent weights for
results; ``1/vi`` for frames without a ``weight`` column), with a small floor so that
light studies stay visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.stats import norm

from metaally.models.inputs import frame_yi_sei
from metaally.plots import style

_ROW_INCHES = 0.2
_MAX_MARKER = 110.0   # points^2 of the heaviest row
_MIN_MARKER = 6.0
_MODEL_LABELS = {
    "che": "Pooled (CHE, CR2 robust)",
    "aggregate": "Pooled (studies aggregated, RE)",
    "univariate": "Pooled (effects as independent)",
}


@dataclass(frozen=True)
class _Row:
    label: str
    yi: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    weight: float = math.nan
    header: bool = False


@dataclass(frozen=True)
class _Pooled:
    label: str
    estimate: float
    ci_low: float
    ci_high: float
    pi_low: float = math.nan
    pi_high: float = math.nan
    text: str = ""


def study_label(citation: Any, year: Any) -> str:
    """"Author et al. (year)": the citation, with the year appended unless already there."""
    text = str(citation).strip()
    if year is None or pd.isna(year) or f"({int(year)})" in text:
        return text
    return f"{text} ({int(year)})"


def forest_plot(
    result_or_frame: Any,
    ax: Axes | None = None,
    *,
    pooled: Any = None,
    group: str | None = None,
    label: str | None = None,
    title: str | None = None,
    xlabel: str = "Hedges' g",
    xlim: tuple[float, float] | None = None,
    level: float = 0.95,
    width: float = 7.0,
) -> Figure:
    """Draw a forest plot and return its Figure.

    ``result_or_frame``: a ``PooledGroup`` (one row per study: aggregated effect, CI,
    weight), a ``RandomEffectsResult``, a ``MultilevelResult`` (every effect grouped by
    study) or a DataFrame with ``yi`` and ``vi`` (or ``sei``, or ``ci_low``/``ci_high``),
    optionally ``weight`` and a label column.  For a frame, ``group`` names a column whose
    values become header rows (e.g. ``"study_id"``: effects grouped by study, headed
    "Author et al. (year)" when ``citation``/``year`` exist) and ``label`` the row-label
    column.  ``pooled`` (a result, ``PooledGroup`` or mapping with ``estimate``,
    ``ci_low``, ``ci_high``, optional ``pi_low``/``pi_high``/``label``/``text``) adds the
    diamond; results and groups supply their own.  Intervals use ``level``; ``width`` is
    the figure width in inches when ``ax`` is not given (the height follows the rows).
    """
    rows = _rows(result_or_frame, group, label, level)
    summary = _pooled(result_or_frame if pooled is None else pooled)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        if ax is None:
            n = len(rows) + (5 if summary is not None else 1)
            fig, ax = plt.subplots(figsize=(width, 0.9 + _ROW_INCHES * n), layout="constrained")
        _draw(ax, rows, summary, title, xlabel, xlim or _limits([(rows, summary)]),
              empty=_empty_note(result_or_frame))
    return ax.figure


def forest_panels(
    groups: Sequence[Any],
    titles: Sequence[str] | None = None,
    xlabel: str = "Hedges' g",
    width: float = 7.0,
) -> Figure:
    """Stack one forest panel per pooled group (e.g. per component) on a shared x axis.

    Each panel shows the group's studies, its diamond, prediction interval, k and
    heterogeneity; a group without studies shows "no studies yet".
    """
    groups = list(groups)
    if not groups:
        raise ValueError("forest_panels needs at least one group")
    titles = list(titles) if titles is not None else [_title(g) for g in groups]
    content = [(_rows(g, None, None, 0.95), _pooled(g)) for g in groups]
    heights = [len(r) + (5 if s is not None else 2) for r, s in content]
    xlim = _limits(content)
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(
            len(groups), 1, sharex=True, layout="constrained",
            figsize=(width, 0.7 + _ROW_INCHES * sum(heights) + 0.3 * len(groups)),
            gridspec_kw={"height_ratios": heights}, squeeze=False,
        )
        for ax, (rows, summary), group, title in zip(axes[:, 0], content, groups, titles,
                                                     strict=True):
            last = ax is axes[-1, 0]
            _draw(ax, rows, summary, title, xlabel if last else None, xlim,
                  empty=_empty_note(group))
    return fig


# --- normalising the input --------------------------------------------------------------


def _rows(obj: Any, group: str | None, label: str | None, level: float) -> list[_Row]:
    z = norm.ppf(0.5 + level / 2)
    if hasattr(obj, "studies") and hasattr(obj, "grouping"):
        studies = obj.studies
        return [
            _Row(study_label(s.citation, s.year), s.yi, s.ci_low, s.ci_high, s.weight)
            for s in studies.itertuples()
        ]
    if isinstance(obj, pd.DataFrame):
        frame = obj
    elif hasattr(obj, "yi") and hasattr(obj, "vi"):
        frame = _result_frame(obj)
        if hasattr(obj, "study") and group is None:
            group = "study"
    else:
        raise ValueError(
            "forest_plot needs a PooledGroup, a RandomEffectsResult, a MultilevelResult or a "
            f"DataFrame with yi and vi; got {type(obj).__name__}"
        )
    return _frame_rows(frame, group, label, z)


def _result_frame(res: Any) -> pd.DataFrame:
    yi = np.asarray(res.yi, dtype=float)
    frame = pd.DataFrame({"yi": yi, "vi": np.asarray(res.vi, dtype=float)})
    slab = getattr(res, "slab", None)
    es_id = getattr(res, "es_id", None)
    names = slab if slab is not None else es_id
    frame["label"] = (
        [str(s) for s in names] if names is not None else [str(i + 1) for i in range(len(yi))]
    )
    weights = getattr(res, "weights", None)
    if weights is not None:
        frame["weight"] = np.asarray(weights, dtype=float)
    study = getattr(res, "study", None)
    if study is not None:
        frame["study"] = np.asarray(study)
    return frame


def _frame_rows(frame: pd.DataFrame, group: str | None, label: str | None,
                z: float) -> list[_Row]:
    yi, se = frame_yi_sei(frame)
    if "ci_low" in frame and "ci_high" in frame:
        lo, hi = frame["ci_low"].to_numpy(dtype=float), frame["ci_high"].to_numpy(dtype=float)
        se = (hi - lo) / (2 * z)
    elif se is None:
        raise ValueError("the frame needs vi, sei or ci_low/ci_high columns")
    else:
        lo, hi = yi - z * se, yi + z * se
    weight = frame["weight"].to_numpy(dtype=float) if "weight" in frame else 1 / se**2
    labels = _labels(frame, label)
    if group is None:
        return [_Row(*row) for row in zip(labels, yi, lo, hi, weight, strict=True)]
    rows: list[_Row] = []
    keys = frame[group].to_numpy()
    for key in dict.fromkeys(keys):
        members = np.flatnonzero(keys == key)
        first = frame.iloc[members[0]]
        header = (study_label(first["citation"], first.get("year"))
                  if "citation" in frame else str(key))
        rows.append(_Row(header, header=True))
        rows += [_Row(labels[i], yi[i], lo[i], hi[i], weight[i]) for i in members]
    return rows


def _labels(frame: pd.DataFrame, label: str | None) -> list[str]:
    if label is not None:
        return [_shorten(str(v)) for v in frame[label]]
    if "label" in frame:
        return [str(v) for v in frame["label"]]
    if "citation" in frame:
        return [study_label(c, y) for c, y in zip(frame["citation"], frame.get(
            "year", pd.Series(np.nan, index=frame.index)), strict=True)]
    return [str(i) for i in frame.index]


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _pooled(obj: Any) -> _Pooled | None:
    if obj is None or isinstance(obj, pd.DataFrame):
        return None
    if hasattr(obj, "studies") and hasattr(obj, "grouping"):
        if obj.k_studies == 0:
            return None
        label = ("One study (not pooled)" if obj.k_studies == 1
                 else _MODEL_LABELS.get(obj.model, "Pooled"))
        return _Pooled(label, obj.estimate, obj.ci_low,
                       obj.ci_high, obj.pi_low, obj.pi_high, _group_text(obj))
    if isinstance(obj, dict | pd.Series):
        get = obj.get
        return _Pooled(get("label", "Pooled"), get("estimate"), get("ci_low"), get("ci_high"),
                       get("pi_low", math.nan), get("pi_high", math.nan), get("text", ""))
    if hasattr(obj, "sigma2_study"):
        text = (f"k = {obj.k} effects in {obj.n_clusters} studies; "
                f"σ²(study) = {obj.sigma2_study:.3f}, σ²(within) = {obj.sigma2_within:.3f}")
        return _Pooled("Pooled (CHE model)", obj.estimate, obj.ci_low, obj.ci_high,
                       obj.pi_low, obj.pi_high, text)
    if hasattr(obj, "tau2"):
        text = f"k = {obj.k}; τ² = {obj.tau2:.3f}; I² = {obj.i2:.0f}%"
        return _Pooled("Pooled (RE model)", obj.estimate, obj.ci_low, obj.ci_high,
                       obj.pi_low, obj.pi_high, text)
    raise ValueError(f"cannot draw a pooled estimate from {type(obj).__name__}")


def _group_text(g: Any) -> str:
    studies = f"{g.k_studies} {'study' if g.k_studies == 1 else 'studies'}"
    effects = f"{g.k_effects} {'effect' if g.k_effects == 1 else 'effects'}"
    first = [f"k = {studies}, {effects}"]
    if g.k_studies == 1:
        return "; ".join([*first, "one study: no heterogeneity"])
    second = []
    if not math.isnan(g.df):
        first.append(f"df = {g.df:.1f}" + (" (robust CI unreliable)" if g.df < 4 else ""))
    if not math.isnan(g.i2):
        first.append(f"I² = {g.i2:.0f}%")
    if not math.isnan(g.sigma2_within):
        second.append(f"σ²(study) = {g.sigma2_study:.3f}, σ²(within) = {g.sigma2_within:.3f}")
    else:
        second.append(f"τ² = {g.sigma2_study:.3f}")
    return "; ".join(first) + "\n" + "; ".join(second)


def _empty_note(obj: Any) -> str | None:
    if hasattr(obj, "studies") and hasattr(obj, "grouping") and obj.k_studies == 0:
        return "no studies yet"
    return None


def _title(g: Any) -> str:
    from metaally.models.pooling import level_label

    return getattr(g, "label", "") or level_label(str(getattr(g, "level", "")))


def _limits(content: list[tuple[list[_Row], _Pooled | None]]) -> tuple[float, float]:
    """x range covering 0, every study's CI and every pooled CI; prediction intervals
    reaching beyond it are cut at the edge with an arrowhead (as metafor's ``alim``)."""
    values = [0.0]
    for rows, summary in content:
        values += [v for r in rows for v in (r.ci_low, r.ci_high)]
        if summary is not None:
            values += [summary.ci_low, summary.ci_high]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) == 1:  # nothing but the zero line: a neutral range
        return -0.5, 1.0
    lo, hi = min(finite), max(finite)
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


# --- drawing ----------------------------------------------------------------------------


def _prediction_line(ax: Axes, lo: float, hi: float, y: float,
                     xlim: tuple[float, float]) -> None:
    """The prediction interval as a line, cut at the axis edges with an arrowhead."""
    left, right = max(lo, xlim[0]), min(hi, xlim[1])
    ax.plot([left, right], [y, y], color=style.PREDICTION, linewidth=1.4, zorder=2,
            solid_capstyle="butt")
    inset = 0.012 * (xlim[1] - xlim[0])  # keep the arrowhead inside, clear of the labels
    for cut, tip, marker in ((lo < xlim[0], left + inset, "<"), (hi > xlim[1], right - inset, ">")):
        if cut:
            ax.plot([tip], [y], marker=marker, color=style.PREDICTION, markersize=5, zorder=2)


def _fmt(est: float, lo: float, hi: float) -> str:
    return f"{style.number(est)} [{style.number(lo)}, {style.number(hi)}]"


def _draw(ax: Axes, rows: list[_Row], summary: _Pooled | None, title: str | None,
          xlabel: str | None, xlim: tuple[float, float], empty: str | None) -> None:
    ax.set_xlim(*xlim)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 2.5, 5, 10]))
    ax.tick_params(axis="y", length=0)
    ax.spines["bottom"].set_color(style.MUTED)
    if title:
        ax.set_title(title, loc="left")
    if xlabel:
        ax.set_xlabel(xlabel)
    if empty is not None:
        ax.axvline(0.0, color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center",
                fontstyle="italic", color=style.MUTED)
        return
    ys = -np.arange(len(rows), dtype=float)
    weights = np.array([r.weight for r in rows if not r.header], dtype=float)
    wmax = np.nanmax(weights) if weights.size and np.isfinite(weights).any() else 1.0
    right: list[str] = []
    for y, row in zip(ys, rows, strict=True):
        if row.header:
            right.append("")
            continue
        ax.plot([row.ci_low, row.ci_high], [y, y], color=style.INK, linewidth=0.9,
                solid_capstyle="butt", zorder=2)
        size = _MAX_MARKER * row.weight / wmax if math.isfinite(row.weight) else _MAX_MARKER / 3
        ax.scatter([row.yi], [y], s=max(size, _MIN_MARKER), marker="s", color=style.INK,
                   linewidths=0, zorder=3)
        right.append(_fmt(row.yi, row.ci_low, row.ci_high))
    ticks, labels = list(ys), [r.label for r in rows]
    bottom = ys[-1] if len(ys) else 0.0
    guide_end = bottom - 0.8
    if summary is not None:
        y = bottom - 1.3
        guide_end = y - 0.6
        if math.isfinite(summary.pi_low) and math.isfinite(summary.pi_high):
            _prediction_line(ax, summary.pi_low, summary.pi_high, y, xlim)
        ax.fill([summary.ci_low, summary.estimate, summary.ci_high, summary.estimate],
                [y, y + 0.38, y, y - 0.38], color=style.POOLED, zorder=4, linewidth=0)
        ticks.append(y)
        labels.append(summary.label)
        right.append(_fmt(summary.estimate, summary.ci_low, summary.ci_high))
        lines = summary.text.split("\n") if summary.text else []
        if math.isfinite(summary.pi_low) and math.isfinite(summary.pi_high):
            pi = _fmt(summary.estimate, summary.pi_low, summary.pi_high).split(" ", 1)[1]
            lines.append(f"95% prediction interval {pi} (red line)")
        for i, line in enumerate(lines):
            ax.text(0.0, y - 1.0 - 0.85 * i, line, transform=ax.get_yaxis_transform(),
                    ha="left", va="center", fontsize="small", color=style.MUTED)
        bottom = y - 0.15 - 0.85 * max(len(lines), 1)
    ax.plot([0.0, 0.0], [0.8, guide_end],
            color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
    ax.set_ylim(bottom - 0.8, 0.8)
    ax.set_yticks(ticks, labels)
    for tick, row in zip(ax.get_yticklabels(), rows, strict=False):
        if row.header:
            tick.set_fontweight("bold")
    if summary is not None:
        ax.get_yticklabels()[-1].set_fontweight("bold")
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    twin.set_yticks(ticks, right)
    twin.tick_params(axis="y", length=0)
    for spine in twin.spines.values():
        spine.set_visible(False)
