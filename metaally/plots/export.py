"""Writing figures as byte-stable PNG (200 dpi) and SVG files."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

SVG_HASHSALT = "metaally"


def save_figure(fig: Figure, stem: str | Path, dpi: int = 200) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (``dpi``) and ``<stem>.svg``; return both paths.

    The output is deterministic so that regenerating unchanged figures leaves the files
    identical: a fixed ``svg.hashsalt`` (element ids), no date or software version in the
    SVG metadata, no ``Software`` entry in the PNG.
    """
    import matplotlib

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        fig.savefig(png, dpi=dpi, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": "metaally"})
    return [png, svg]
