"""Chunked computations and when they show a progress bar (tqdm).

Every computation over many fits (random_effects_batch, GOSH, permutation tests) runs
in chunks of about :data:`CHUNK_ELEMENTS` array entries (:func:`chunks`), so that
temporaries stay in the tens of megabytes whatever the number of fits, and advances
one bar per chunk.  Bar policy:

- ``progress=False``: never shown;
- ``progress=True``: always shown (on stderr, even when it is not a terminal);
- ``progress=None`` (the default): shown only when stderr is a terminal and the
  call is still running after :data:`DELAY` seconds, so calls that finish in
  under ~2 s, scripts writing to a log, and test runs print nothing.

tqdm is imported only when a bar may be shown.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Protocol

__all__ = ["CHUNK_ELEMENTS", "DELAY", "Bar", "chunks", "progress_bar", "slices"]

DELAY = 2.0
"""Seconds a call runs before its bar appears (``progress=None``)."""

CHUNK_ELEMENTS = 2**21
"""Array entries (fits × entries per fit) computed per chunk."""


class Bar(Protocol):
    """What a chunked loop needs from a bar: advance it and close it."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


class _NoBar:
    """The bar of a call that shows none."""

    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def progress_bar(total: int, desc: str, unit: str, progress: bool | None = None) -> Bar:
    """A bar over ``total`` units of work (``update(n)`` after each chunk), or a no-op.

    ``progress`` follows the module policy: False never, True always, None only
    in a terminal and after :data:`DELAY` seconds.
    """
    if progress is False or (progress is None and not _stderr_is_terminal()):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, delay=0.0 if progress else DELAY,
                file=sys.stderr, dynamic_ncols=True)


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def chunks(
    total: int, per_item: int, desc: str, unit: str, progress: bool | None = None
) -> Iterator[slice]:
    """Slices covering ``range(total)``, each of at most max(1, CHUNK_ELEMENTS // per_item)
    items (``per_item``: array entries one item needs), with a bar (:func:`progress_bar`)
    advanced after each chunk and closed at the end."""
    bar = progress_bar(total, desc, unit, progress)
    try:
        for rows in slices(total, per_item):
            yield rows
            bar.update(rows.stop - rows.start)
    finally:
        bar.close()


def slices(total: int, per_item: int) -> list[slice]:
    """The slices :func:`chunks` walks through, without a bar (for work handed to
    :func:`metaally.diagnostics.runner.run_chunks`)."""
    step = max(1, CHUNK_ELEMENTS // max(1, per_item))
    return [slice(start, min(start + step, total)) for start in range(0, total, step)]
