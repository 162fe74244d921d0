"""Forest plots in the layout of RevMan 5 and metafor's ``forest.rma``.

One row per study or effect: a column of labels (wrapped, never truncated), optional
``n`` / number-of-effects columns, the plot region (a square whose area is proportional
to the row's weight, its confidence interval as a line, an arrowhead where the interval
leaves the axis), then ``g [95% CI]`` and ``Weight`` columns.  A pooled row adds a
diamond (only when at least two studies are pooled; a single study is its own row and
nothing is pooled) and a prediction-interval row drawn as a bar (Riley, Higgins & Deeks
2011, *BMJ* 342:d549).  "Favours control | Favours intervention" labels sit under the
zero line (Cochrane Handbook, ch. 10.10.1; RevMan 5).  The x range covers zero, every
row's interval and every pooled estimate; pooled intervals and prediction intervals that
reach beyond it are cut with an arrowhead, as metafor's ``alim`` does.

``forest_plot`` accepts a ``PooledGroup`` (studies of one component …), any fitted model
result (``RandomEffectsResult``; ``MultilevelResult`` or its ``.robust()`` result: every
effect, grouped by study, with the model's own diamond) or a DataFrame; ``forest_panels``
stacks several pooled groups over a shared x axis and ``forest_pages`` splits a long stack
over several pages.  Marker area is proportional to the row's weight in the model (percent
weights for results; ``1/vi`` for frames without a ``weight`` column, then no weight column
is printed).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation, blended_transform_factory
from scipy.stats import norm

from metaally.models.inputs import check_level, frame_yi_sei
from metaally.models.printing import MINUS, fmt_interval
from metaally.models.protocol import FittedModel, is_clustered
from metaally.plots import style

__all__ = [
    "forest_pages",
    "forest_panels",
    "forest_plot",
    "study_label",
]

_ROW_INCHES = 0.2       # one text line's row
_MAX_MARKER = 90.0      # points^2 of the heaviest row
_GAP = 0.14             # inches between columns
_PLOT_INCHES = 3.0      # minimum width of the plot region
_WRAP = 46              # characters per label line
_FAVOURS = ("Favours control", "Favours intervention")
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
    n: float = math.nan
    k: float = math.nan


@dataclass(frozen=True)
class _Pooled:
    label: str
    estimate: float
    ci_low: float
    ci_high: float
    pi_low: float = math.nan
    pi_high: float = math.nan
    text: str = ""


@dataclass(frozen=True)
class _Panel:
    title: str | None
    rows: list[_Row]
    summary: _Pooled | None
    empty: str | None
    notes: list[str] = field(default_factory=list)
    weighted: bool = True


@dataclass(frozen=True)
class _Columns:
    """Widths (inches) of the text columns left and right of the plot region."""

    label: float
    n: float
    k: float
    estimate: float
    weight: float
    wrap: int

    @property
    def left(self) -> float:
        return self.label + self.n + self.k

    @property
    def right(self) -> float:
        return self.estimate + self.weight


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
    favours: tuple[str, str] | None = _FAVOURS,
) -> Figure:
    """Draw a forest plot and return its Figure.

    ``result_or_frame``: a ``PooledGroup`` (one row per study: aggregated effect, CI,
    weight), a ``RandomEffectsResult``, a ``MultilevelResult`` (every effect grouped by
    study) or a DataFrame with ``yi`` and ``vi`` (or ``sei``, or ``ci_low``/``ci_high``),
    optionally ``weight``, ``n`` and a label column.  For a frame, ``group`` names a
    column whose values become header rows (e.g. ``"study_id"``: effects grouped by study,
    headed "Author et al. (year)" when ``citation``/``year`` exist) and ``label`` the
    row-label column (wrapped over several lines, never truncated).  ``pooled`` (a
    result, ``PooledGroup`` or mapping with ``estimate``, ``ci_low``, ``ci_high``, optional
    ``pi_low``/``pi_high``/``label``/``text``) adds the diamond; results and groups supply
    their own.  Intervals use ``level``; ``width`` is the minimum figure width in inches
    when ``ax`` is not given (the text columns widen it as needed, the height follows the
    rows).  ``favours`` labels the two sides of zero (``None``: no labels).  With ``ax``
    given, the text columns are drawn outside it, to its left and right: leave them room.
    """
    panel = _panel(result_or_frame, title, pooled, group, label, check_level(level))
    limits = xlim or _limits([panel])
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        columns = _columns([panel])
        if ax is None:
            fig = _figure(plt, [panel], columns, width, favours)
            ax = _axes_for(fig, [panel], columns, favours)[0]
        _draw(ax, panel, columns, limits, xlabel, favours, level)
    return ax.figure


def forest_panels(
    groups: Sequence[Any],
    titles: Sequence[str] | None = None,
    xlabel: str = "Hedges' g",
    width: float = 7.0,
    favours: tuple[str, str] | None = _FAVOURS,
) -> Figure:
    """Stack one forest panel per pooled group (e.g. per component) on a shared x axis.

    Each panel shows the group's studies, its diamond (k >= 2 studies), prediction
    interval, k and heterogeneity; a group without studies shows "no studies yet".
    A study's row in a panel combines only its effects in that group, so one study can
    show different intervals in two panels (the figure says so).
    """
    groups = list(groups)
    if not groups:
        raise ValueError("forest_panels needs at least one group")
    titles = list(titles) if titles is not None else [_title(g) for g in groups]
    if len(titles) != len(groups):
        raise ValueError("titles must have one entry per group")
    panels = [_panel(g, t, None, None, None, 0.95) for g, t in zip(groups, titles, strict=True)]
    return _stack(panels, _limits(panels), xlabel, width, favours, _panels_note(groups))


def forest_pages(
    groups: Sequence[Any],
    titles: Sequence[str] | None = None,
    xlabel: str = "Hedges' g",
    width: float = 7.0,
    favours: tuple[str, str] | None = _FAVOURS,
    max_rows: int = 40,
) -> list[Figure]:
    """``forest_panels`` split over pages of at most about ``max_rows`` rows each (a
    panel is never split); every page shares one x range, so pages compare directly.
    Save them with ``save_pages``."""
    groups = list(groups)
    if not groups:
        raise ValueError("forest_pages needs at least one group")
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1; got {max_rows}")
    titles = list(titles) if titles is not None else [_title(g) for g in groups]
    panels = [_panel(g, t, None, None, None, 0.95) for g, t in zip(groups, titles, strict=True)]
    limits = _limits(panels)
    pages: list[list[_Panel]] = [[]]
    used = 0.0
    for panel in panels:
        size = _panel_rows(panel)
        if pages[-1] and used + size > max_rows:
            pages.append([])
            used = 0.0
        pages[-1].append(panel)
        used += size
    note = _panels_note(groups)
    figures = []
    for i, page in enumerate(pages):
        number = f"Page {i + 1} of {len(pages)}." if len(pages) > 1 else ""
        text = "\n".join(t for t in (note, number) if t)
        figures.append(_stack(page, limits, xlabel, width, favours, text))
    return figures


# --- normalising the input --------------------------------------------------------------


def _panel(obj: Any, title: str | None, pooled: Any, group: str | None, label: str | None,
           level: float) -> _Panel:
    rows, weighted = _rows(obj, group, label, level)
    summary = _pooled(obj if pooled is None else pooled)
    notes: list[str] = []
    if summary is not None and summary.text:
        notes += summary.text.split("\n")
    if _single(obj):
        notes.append(f"{_group_text(obj)}")
    return _Panel(title, rows, summary, _empty_note(obj), notes, weighted)


def _single(obj: Any) -> bool:
    return hasattr(obj, "studies") and hasattr(obj, "grouping") and obj.k_studies == 1


def _rows(obj: Any, group: str | None, label: str | None,
          level: float) -> tuple[list[_Row], bool]:
    z = norm.ppf(0.5 + level / 2)
    if hasattr(obj, "studies") and hasattr(obj, "grouping"):
        studies = obj.studies
        return [
            _Row(study_label(s.citation, s.year), s.yi, s.ci_low, s.ci_high, s.weight,
                 k=float(s.k_effects))
            for s in studies.itertuples()
        ], True
    if isinstance(obj, pd.DataFrame):
        frame = obj
    elif isinstance(obj, FittedModel):
        frame = _result_frame(obj)
        if is_clustered(obj) and group is None:
            group = "study"
    else:
        raise ValueError(
            "forest_plot needs a PooledGroup, a fitted model result (random_effects, "
            f"multilevel, .robust()) or a DataFrame with yi and vi; got {type(obj).__name__}"
        )
    return _frame_rows(frame, group, label, z), "weight" in frame


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
    n = _sizes(frame)
    labels = _labels(frame, label)
    if group is None:
        return [_Row(*row) for row in zip(labels, yi, lo, hi, weight, [False] * len(yi), n,
                                          strict=True)]
    rows: list[_Row] = []
    keys = frame[group].to_numpy()
    for key in dict.fromkeys(keys):
        members = np.flatnonzero(keys == key)
        first = frame.iloc[members[0]]
        header = (study_label(first["citation"], first.get("year"))
                  if "citation" in frame else str(key))
        rows.append(_Row(header, header=True))
        rows += [_Row(labels[i], yi[i], lo[i], hi[i], weight[i], n=n[i]) for i in members]
    return rows


def _sizes(frame: pd.DataFrame) -> np.ndarray:
    """Participants behind each row: ``n``, else ``n1 + n2`` (the two compared arms)."""
    if "n" in frame:
        return pd.to_numeric(frame["n"], errors="coerce").to_numpy(dtype=float)
    if "n1" in frame and "n2" in frame:
        return (pd.to_numeric(frame["n1"], errors="coerce")
                + pd.to_numeric(frame["n2"], errors="coerce")).to_numpy(dtype=float)
    return np.full(len(frame), math.nan)


def _labels(frame: pd.DataFrame, label: str | None) -> list[str]:
    if label is not None:
        return [str(v) for v in frame[label]]
    if "label" in frame:
        return [str(v) for v in frame["label"]]
    if "citation" in frame:
        return [study_label(c, y) for c, y in zip(frame["citation"], frame.get(
            "year", pd.Series(np.nan, index=frame.index)), strict=True)]
    return [str(i) for i in frame.index]


def _pooled(obj: Any) -> _Pooled | None:
    if obj is None or isinstance(obj, pd.DataFrame):
        return None
    if hasattr(obj, "studies") and hasattr(obj, "grouping"):
        if obj.k_studies < 2:  # one study is its own row: nothing is pooled
            return None
        return _Pooled(_MODEL_LABELS.get(obj.model, "Pooled"), obj.estimate, obj.ci_low,
                       obj.ci_high, obj.pi_low, obj.pi_high, _group_text(obj))
    if isinstance(obj, dict | pd.Series):
        get = obj.get
        return _Pooled(get("label", "Pooled"), get("estimate"), get("ci_low"), get("ci_high"),
                       get("pi_low", math.nan), get("pi_high", math.nan), get("text", ""))
    if is_clustered(obj):
        text = (f"k = {obj.k} effects in {obj.n_clusters} studies; "
                f"σ²(study) = {style.number(obj.sigma2_study, 3)}, "
                f"σ²(within) = {style.number(obj.sigma2_within, 3)}")
        adjust = getattr(obj, "adjust", None)  # a robust result: say so, with its df
        if adjust is not None:
            text += f"; df = {obj.df:.1f}"
        label = "Pooled (CHE model)" if adjust is None else f"Pooled (CHE, {adjust} robust)"
        return _Pooled(label, obj.estimate, obj.ci_low, obj.ci_high,
                       obj.pi_low, obj.pi_high, text)
    if isinstance(obj, FittedModel):
        text = f"k = {obj.k}; τ² = {style.number(obj.tau2, 3)}; I² = {obj.i2:.0f}%"
        return _Pooled("Pooled (RE model)", obj.estimate, obj.ci_low, obj.ci_high,
                       obj.pi_low, obj.pi_high, text)
    raise ValueError(f"cannot draw a pooled estimate from {type(obj).__name__}")


def _group_text(g: Any) -> str:
    studies = f"{g.k_studies} {'study' if g.k_studies == 1 else 'studies'}"
    effects = f"{g.k_effects} {'effect' if g.k_effects == 1 else 'effects'}"
    first = [f"k = {studies}, {effects}"]
    if g.k_studies == 1:
        return "; ".join([*first, "one study: its own effect, nothing pooled"])
    second = []
    if not math.isnan(g.df):
        first.append(f"df = {g.df:.1f}" + (" (fewer than 4: robust CI unreliable)"
                                           if g.df < 4 else ""))
    if not math.isnan(g.i2):
        first.append(f"I² = {g.i2:.0f}%")
    if not math.isnan(g.sigma2_within):
        second.append(f"σ²(study) = {style.number(g.sigma2_study, 3)}, "
                      f"σ²(within) = {style.number(g.sigma2_within, 3)}")
    else:
        second.append(f"τ² = {style.number(g.sigma2_study, 3)}")
    return "; ".join(first) + "\n" + "; ".join(second)


def _empty_note(obj: Any) -> str | None:
    if hasattr(obj, "studies") and hasattr(obj, "grouping") and obj.k_studies == 0:
        return "no studies yet"
    return None


def _title(g: Any) -> str:
    from metaally.models.pooling import level_label

    return getattr(g, "label", "") or level_label(str(getattr(g, "level", "")))


def _panels_note(groups: Sequence[Any]) -> str:
    """Explain why one study can differ between panels — when a study is in several."""
    ids = [s for g in groups if hasattr(g, "studies") and "study_id" in g.studies
           for s in g.studies["study_id"]]
    if len(ids) > len(set(ids)):
        return ("A study's row combines only its effects in that panel, so a study can show "
                "different intervals in different panels.")
    return ""


def _limits(panels: Sequence[_Panel]) -> tuple[float, float]:
    """x range covering 0, every row's CI and every pooled estimate, on tick multiples;
    pooled CIs and prediction intervals reaching beyond it get an arrowhead (metafor's
    ``alim``), so a CI on one or two df cannot squash the study rows."""
    values = [0.0]
    for panel in panels:
        values += [v for r in panel.rows for v in (r.ci_low, r.ci_high)]
        if panel.summary is not None:
            values += [panel.summary.estimate]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) == 1:  # nothing but the zero line: a neutral range
        return -0.5, 1.0
    lo, hi = min(finite), max(finite)
    step = _nice_step(hi - lo)
    return math.floor(lo / step - 0.25) * step, math.ceil(hi / step + 0.25) * step


def _nice_step(span: float) -> float:
    raw = max(span, 1e-9) / 6
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


# --- geometry ---------------------------------------------------------------------------


def _text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in inches of ``text`` in the figure font (Agg text metrics at 72 dpi)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(10, 10, 72)
    props = FontProperties(family=style.RC["font.family"], size=size,
                           weight="bold" if bold else "normal")
    widest = 0.0
    for line in text.split("\n"):
        if line:
            widest = max(widest, renderer.get_text_width_height_descent(line, props, False)[0])
    return widest / 72


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.fill(part, width, break_on_hyphens=False) or part
                     for part in text.split("\n"))


def _columns(panels: Sequence[_Panel]) -> _Columns:
    size = float(style.RC["ytick.labelsize"])
    rows = [r for p in panels for r in p.rows]
    labels = [_wrap(r.label, _WRAP) for r in rows]
    labels += [p.summary.label for p in panels if p.summary is not None]
    labels += ["95% prediction interval", "Study"]
    label_w = max(_text_width(t, size, bold=True) for t in labels) + _GAP
    n_w = (max(_text_width(_count(r.n), size) for r in rows) + 2 * _GAP
           if any(math.isfinite(r.n) for r in rows) else 0.0)
    k_w = (_text_width("Effects", size) + 2 * _GAP  # only when some study has several
           if any(math.isfinite(r.k) and r.k > 1 for r in rows) else 0.0)
    estimates = [_fmt(r.yi, r.ci_low, r.ci_high) for r in rows if not r.header]
    estimates += ["g [95% CI]"] + [_fmt(p.summary.estimate, p.summary.ci_low,
                                        p.summary.ci_high) for p in panels if p.summary]
    est_w = max(_text_width(t, size) for t in estimates) + 2 * _GAP
    weight_w = (_text_width("Weight", size) + 2 * _GAP
                if any(p.weighted and p.rows for p in panels) else 0.0)
    return _Columns(label_w, n_w, k_w, est_w, weight_w, _WRAP)


def _row_heights(panel: _Panel) -> list[float]:
    step = _line_step()
    return [1.0 + step * (_wrap(r.label, _WRAP).count("\n")) for r in panel.rows]


@cache
def _line_step() -> float:
    """Rows added by each further line of a wrapped label, measured: the height of a
    two-line label minus that of a one-line label in the label font (matplotlib's own line
    spacing), so a label of several lines stays inside its row and never touches the next."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with matplotlib.rc_context(style.RC):
        fig = Figure(dpi=300)  # print resolution: no rounding to whole pixels of 1/72 in
        renderer = FigureCanvasAgg(fig).get_renderer()
        size = float(style.RC["ytick.labelsize"])
        one, two = (fig.text(0, 0, text, fontsize=size).get_window_extent(renderer).height
                    for text in ("lp", "lp\nlp"))
    return (two - one) / 300 / _ROW_INCHES


