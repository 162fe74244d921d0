"""Reading a studies CSV: ``load_studies`` and ``validate_file``.

A file is read by the columnar pass (``metaally.data.columnar``: pyarrow, every check run
once per distinct cell text), which returns the result for a clean file it can vouch for;
otherwise, and for standard input, by the exact line-by-line reader
(``metaally.data.studies.read_exact``), the source of every message.  So a file with
problems is read twice, and the messages never depend on which pass ran.
"""

from __future__ import annotations

from os import PathLike

import pandas as pd

from metaally.data.columnar import read_columnar
from metaally.data.studies import (
    StudiesValidationError,
    VocabularyArg,
    read_exact,
    resolve_schema,
    resolve_vocabulary,
)

__all__ = ["load_studies", "validate_file"]

#: Try the columnar pass before the exact reader; the tests switch it off to compare the two.
_COLUMNAR = True


def load_studies(path: str | PathLike[str], vocabulary: VocabularyArg = None) -> pd.DataFrame:
    """Read and validate a studies CSV; return one row per reported result.

    ``vocabulary``: the declared words of ``DECLARED_COLUMNS`` — a ``Vocabulary``, the
    path of a vocabulary file, or ``None`` for ``vocabulary.csv`` beside the CSV.

    Text columns are stripped strings (blank cells are ``""``), ``n``/``arms``/
    ``year`` integers, ``ref``/``n1``/``n2`` nullable integers, ``value*``
    floats (NaN when blank), ``peer_reviewed`` bool; a ``source_line`` column
    holds the CSV line each row came from.  Columns beyond the schema are kept
    as text.  ``path`` ``"-"`` reads standard input.  The file is streamed: a columnar
    pass (``metaally.data.columnar``) reads a clean file, and a file with problems is
    read again line by line for the messages.  Raises ``StudiesValidationError`` listing
    every problem, and ``OSError`` when the file cannot be opened.
    """
    frame, problems = _read(str(path), vocabulary, keep=True)
    if problems:
        raise StudiesValidationError(problems)
    return frame


def validate_file(path: str | PathLike[str], vocabulary: VocabularyArg = None) -> list[str]:
    """Every problem of a studies CSV, one ``PATH:LINE: column 'NAME': ...`` line each.

    An empty list means the file is valid.  ``vocabulary`` as in ``load_studies``; a
    malformed vocabulary file gives its own ``PATH:LINE`` problems.  ``path`` ``"-"``
    reads standard input.  The file is streamed (as in ``load_studies``): memory does not
    grow with its length.
    Never raises for the file's content; ``OSError`` (missing file, a directory, no
    permission) propagates.
    """
    return _read(str(path), vocabulary, keep=False)[1]


def _read(path: str, vocabulary: VocabularyArg, keep: bool) -> tuple[pd.DataFrame, list[str]]:
    """(frame, problems): the columnar pass if it vouches for the file, else the exact reader.
    ``keep=False`` (validation only) builds no frame.  For standard input (``-``) the
    vocabulary is the one given, or none."""
    try:
        schema = resolve_schema(resolve_vocabulary(path if path != "-" else ".", vocabulary))
    except ValueError as exc:
        return pd.DataFrame(), str(exc).splitlines()
    if path != "-" and _COLUMNAR:
        frame = read_columnar(path, schema, keep)
        if frame is not None:
            return frame, []
    return read_exact(path, schema, keep)
