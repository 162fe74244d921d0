"""Writing figures as byte-stable PNG (200 dpi) and SVG files, each written atomically
(``metaally.data.files.atomic_write``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from metaally.data.files import atomic_write

SVG_HASHSALT = "metaally"


def save_figure(fig: Figure, stem: str | Path, dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (``dpi``) and ``<stem>.svg``; return both paths.

    The output is deterministic so that regenerating unchanged figures leaves the files
    identical: a fixed ``svg.hashsalt`` (element ids), no date or software version in the
    SVG metadata, no ``Software`` entry in the PNG, and the layout frozen (see
    ``_freeze_layout``).
    """
    import matplotlib

    _freeze_layout(fig)
    stem = Path(stem)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi,
                                                  metadata={"Software": None}))
        atomic_write(svg, lambda tmp: fig.savefig(tmp, format="svg",
                                                  metadata={"Date": None, "Creator": "metaally"}))
    return [png, svg]


def _freeze_layout(fig: Figure) -> None:
    """Run the figure's layout engine once, then fix every Axes at its position rounded to
    1e-6 of the figure and switch the engine off.

    Constrained layout solves for the positions with an order that depends on Python's
    string hashing, so the last bits vary between processes; SVG clip-path ids hash those
    bits.  Rounding makes the saved files independent of ``PYTHONHASHSEED``.
    """
    if fig.get_layout_engine() is None:
        return
    fig.draw_without_rendering()
    positions = [(ax, np.round(ax.get_position().bounds, 6)) for ax in fig.axes]
    fig.set_layout_engine("none")
    for ax, bounds in positions:
        ax.set_position(bounds)
