"""Writing output files atomically.

Every file metaally writes (CSV tables, figures, Markdown reports) goes through
``atomic_write``: the content is written to a temporary file in the target's
directory and then renamed over the target (``os.replace``, atomic on POSIX and
Windows within one file system).  A run killed mid-write leaves either the old
file or the new one, never a truncated file that ``make`` would then take as
up to date, and no temporary file behind.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write",
]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The caller writes the whole file to the yielded path (e.g. ``fig.savefig(tmp)``).
    If the block raises (or the process is interrupted), the temporary file is removed
    and ``path`` keeps its previous content.  The parent directory is created.  A process
    killed outright (SIGKILL) cannot remove its temporary file; the next write of the same
    ``path`` does, so a rerun leaves no debris.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(
    path: str | os.PathLike[str], content: str | bytes | Callable[[Path], object]
) -> Path:
    """Write ``content`` to ``path`` atomically and return ``path`` as a ``Path``.

    ``content``: text (written as UTF-8 with the line ends given), bytes, or a function
    that writes the file when called with a temporary path (e.g.
    ``lambda p: frame.to_csv(p)``).
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        if isinstance(content, str):
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(content)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
    return target
