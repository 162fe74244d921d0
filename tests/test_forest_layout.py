"""Forest plot layout (RevMan 5 / metafor ``forest()`` conventions): text columns, weights,
"favours" labels, diamonds only where something is pooled, PI bar, arrows at cut
intervals, wrapped (never truncated) labels, pagination, 300 dpi PNG + vector PDF/SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from matplotlib.patches import Polygon, Rectangle

import metaally as ma
import metaally.allyship as ally
from metaally.plots.export import save_pages
from metaally.plots.forest import forest_pages

ROOT = Path(__file__).resolve().parents[1]
EFFECTS = pd.read_csv(ROOT / "results" / "effects.csv")

pytestmark = pytest.mark.usefixtures("no_show_and_close")


@pytest.fixture(scope="module")
def groups():
    return ma.pool_groups(EFFECTS, "components", levels=ally.COMPONENTS)


def _all_text(fig) -> list[str]:
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels()]
        out += [t.get_text() for t in ax.get_xticklabels()]
    out += [t.get_text() for t in fig.texts]
    return out


def _diamonds(fig) -> list[Polygon]:
    return [p for ax in fig.axes for p in ax.patches if isinstance(p, Polygon)]


def test_weight_column_prints_each_studys_percent_weight(groups):
    group = groups[0]
    fig = ma.forest_plot(group)
    texts = _all_text(fig)
    assert "Weight" in texts and "100%" in texts
    expected = [f"{w:.1f}%" for w in 100 * group.studies["weight"] / group.studies["weight"].sum()]
    percents = [t for t in texts if t.endswith("%") and t != "100%" and "=" not in t]
    assert percents == expected


def test_favours_labels_sit_either_side_of_zero(groups):
    fig = ma.forest_plot(groups[0])
    texts = _all_text(fig)
    assert "← Favours control" in texts and "Favours intervention →" in texts
    assert not any("Favours" in t for t in _all_text(ma.forest_plot(groups[0], favours=None)))


def test_single_study_group_has_no_diamond_and_says_nothing_was_pooled():
    groups = ma.pool_groups(EFFECTS, "technique", levels=["podcast"])
    assert groups[0].k_studies == 1
    fig = ma.forest_plot(groups[0])
    assert _diamonds(fig) == []
    assert any("nothing pooled" in t for t in _all_text(fig))
    assert not any(t.startswith("Pooled") for t in _all_text(fig))


def test_pooled_group_has_one_diamond_and_a_prediction_interval_bar(groups):
    group = groups[0]
    fig = ma.forest_plot(group)
    assert len(_diamonds(fig)) == 1
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 1
    x0, width = bars[0].get_x(), bars[0].get_width()
    assert x0 == pytest.approx(max(group.pi_low, lo))
    assert x0 + width == pytest.approx(min(group.pi_high, hi))


def test_interval_leaving_the_axis_gets_an_arrowhead():
    frame = pd.DataFrame({"label": ["a", "b"], "yi": [0.2, 0.4], "vi": [0.01, 0.02]})
    fig = ma.forest_plot(frame, xlim=(0.1, 0.6))
    markers = [line.get_marker() for line in fig.axes[0].lines]
    assert ">" in markers and "<" in markers  # b's upper end, a's lower end
    fig = ma.forest_plot(frame, xlim=(-1.0, 1.0))
    assert not {">", "<"} & {line.get_marker() for line in fig.axes[0].lines}


def test_no_negative_zero_anywhere():
    frame = pd.DataFrame({"label": ["tiny"], "yi": [-0.001], "vi": [0.04]})
    fig = ma.forest_plot(frame, pooled={"estimate": -0.004, "ci_low": -0.3, "ci_high": 0.3,
                                        "pi_low": -0.6, "pi_high": 0.6})
    fig.canvas.draw()
    texts = _all_text(fig)
    assert not any("\u22120.00" in t or "-0.00" in t or t == "\u22120" for t in texts)
    assert "0.00 [\u22120.39, 0.39]" in texts


def test_long_labels_are_wrapped_not_truncated():
    long = ("More support for policies aiming to reduce inequality between white and racially "
            "marginalized individuals when framed as decreasing advantages")
    frame = pd.DataFrame({"outcome": [long, "short"], "yi": [0.2, 0.4], "vi": [0.01, 0.02]})
    fig = ma.forest_plot(frame, label="outcome")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0].replace("\n", " ") == long
    assert labels[0].count("\n") >= 2 and "…" not in labels[0]


def test_effect_level_plot_shows_n_from_the_arms():
    included = EFFECTS[EFFECTS["included"]]
    fig = ma.forest_plot(included, group="study_id", label="outcome")
    texts = _all_text(fig)
    assert "n" in texts
    first = included.iloc[0]
    assert f"{first['n1'] + first['n2']:,.0f}" in texts


def test_pages_split_long_stacks_and_share_one_x_range():
    groups = ma.pool_groups(EFFECTS, "technique", levels=ally.TECHNIQUES)
    one = forest_pages(groups, max_rows=1000)
    assert len(one) == 1
    pages = forest_pages(groups, max_rows=30)
    assert len(pages) >= 2
    limits = {ax.get_xlim() for fig in pages for ax in fig.axes if ax.get_title(loc="left")}
    assert len(limits) == 1
    titles = [ax.get_title(loc="left") for fig in pages for ax in fig.axes
              if ax.get_title(loc="left")]
    assert titles == [ma.level_label(t) for t in ally.TECHNIQUES]
    with pytest.raises(ValueError, match="max_rows"):
        forest_pages(groups, max_rows=0)


def test_saved_png_is_300_dpi_and_pdf_is_vector(tmp_path, groups):
    fig = ma.forest_plot(groups[1])
    width_in = fig.get_figwidth()
    paths = ma.save_figure(fig, tmp_path / "f")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    pixels = imread(paths[0])
    assert pixels.shape[1] == pytest.approx(width_in * 300, abs=1)
    pdf = paths[2].read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf  # drawn, not a bitmap
    ma.save_figure(ma.forest_plot(groups[1]), tmp_path / "g")
    assert (tmp_path / "g.pdf").read_bytes() == pdf  # byte-stable
    assert not list(tmp_path.glob(".*.tmp"))


def test_save_pages_writes_numbered_pages_and_one_pdf(tmp_path):
    groups = ma.pool_groups(EFFECTS, "technique", levels=ally.TECHNIQUES)
    pages = forest_pages(groups, max_rows=30)
    paths = save_pages(pages, tmp_path / "tech")
    names = sorted(p.name for p in paths)
    assert "tech.pdf" in names and "tech-1.png" in names and f"tech-{len(pages)}.svg" in names
    assert (tmp_path / "tech.pdf").read_bytes().count(b"/Type /Page\n") + \
        (tmp_path / "tech.pdf").read_bytes().count(b"/Type /Page ") >= len(pages)


def test_rows_are_drawn_in_order_with_squares_sized_by_weight(groups):
    group = groups[2]
    fig = ma.forest_plot(group)
    offsets = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    np.testing.assert_allclose(offsets[:, 0], group.studies["yi"])
    assert (np.diff(offsets[:, 1]) < 0).all()  # top to bottom
    plt.close(fig)


def test_effects_column_and_panel_note_only_when_they_inform(groups):
    fig = ma.forest_panels(groups)  # Noland & Monteith is in three components
    assert "Effects" in _all_text(fig)
    assert any("different intervals in different panels" in t for t in _all_text(fig))
    frame = pd.DataFrame({"study_id": ["a", "b"], "es_id": [1, 2], "yi": [0.2, 0.4],
                          "vi": [0.02, 0.03], "included": True, "citation": ["A", "B"],
                          "year": 2020, "grp": ["x", "y"]})
    single = ma.pool_groups(frame, "grp")
    fig = ma.forest_panels(single)
    texts = _all_text(fig)
    assert "Effects" not in texts  # every study has one effect
    assert not any("different intervals" in t for t in texts)