def _panel_rows(panel: _Panel) -> float:
    """Height of a panel in rows: header line, rows, pooled + PI rows, notes."""
    if panel.empty is not None:
        return 3.0
    extra = 1.2 + (2.2 if panel.summary is not None else 0.0) + 0.85 * len(panel.notes)
    return 1.2 + sum(_row_heights(panel)) + extra


def _bottom_inches(favours: tuple[str, str] | None) -> float:
    return 0.62 + (0.18 if favours else 0.0)


def _figure(plt, panels: Sequence[_Panel], columns: _Columns, width: float,
            favours: tuple[str, str] | None, note: str = "") -> Figure:
    plot = max(_PLOT_INCHES, width - columns.left - columns.right - 0.3)
    titles = sum(0.3 for p in panels if p.title)
    height = (sum(_panel_rows(p) for p in panels) * _ROW_INCHES + titles
              + _bottom_inches(favours) + 0.12 + 0.16 * (note.count("\n") + 1 if note else 0))
    return plt.figure(figsize=(round(columns.left + plot + columns.right + 0.3, 2),
                               round(height, 2)))


def _axes_for(fig: Figure, panels: Sequence[_Panel], columns: _Columns,
              favours: tuple[str, str] | None, note: str = "") -> list[Axes]:
    """Place one Axes per panel by hand (no layout engine: exact, byte-stable sizes)."""
    w_in, h_in = fig.get_size_inches()
    left = (0.15 + columns.left) / w_in
    width = (w_in - 0.15 - columns.left - columns.right - 0.15) / w_in
    top = h_in - 0.12
    axes = []
    for panel in panels:
        top -= 0.3 if panel.title else 0.0
        height = _panel_rows(panel) * _ROW_INCHES
        axes.append(fig.add_axes((left, (top - height) / h_in, width, height / h_in)))
        top -= height
    return axes


