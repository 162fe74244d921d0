"""The shared look of metaally figures and the lazy, display-safe pyplot import."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from metaally.models.printing import MINUS, fmt_num

__all__ = [
    "GUIDE",
    "INK",
    "MUTED",
    "POOLED",
    "PREDICTION",
    "RC",
    "number",
    "pyplot",
]

# print-size text: 8-9 pt at the figure's physical size
RC: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.spines.left": False,
    "svg.fonttype": "path",
}

INK = "#1f1f1f"          # study markers and lines
POOLED = "#1b4f8a"       # pooled diamond
PREDICTION = "#c0392b"   # prediction interval
GUIDE = "#8c8c8c"        # reference lines
MUTED = "#5a5a5a"        # secondary text


def number(x: float, digits: int = 2) -> str:
    """A number for figure text: :func:`metaally.models.printing.fmt_num` with a
    typographic minus sign (U+2212); a value that rounds to zero prints unsigned."""
    return fmt_num(x, digits, minus=MINUS)


def pyplot() -> ModuleType:
    """Import ``matplotlib.pyplot``, selecting the Agg backend when there is no display.

    A backend chosen by the user (``MPLBACKEND``, an earlier ``matplotlib.use``, a
    notebook) is left alone.
    """
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if headless:
            import matplotlib

            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
