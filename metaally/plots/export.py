"""Writing figures as byte-stable PNG (300 dpi), SVG and PDF files, each written atomically
(``metaally.data.files.atomic_write``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from metaally.data.files import atomic_write

__all__ = [
    "FORMATS",
    "SVG_HASHSALT",
    "save_figure",
    "save_pages",
]

SVG_HASHSALT = "metaally"


FORMATS: tuple[str, ...] = ("png", "svg", "pdf")


def save_figure(fig: Figure, stem: str | Path, dpi: int = 300,
                formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (``dpi``, print resolution), ``<stem>.svg`` and
    ``<stem>.pdf`` (vector); return the paths in ``formats`` order.

    The output is deterministic so that regenerating unchanged figures leaves the files
    identical: a fixed ``svg.hashsalt`` (element ids), no date or software version in the
    SVG or PDF metadata, no ``Software`` entry in the PNG, and the layout frozen (see
    ``_freeze_layout``).  Each file is written to a temporary name in its folder and
    renamed, so a killed run never leaves a half-written figure.
    """
    import matplotlib

    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}; got {formats}")
    _freeze_layout(fig)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": "metaally"},
        "pdf": {"CreationDate": None, "ModDate": None, "Creator": "metaally",
                "Producer": "metaally"},
    }
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path",
                                "pdf.fonttype": 42}):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=dpi,
                                                                 metadata=metadata[fmt]))
            paths.append(path)
    return paths


def save_pages(figures: Sequence[Figure], stem: str | Path, dpi: int = 300) -> list[Path]:
    """Save a multi-page figure (e.g. ``forest_pages``): one PNG and SVG per page,
    ``<stem>.png`` for a single page or ``<stem>-1.png``, ``<stem>-2.png`` … for several,
    and all pages in one vector ``<stem>.pdf``.  Returns every path written.

    Page files of an earlier run that this one does not write (``<stem>-3.png`` when there
    are now two pages, ``<stem>.png`` when there are now several, or the other way round)
    are removed, so the folder never shows a stale page beside the current ones."""
    from matplotlib.backends.backend_pdf import PdfPages

    figures = list(figures)
    if not figures:
        raise ValueError("figures is empty")
    stem = Path(stem)
    _remove_stale_pages(stem, len(figures))
    if len(figures) == 1:
        return save_figure(figures[0], stem, dpi)
    paths = []
    for i, fig in enumerate(figures, start=1):
        paths += save_figure(fig, stem.with_name(f"{stem.name}-{i}"), dpi, ("png", "svg"))
    pdf = stem.with_suffix(".pdf")
    import matplotlib

    def write_book(tmp: Path) -> None:
        with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(
                tmp, metadata={"CreationDate": None, "ModDate": None, "Creator": "metaally",
                               "Producer": "metaally"}) as book:
            for fig in figures:
                book.savefig(fig)

    atomic_write(pdf, write_book)
    return [*paths, pdf]


def _remove_stale_pages(stem: Path, pages: int) -> None:
    """Delete ``<stem>.png|svg`` (when ``pages`` > 1) and ``<stem>-<i>.png|svg`` for page
    numbers ``i`` above ``pages`` (all of them when ``pages`` == 1)."""
    if not stem.parent.is_dir():
        return
    keep = 0 if pages == 1 else pages
    for fmt in ("png", "svg"):
        stale = [p for p in stem.parent.glob(f"{stem.name}-*.{fmt}")
                 if p.stem[len(stem.name) + 1:].isdigit()
                 and int(p.stem[len(stem.name) + 1:]) > keep]
        if pages > 1:
            stale.append(stem.with_suffix(f".{fmt}"))
        for path in stale:
            path.unlink(missing_ok=True)


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