def _stack(panels: list[_Panel], limits: tuple[float, float], xlabel: str, width: float,
           favours: tuple[str, str] | None, note: str) -> Figure:
    plt = style.pyplot()
    with plt.rc_context(style.RC):
        columns = _columns(panels)
        fig = _figure(plt, panels, columns, width, favours, note)
        axes = _axes_for(fig, panels, columns, favours, note)
        for i, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
            last = i == len(panels) - 1
            _draw(ax, panel, columns, limits, xlabel if last else None,
                  favours if last else None, 0.95, ticks=last)
            if i:
                ax.sharex(axes[0])
        if note:
            fig.text(0.15 / fig.get_figwidth(), 0.1 / fig.get_figheight(), note, ha="left",
                     va="bottom", fontsize="small", color=style.MUTED)
    return fig


# --- drawing ----------------------------------------------------------------------------


def _fmt(est: float, lo: float, hi: float) -> str:
    return fmt_interval(est, lo, hi, 2, MINUS)


def _count(n: float) -> str:
    return "" if not math.isfinite(n) else f"{n:,.0f}"


def _x_offset(ax: Axes, anchor: float, inches: float):
    """x in inches from the Axes' left (``anchor`` 0) or right (1) edge, y in data."""
    shift = ScaledTranslation(inches, 0, ax.figure.dpi_scale_trans)
    return blended_transform_factory(ax.transAxes + shift, ax.transData)


