"""Forest and funnel plots: inputs accepted, what is drawn, byte-stable files, lazy pyplot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import metaally as ma
import metaally.allyship as ally
from metaally.plots.forest import study_label

ROOT = Path(__file__).resolve().parents[1]
EFFECTS = pd.read_csv(ROOT / "results" / "effects.csv")

pytestmark = pytest.mark.usefixtures("no_show_and_close")


@pytest.fixture(scope="module")
def groups():
    return ma.pool_groups(EFFECTS, "components", levels=ally.COMPONENTS, labels=ally.LABELS)


def _left_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def _right_labels(fig: Figure, ax) -> list[str]:
    twins = [other for other in fig.axes if other is not ax and other.bbox.bounds == ax.bbox.bounds]
    return [t.get_text() for t in twins[0].get_yticklabels()]


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_forest_of_a_group_shows_every_study_and_the_diamond(groups):
    group = groups[0]
    fig = ma.forest_plot(group)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = _left_labels(ax)
    assert labels[:-1] == [study_label(c, y) for c, y in
                           zip(group.studies["citation"], group.studies["year"], strict=True)]
    assert labels[-1].startswith("Pooled")
    right = _right_labels(fig, ax)
    assert right[-1] == f"{group.estimate:.2f} [{group.ci_low:.2f}, {group.ci_high:.2f}]"
    assert any(t.startswith(f"k = {group.k_studies} studies") for t in _texts(fig))
    assert any("prediction interval" in t for t in _texts(fig))
    assert ax.get_xlabel() == "Hedges' g"


def test_marker_area_proportional_to_weight(groups):
    group = groups[2]
    fig = ma.forest_plot(group)
    sizes = np.concatenate([c.get_sizes() for c in fig.axes[0].collections])
    weights = group.studies["weight"].to_numpy()
    np.testing.assert_allclose(sizes / sizes.max(), weights / weights.max())


def test_forest_draws_into_a_given_axes(groups):
    fig, ax = plt.subplots()
    out = ma.forest_plot(groups[1], ax=ax, title="mine")
    assert out is fig
    assert ax.get_title(loc="left") == "mine"


def test_group_without_studies_says_so(groups):
    empty = groups[-1]
    assert empty.k_studies == 0
    fig = ma.forest_plot(empty)
    assert "no studies yet" in _texts(fig)


def test_forest_panels_one_panel_per_group_shared_x(groups):
    fig = ma.forest_panels(groups)
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert [ax.get_title(loc="left") for ax in panels] == [
        "Awareness", "Authentic motivation", "Action orientation", "All-inclusivity"]
    assert len({ax.get_xlim() for ax in panels}) == 1
    assert panels[-1].get_xlabel() == "Hedges' g"
    assert "no studies yet" in _texts(fig)


def test_forest_of_every_effect_grouped_by_study():
    included = EFFECTS[EFFECTS["included"]]
    fig = ma.forest_plot(included, group="study_id", label="outcome")
    labels = _left_labels(fig.axes[0])
    n_studies = included["study_id"].nunique()
    assert len(labels) == len(included) + n_studies
    header = study_label(*included.loc[included["study_id"] == "mossracusin2018",
                                       ["citation", "year"]].iloc[0])
    start = labels.index(header)
    assert all(lab not in set(included["citation"]) for lab in labels[start + 1:start + 15])
    assert (included["study_id"] == "mossracusin2018").sum() == 14


def test_forest_of_results():
    yi, vi = [0.1, 0.3, 0.5, 0.2], [0.01, 0.02, 0.015, 0.03]
    res = ma.random_effects(yi, vi)
    fig = ma.forest_plot(res)
    assert _left_labels(fig.axes[0])[-1] == "Pooled (RE model)"
    ml = ma.multilevel([0.1, 0.3, 0.5, 0.2, 0.4], [0.01, 0.02, 0.015, 0.03, 0.02],
                       ["a", "a", "b", "c", "c"])
    fig = ma.forest_plot(ml)
    labels = _left_labels(fig.axes[0])
    assert labels[0] == "a" and labels[-1] == "Pooled (CHE model)"
    assert len(labels) == 5 + 3 + 1


def test_forest_frame_with_ci_columns_and_pooled_mapping():
    frame = pd.DataFrame({"label": ["x", "y"], "yi": [0.2, 0.4],
                          "ci_low": [0.0, 0.1], "ci_high": [0.4, 0.7]})
    fig = ma.forest_plot(frame, pooled={"estimate": 0.3, "ci_low": 0.1, "ci_high": 0.5})
    assert _left_labels(fig.axes[0]) == ["x", "y", "Pooled"]


def test_forest_bad_input():
    with pytest.raises(ValueError, match="forest_plot needs"):
        ma.forest_plot([1, 2, 3])
    with pytest.raises(ValueError, match="vi, sei or ci_low"):
        ma.forest_plot(pd.DataFrame({"yi": [0.1]}))


def test_funnel_plot():
    included = EFFECTS[EFFECTS["included"]]
    fig = ma.funnel_plot(included, center=0.4)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low > high == 0.0  # standard error axis inverted, 0 at the top
    points = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(points[:, 0], included["yi"])
    np.testing.assert_allclose(points[:, 1], np.sqrt(included["vi"]))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["pooled estimate 0.40", "90% pseudo-CI", "95% pseudo-CI", "99% pseudo-CI"]


def test_funnel_of_a_result_centres_on_its_estimate():
    res = ma.random_effects([0.1, 0.3, 0.5, 0.2], [0.01, 0.02, 0.015, 0.03])
    fig, ax = plt.subplots()
    assert ma.funnel_plot(res, ax=ax, levels=(0.95,)) is fig
    assert ax.lines[0].get_xdata()[0] == pytest.approx(res.estimate)


def test_funnel_bad_input():
    with pytest.raises(ValueError, match="levels"):
        ma.funnel_plot(EFFECTS[EFFECTS["included"]], levels=(0.9, 1.2))
    with pytest.raises(ValueError, match="funnel_plot needs"):
        ma.funnel_plot("effects")


def test_saved_files_are_byte_stable(tmp_path, groups):
    for run in ("a", "b"):
        ma.save_figure(ma.forest_panels(groups), tmp_path / run / "forest")
        plt.close("all")
    for suffix in (".png", ".svg"):
        first = (tmp_path / "a" / "forest").with_suffix(suffix).read_bytes()
        assert first == (tmp_path / "b" / "forest").with_suffix(suffix).read_bytes()
    svg = (tmp_path / "a" / "forest.svg").read_text()
    assert "<dc:date>" not in svg
    png = (tmp_path / "a" / "forest.png").read_bytes()
    assert b"Software" not in png and b"matplotlib" not in png.lower()


def test_saved_svg_does_not_depend_on_the_hash_seed(tmp_path):
    """Constrained layout's last bits depend on PYTHONHASHSEED; save_figure freezes them."""
    code = ("import sys, pandas as pd, metaally as ma, metaally.allyship as ally; "
            f"e = pd.read_csv({str(ROOT / 'results' / 'effects.csv')!r}); "
            "g = ma.pool_groups(e, 'components', levels=ally.COMPONENTS); "
            "ma.save_figure(ma.forest_panels(g), sys.argv[1])")
    outputs = []
    for seed in ("0", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, MPLBACKEND="Agg")
        stem = tmp_path / f"seed{seed}"
        subprocess.run([sys.executable, "-c", code, str(stem)], env=env, check=True)
        outputs.append(stem.with_suffix(".svg").read_bytes())
    assert outputs[0] == outputs[1]


def test_study_label():
    assert study_label("Bonam et al. (2019)", 2019) == "Bonam et al. (2019)"
    assert study_label("Case & Rios", 2017) == "Case & Rios (2017)"
    assert study_label("Someone et al.", float("nan")) == "Someone et al."


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_pyplot_is_lazy_and_agg_when_headless():
    env = {k: v for k, v in os.environ.items()
           if k not in {"DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"}}
    code = ("import sys, metaally as ma; ma.pool_by; ma.forest_plot; "
            "print('matplotlib.pyplot' in sys.modules)")
    assert _run(code, env) == "False"
    code = ("import metaally as ma, matplotlib; "
            "ma.forest_plot(__import__('pandas').DataFrame({'yi': [0.1], 'vi': [0.01]})); "
            "print(matplotlib.get_backend().lower())")
    assert _run(code, env) == "agg"
