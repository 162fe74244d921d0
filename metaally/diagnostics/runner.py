"""Run independent chunks of work in this process, in local processes, or on a Dask cluster.

Every chunk is a picklable ``(function, argument)`` pair whose result depends on
its argument alone (each chunk seeds its own generator from a
``numpy.random.SeedSequence`` key), so the three executors return identical
results in the same order; only the wall time differs.

- ``client=None, workers=1`` (default): in this process, one chunk at a time (a
  generator of chunks is consumed lazily, so memory holds one chunk);
- ``client=None, workers=None`` or ``workers=n``: a pool of ``os.cpu_count()`` (or n)
  local processes when there is more than one chunk (``spawn`` start method, so no
  forked BLAS threads);
- ``client`` a ``dask.distributed.Client`` or a scheduler address (``"tcp://…"``):
  the chunks are mapped on that cluster and gathered in submission order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from metaally.models.progress import progress_bar

__all__ = ["run_chunks"]

T = TypeVar("T")
R = TypeVar("R")


def run_chunks(
    func: Callable[[T], R],
    chunks: Iterable[T],
    sizes: Sequence[int],
    *,
    client: Any = None,
    workers: int | None = 1,
    progress: bool | None = None,
    desc: str = "chunks",
    unit: str = "items",
) -> list[R]:
    """``[func(c) for c in chunks]``, computed by the executor the arguments choose (see
    module).  ``sizes``: the units of work in each chunk (its length is the number of
    chunks), so that the progress bar counts ``unit``s."""
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ValueError(f"workers must be a positive number of processes; got {workers!r}")
    sizes = list(sizes)
    n_chunks = len(sizes)
    bar = _Sized(progress_bar(sum(sizes), desc, unit, progress), sizes)
    try:
        if client is not None:
            return _on_dask(func, list(chunks), client, bar)
        n_proc = (os.cpu_count() or 1) if workers is None else int(workers)
        if n_proc <= 1 or n_chunks <= 1:
            out = []
            for c in chunks:
                out.append(func(c))
                bar.update(1)
            return out
        return _on_processes(func, list(chunks), min(n_proc, n_chunks), bar)
    finally:
        bar.close()


class _Sized:
    """A bar advanced by each finished chunk's size, in submission order."""

    def __init__(self, bar: Any, sizes: list[int]) -> None:
        self.bar, self.sizes, self.done = bar, sizes, 0

    def update(self, n: int = 1) -> None:
        for _ in range(n):
            self.bar.update(self.sizes[self.done])
            self.done += 1

    def close(self) -> None:
        self.bar.close()


def _on_processes(func: Callable[[T], R], chunks: list[T], n_proc: int, bar: Any) -> list[R]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_proc, mp_context=context) as pool:
        out = []
        for result in pool.map(func, chunks):
            out.append(result)
            bar.update(1)
        return out


def _on_dask(func: Callable[[T], R], chunks: list[T], client: Any, bar: Any) -> list[R]:
    if isinstance(client, str):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError(
                "client is a scheduler address but dask.distributed is not installed "
                "(pip install 'dask[distributed]')"
            ) from exc
        with Client(client) as connected:
            return _on_dask(func, chunks, connected, bar)
    if not hasattr(client, "map") or not hasattr(client, "gather"):
        raise ValueError("client must be a dask.distributed.Client or a scheduler address")
    futures = client.map(func, list(chunks), pure=False)
    out = []
    for future in futures:  # gathered in submission order, whatever finishes first
        out.append(future.result())
        bar.update(1)
    return out