def _interval(ax: Axes, lo: float, hi: float, y: float, xlim: tuple[float, float], *,
              color: str, linewidth: float, arrow: float = 4.5) -> None:
    """A horizontal interval cut at the axis edges, with an arrowhead where it is cut."""
    left, right = max(lo, xlim[0]), min(hi, xlim[1])
    if right <= left:
        return
    ax.plot([left, right], [y, y], color=color, linewidth=linewidth, zorder=2,
            solid_capstyle="butt")
    _arrows(ax, lo, hi, y, xlim, color=color, size=arrow)


def _arrows(ax: Axes, lo: float, hi: float, y: float, xlim: tuple[float, float], *,
            color: str, size: float) -> None:
    """Arrowheads where [lo, hi] leaves the axis, their tips on the axis edge (drawn
    inside it, as metafor's ``alim`` arrows, never beyond the axis line)."""
    half = size / 2 / 72  # a triangle marker spans ``size`` points: tip at half of it
    for cut, edge, marker, sign in ((lo < xlim[0], xlim[0], "<", 1), (hi > xlim[1], xlim[1],
                                                                        ">", -1)):
        if cut:
            inward = ax.transData + ScaledTranslation(sign * half, 0,
                                                      ax.figure.dpi_scale_trans)
            ax.plot([edge], [y], marker=marker, color=color, markersize=size, zorder=5,
                    linestyle="none", markeredgewidth=0, transform=inward)


