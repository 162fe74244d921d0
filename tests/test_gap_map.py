"""Evidence gap map: what each cell shows, empty rows and cells, input checks, stable files."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import metaally as ma
import metaally.allyship as ally
from metaally.allyship.review import OUTCOME_COMPONENTS
from metaally.plots.gap_map import EMPTY, SINGLE

ROOT = Path(__file__).resolve().parents[1]
EFFECTS = pd.read_csv(ROOT / "results" / "effects.csv")

pytestmark = pytest.mark.usefixtures("no_show_and_close")


@pytest.fixture(scope="module")
def cells():
    return ma.pool_cells(EFFECTS, "components", "outcome_component",
                         row_levels=ally.COMPONENTS, column_levels=OUTCOME_COMPONENTS)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _cell_patches(ax) -> dict[tuple[float, float], object]:
    """Filled cell rectangles keyed by their centre (column, row)."""
    return {(p.get_x() + 0.5, p.get_y() + 0.5): p for p in ax.patches if p.get_fill()}


def test_every_pooled_cell_shows_g_ci_and_counts(cells):
    fig = ma.evidence_gap_map(cells)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    texts = _texts(ax)
    for cell in cells[cells["k_studies"] >= 2].itertuples():
        assert f"g = {cell.estimate:.2f}".replace("-", "\u2212") in texts
        assert f"{cell.k_studies} studies · {cell.k_effects} effects" in texts
        interval = f"[{cell.ci_low:.2f}, {cell.ci_high:.2f}]".replace("-", "\u2212")
        assert any(t.startswith(interval) for t in texts)


def test_unreliable_intervals_are_marked_and_explained(cells):
    ax = ma.evidence_gap_map(cells).axes[0]
    flagged = cells[(cells["k_studies"] >= 2) & (cells["df"] < 4)]
    assert len(flagged) > 0
    assert sum(t.endswith("†") for t in _texts(ax)) == len(flagged)
    assert any("† fewer than 4 robust degrees of freedom" in t for t in _texts(ax))


def test_single_study_cells_are_grey_and_not_pooled(cells):
    ax = ma.evidence_gap_map(cells).axes[0]
    singles = cells[cells["k_studies"] == 1]
    assert sum(t.endswith("\none study, not pooled") for t in _texts(ax)) == len(singles)
    patches = _cell_patches(ax)
    rows, columns = list(ally.COMPONENTS), list(OUTCOME_COMPONENTS)
    for cell in singles.itertuples():
        patch = patches[(columns.index(cell.column), rows.index(cell.row))]
        assert matplotlib.colors.to_hex(patch.get_facecolor()) == SINGLE


def test_empty_row_says_no_studies_yet_and_empty_cells_are_blank(cells):
    ax = ma.evidence_gap_map(cells).axes[0]
    texts = _texts(ax)
    assert texts.count("no studies yet") == 1  # the all-inclusivity row, once across it
    empty_elsewhere = cells[(cells["k_studies"] == 0) & (cells["row"] != "all_inclusivity")]
    assert texts.count("no studies") == len(empty_elsewhere)
    patches = _cell_patches(ax)
    row = list(ally.COMPONENTS).index("all_inclusivity")
    for j in range(len(OUTCOME_COMPONENTS)):
        patch = patches[(j, row)]
        assert matplotlib.colors.to_hex(patch.get_facecolor()) == EMPTY
        assert patch.get_hatch()


def test_colour_follows_pooled_g(cells):
    ax = ma.evidence_gap_map(cells, limit=1.0).axes[0]
    patches = _cell_patches(ax)
    rows, columns = list(ally.COMPONENTS), list(OUTCOME_COMPONENTS)
    cmap = plt.get_cmap("BrBG")
    for cell in cells[cells["k_studies"] >= 2].itertuples():
        patch = patches[(columns.index(cell.column), rows.index(cell.row))]
        expected = cmap((cell.estimate + 1.0) / 2.0)
        np.testing.assert_allclose(patch.get_facecolor(), expected, atol=1e-6)


def test_labels_axes_and_colour_bar(cells):
    fig = ma.evidence_gap_map(cells, title="Gap map", labels=ally.LABELS)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Awareness", "Authentic\nmotivation", "Action\norientation", "All-inclusivity"]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "Other"
    assert ax.get_title(loc="left") == "Gap map"
    assert len(fig.axes) == 2 and "Hedges' g" in fig.axes[1].get_ylabel()


def test_draws_into_a_given_axes(cells):
    fig, ax = plt.subplots()
    assert ma.evidence_gap_map(cells, ax=ax) is fig


def test_default_scale_covers_every_pooled_g_and_only_the_signs_present(cells):
    """Table 2's pooled cells are all positive: the key runs from 0, not to -limit."""
    pooled = cells.loc[cells["k_studies"] >= 2, "estimate"]
    assert (pooled > 0).all()
    low, high = ma.evidence_gap_map(cells).axes[1].get_ylim()
    assert low == 0 and high >= pooled.max() and high % 0.25 == 0


def test_scale_is_symmetric_when_pooled_g_has_both_signs(cells):
    mixed = cells.copy()
    first = mixed.index[mixed["k_studies"] >= 2][0]
    mixed.loc[first, "estimate"] = -0.9
    low, high = ma.evidence_gap_map(mixed).axes[1].get_ylim()
    assert low == pytest.approx(-high) and high == 1.0


def test_scale_is_the_harm_half_when_every_pooled_g_is_negative(cells):
    negative = cells.assign(estimate=-cells["estimate"].abs())
    low, high = ma.evidence_gap_map(negative).axes[1].get_ylim()
    assert high == 0 and low < 0


def test_bad_input(cells):
    with pytest.raises(ValueError, match="missing column"):
        ma.evidence_gap_map(cells.drop(columns="k_effects"))
    with pytest.raises(ValueError, match="no rows"):
        ma.evidence_gap_map(cells.iloc[:0])


def test_saved_files_are_byte_stable(tmp_path, cells):
    first = ma.save_figure(ma.evidence_gap_map(cells), tmp_path / "a")
    second = ma.save_figure(ma.evidence_gap_map(cells), tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
