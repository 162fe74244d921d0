"""funnel_plot of a trim-and-fill result: open circles at the filled effects, a dashed
line at the adjusted estimate (metafor's funnel(trimfill(...)))."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import metaally as ma

REF = json.loads((Path(__file__).parent / "reference" / "diagnostics.json").read_text())


def hackshaw() -> tuple[np.ndarray, np.ndarray]:
    d = REF["datasets"]["hackshaw"]
    return np.array(d["yi"], dtype=float), np.array(d["vi"], dtype=float)


@pytest.fixture(scope="module")
def filled():
    res = ma.trim_and_fill(*hackshaw())
    assert res.k0 > 0
    fig = ma.funnel_plot(res)
    yield res, fig.axes[0]
    plt.close(fig)


def _collection(ax, label):
    return next(c for c in ax.collections if c.get_label() == label)


def test_filled_effects_are_open_circles_where_trim_and_fill_put_them(filled):
    res, ax = filled
    points = _collection(ax, f"filled by trim-and-fill ({res.k0})")
    offsets = points.get_offsets()
    assert offsets.shape[0] == res.k0
    np.testing.assert_allclose(offsets[:, 0], res.filled["yi"])
    np.testing.assert_allclose(offsets[:, 1], np.sqrt(res.filled["vi"]))
    np.testing.assert_allclose(points.get_facecolor()[:, :3], 1.0)  # white: open
    observed = _collection(ax, "effect sizes").get_offsets()
    assert observed.shape[0] == res.k
    np.testing.assert_allclose(observed[:, 0], res.yi_all[~res.filled_mask])


def test_adjusted_estimate_is_a_second_dashed_centre_line(filled):
    res, ax = filled
    observed = ma.random_effects(res.yi_all[:res.k], res.vi_all[:res.k])
    labels = [line.get_label() for line in ax.lines]
    centre = ax.lines[labels.index(f"pooled estimate {observed.estimate:.2f}")]
    adjusted = ax.lines[labels.index(f"trim-and-fill estimate {res.estimate:.2f}")]
    assert centre.get_xdata()[0] == pytest.approx(observed.estimate)
    assert centre.get_linestyle() == "-"
    assert adjusted.get_xdata()[0] == pytest.approx(res.estimate)
    assert adjusted.get_linestyle() == "--"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == [f"pooled estimate {observed.estimate:.2f}",
                          f"trim-and-fill estimate {res.estimate:.2f}",
                          f"filled by trim-and-fill ({res.k0})"]


def test_nothing_filled_draws_the_observed_funnel():
    y = np.array([-0.4, -0.2, 0.0, 0.2, 0.4])
    res = ma.trim_and_fill(y, [0.2, 0.1, 0.05, 0.1, 0.2])
    assert res.k0 == 0
    fig = ma.funnel_plot(res)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.collections if c.get_label().startswith("filled")] == []
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == (
        f"pooled estimate {res.estimate:.2f}")
    np.testing.assert_allclose(_collection(ax, "effect sizes").get_offsets()[:, 0], y)
    plt.close(fig)