def _draw(ax: Axes, panel: _Panel, columns: _Columns, xlim: tuple[float, float],
          xlabel: str | None, favours: tuple[str, str] | None, level: float,
          ticks: bool = True) -> None:
    size = float(style.RC["ytick.labelsize"])
    ax.set_xlim(*xlim)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(_tick_formatter())
    ax.tick_params(axis="y", length=0)
    ax.spines["bottom"].set_color(style.MUTED)
    if not ticks:
        ax.tick_params(axis="x", labelbottom=False, length=0)
        ax.spines["bottom"].set_visible(False)
    if panel.title:
        heading = ax.set_title(panel.title, loc="left", pad=4)
        inches = ax.get_position().width * ax.figure.get_figwidth()
        heading.set_x(-columns.left / inches if inches > 0 else 0.0)
    if xlabel:
        ax.set_xlabel(xlabel, labelpad=16 if favours else 4)
    if panel.empty is not None:
        ax.axvline(0.0, color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
        ax.set_ylim(-1.5, 1.5)
        ax.set_yticks([])
        ax.text(0.5, 0.5, panel.empty, transform=ax.transAxes, ha="center", va="center_baseline",
                fontstyle="italic", color=style.MUTED)
        _favours(ax, favours)
        return
    heights = _row_heights(panel)
    header_y = 0.0
    ys, y = [], -1.2
    for h in heights:
        ys.append(y - (h - 1) / 2)
        y -= h
    weights = np.array([r.weight for r in panel.rows if not r.header], dtype=float)
    finite_w = weights[np.isfinite(weights)]
    wmax = finite_w.max() if finite_w.size else 1.0
    wsum = finite_w.sum() if finite_w.size else 1.0
    left = _x_offset(ax, 0, -columns.left)
    n_at = _x_offset(ax, 0, -columns.k - _GAP)
    k_at = _x_offset(ax, 0, -_GAP)
    est_at = _x_offset(ax, 1, _GAP)
    w_at = _x_offset(ax, 1, columns.estimate + columns.weight - _GAP)
    head = {"fontweight": "bold", "va": "center", "fontsize": size}
    ax.text(0, header_y, "Study" if not any(r.header for r in panel.rows) else "Study / outcome",
            transform=left, ha="left", **head)
    if columns.n:
        ax.text(0, header_y, "n", transform=n_at, ha="right", **head)
    if columns.k:
        ax.text(0, header_y, "Effects", transform=k_at, ha="right", **head)
    ax.text(1, header_y, f"g [{level * 100:g}% CI]", transform=est_at, ha="left", **head)
    if columns.weight and panel.weighted:
        ax.text(1, header_y, "Weight", transform=w_at, ha="right", **head)
    right: list[str] = []
    for yy, row in zip(ys, panel.rows, strict=True):
        if columns.n and math.isfinite(row.n):
            ax.text(0, yy, _count(row.n), transform=n_at, ha="right", va="center_baseline")
        if row.header:
            right.append("")
            continue
        if columns.k and math.isfinite(row.k):
            ax.text(0, yy, f"{row.k:.0f}", transform=k_at, ha="right", va="center_baseline")
        _interval(ax, row.ci_low, row.ci_high, yy, xlim, color=style.INK, linewidth=0.9)
        size_pt = _MAX_MARKER * row.weight / wmax if math.isfinite(row.weight) else 20.0
        ax.scatter([row.yi], [yy], s=size_pt, marker="s", color=style.INK, linewidths=0,
                   zorder=3)
        right.append(_fmt(row.yi, row.ci_low, row.ci_high))
        if columns.weight and panel.weighted and math.isfinite(row.weight):
            ax.text(1, yy, f"{100 * row.weight / wsum:.1f}%", transform=w_at, ha="right",
                    va="center_baseline")
    tick_y = list(ys)
    labels = [_wrap(r.label, columns.wrap) for r in panel.rows]
    bottom = y
    summary = panel.summary
    if summary is not None:
        yd = bottom - 0.6
        ax.fill(*_diamond(summary, yd, xlim), color=style.POOLED, zorder=4, linewidth=0)
        _interval(ax, summary.ci_low, summary.ci_high, yd, xlim, color=style.POOLED,
                  linewidth=0.0, arrow=9.0)  # taller than the cut diamond: visible
        tick_y.append(yd)
        labels.append(summary.label)
        right.append(_fmt(summary.estimate, summary.ci_low, summary.ci_high))
        if columns.weight and panel.weighted:
            ax.text(1, yd, "100%", transform=w_at, ha="right", va="center_baseline",
                    fontweight="bold")
        bottom = yd - 0.5
        if math.isfinite(summary.pi_low) and math.isfinite(summary.pi_high):
            yp = yd - 1.1
            _pi_bar(ax, summary.pi_low, summary.pi_high, yp, xlim)
            ax.text(0, yp, f"{level * 100:g}% prediction interval", transform=left,
                    ha="left", va="center_baseline", color=style.PREDICTION)
            ax.text(1, yp, f"[{style.number(summary.pi_low)}, {style.number(summary.pi_high)}]",
                    transform=est_at, ha="left", va="center_baseline", color=style.PREDICTION)
            bottom = yp - 0.5
    for i, line in enumerate(panel.notes):
        ax.text(0, bottom - 0.55 - 0.85 * i, line, transform=left, ha="left", va="center_baseline",
                fontsize="small", color=style.MUTED)
    bottom -= 0.55 + 0.85 * len(panel.notes)
    ax.plot([0.0, 0.0], [-0.6, (y + 0.3) if summary is None else (y - 1.4)],
            color=style.GUIDE, linestyle="--", linewidth=0.8, zorder=0)
    ax.set_ylim(-_panel_rows(panel) + 0.6, 0.6)
    ax.set_yticks(tick_y, labels)
    for tick in ax.get_yticklabels():
        tick.set_horizontalalignment("left")
    ax.tick_params(axis="y", pad=columns.left * 72)
    for tick, row in zip(ax.get_yticklabels(), panel.rows, strict=False):
        if row.header:
            tick.set_fontweight("bold")
    if summary is not None:
        ax.get_yticklabels()[-1].set_fontweight("bold")
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    twin.set_yticks(tick_y, right)
    twin.tick_params(axis="y", length=0, pad=_GAP * 72)
    if summary is not None:
        twin.get_yticklabels()[-1].set_fontweight("bold")
    for spine in twin.spines.values():
        spine.set_visible(False)
    _favours(ax, favours)


def _diamond(summary: _Pooled, y: float, xlim: tuple[float, float]):
    """Diamond vertices, cut at the axis edges (the cut side then gets an arrowhead)."""
    lo, est, hi = summary.ci_low, summary.estimate, summary.ci_high
    half = 0.36
    xs = [lo, est, hi, est]
    ys = [y, y + half, y, y - half]
    if lo >= xlim[0] and hi <= xlim[1]:
        return xs, ys
    left, right = max(lo, xlim[0]), min(hi, xlim[1])

    def height(x: float) -> float:
        span = (est - lo) if x <= est else (hi - est)
        return half * (1 - abs(x - est) / span) if span > 0 else half

    top = [(left, y + height(left)), (est, y + half), (right, y + height(right))]
    low = [(right, y - height(right)), (est, y - half), (left, y - height(left))]
    pts = top + low
    return [p[0] for p in pts], [p[1] for p in pts]


def _pi_bar(ax: Axes, lo: float, hi: float, y: float, xlim: tuple[float, float]) -> None:
    """The prediction interval as a bar, cut at the axis edges with an arrowhead."""
    from matplotlib.patches import Rectangle

    left, right = max(lo, xlim[0]), min(hi, xlim[1])
    ax.add_patch(Rectangle((left, y - 0.16), right - left, 0.32, facecolor=style.PREDICTION,
                           alpha=0.85, linewidth=0, zorder=3))
    _arrows(ax, lo, hi, y, xlim, color=style.PREDICTION, size=9.0)  # taller than the bar


def _favours(ax: Axes, favours: tuple[str, str] | None) -> None:
    if not favours:
        return
    lo, hi = ax.get_xlim()
    if not lo < 0 < hi:
        return
    for text, ha, sign in ((f"← {favours[0]}", "right", -1), (f"{favours[1]} →", "left", 1)):
        ax.annotate(text, xy=(0, 0), xycoords=("data", "axes fraction"),
                    xytext=(sign * 4, -20), textcoords="offset points", ha=ha, va="top",
                    fontsize="small", color=style.MUTED, annotation_clip=False)


def _tick_formatter():
    """Tick labels as short as exact ("0.5", "1", "−0.25"), never "−0"."""
    from matplotlib.ticker import FuncFormatter

    def tick(x: float, _pos: int) -> str:
        text = style.number(x).rstrip("0").rstrip(".")
        return "0" if text == "\u22120" else text

    return FuncFormatter(tick)
