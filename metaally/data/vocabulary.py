"""Declared vocabularies: the words a review codes its studies with, kept in a data file.

A review declares the words of its coding columns (e.g. the components an intervention
targets, its techniques, what an outcome measures) in ``vocabulary.csv`` beside its
studies CSV, one word per line::

    column,word,label,description
    technique,workshop,Workshop,a facilitated group session

``column`` names a studies-CSV column whose words are declared (``DECLARED_COLUMNS``),
``word`` is the code written in that column (a lower-case identifier), ``label`` its
display name in tables and figures (blank: the word with "_" as spaces, capitalised),
``description`` what it means.  The order of the lines is the order of the levels in
every table and figure.  Declaring a word is all it takes for it to be accepted by the
validator and to appear in the outputs; no code changes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

__all__ = [
    "DECLARED_COLUMNS",
    "HEADER",
    "VOCABULARY_FILE",
    "Vocabulary",
    "Word",
    "level_label",
    "load_vocabulary",
    "vocabulary_beside",
]

VOCABULARY_FILE = "vocabulary.csv"
#: Studies-CSV columns whose words a review declares in its vocabulary file.
DECLARED_COLUMNS = (
    "components", "technique", "outcome_component", "outcome_domain", "comparator_technique"
)
HEADER = ("column", "word", "label", "description")
_WORD = re.compile(r"[a-z][a-z0-9_]*\Z")


@dataclass(frozen=True)
class Word:
    """One declared word: the column it belongs to, the code, its label and meaning."""

    column: str
    word: str
    label: str
    description: str


@dataclass(frozen=True)
class Vocabulary:
    """The declared words of a review (``load_vocabulary``), in file order.

    ``path`` is the file they were read from (``None`` when built in code); the
    validator names it in the message for an undeclared word.  ``declared`` false means
    no vocabulary file exists: the declared columns then take any lower-case words
    (``vocabulary_beside``), checked only for their form.
    """

    words: tuple[Word, ...] = ()
    path: str | None = None
    declared: bool = True

    def levels(self, column: str) -> tuple[str, ...]:
        """The declared words of ``column``, in file order (empty if none)."""
        return tuple(w.word for w in self.words if w.column == column)

    def labels(self, column: str | None = None) -> dict[str, str]:
        """Word -> display label (of ``column``, or of every column)."""
        return {w.word: w.label for w in self.words if column in (None, w.column)}

    def where(self) -> str:
        """Where a new word is declared, as an error message words it."""
        target = self.path or VOCABULARY_FILE + " beside the studies CSV"
        return f"declare it in {target} with a line 'column,word,label,description'"


def level_label(level: str, labels: Mapping[str, str] | None = None) -> str:
    """Display name of a coding level: its declared label when ``labels`` has one, else the
    word with "_" as spaces, capitalised ("story_video" -> "Story video")."""
    if labels and level in labels:
        return labels[level]
    text = level.replace("_", " ")
    return text[:1].upper() + text[1:]


def load_vocabulary(path: str | PathLike[str]) -> Vocabulary:
    """Read and check a vocabulary file (format in the module docstring).

    Raises ``ValueError`` listing every problem as ``PATH:LINE: column 'NAME': ...``
    (unknown ``column``, a word that is not a lower-case identifier, a word declared twice
    for one column, a missing header column); ``OSError`` when the file cannot be read.
    """
    path = str(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[str] = []
    words: list[Word] = []
    header: list[str] | None = None
    seen: dict[tuple[str, str], int] = {}
    previous = 0
    for fields in reader:
        line, previous = previous + 1, reader.line_num
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        if header is None:
            header = fields
            missing = [c for c in HEADER[:2] if c not in header]
            if missing:
                problems += [f"{path}:{line}: column '{c}': required column is missing from "
                             f"the header (header {','.join(HEADER)})" for c in missing]
                break
            continue
        row = dict(zip(header, fields, strict=False))
        column, word = row.get("column", ""), row.get("word", "")
        if column not in DECLARED_COLUMNS:
            problems.append(f"{path}:{line}: column 'column': unknown column {column!r} "
                            f"(one of {', '.join(DECLARED_COLUMNS)})")
            continue
        if not _WORD.match(word):
            problems.append(f"{path}:{line}: column 'word': {word!r} is not a valid word "
                            "(lower-case letters, digits and _, starting with a letter)")
            continue
        if (column, word) in seen:
            problems.append(f"{path}:{line}: column 'word': {column} {word!r} is declared "
                            f"again (first on line {seen[column, word]})")
            continue
        seen[column, word] = line
        words.append(Word(column, word, row.get("label", "") or level_label(word),
                          row.get("description", "")))
    if header is None:
        problems.append(f"{path}:1: column '(file)': the file is empty (a header "
                        f"{','.join(HEADER)} and one line per word)")
    if problems:
        raise ValueError("\n".join(problems))
    return Vocabulary(tuple(words), path)


def vocabulary_beside(studies_path: str | PathLike[str]) -> Vocabulary:
    """The vocabulary declared in ``vocabulary.csv`` beside a studies CSV; when there is
    none, an undeclared (open) vocabulary naming where the file would go: any lower-case
    word is then accepted in the declared columns, and labels are ``level_label``'s."""
    path = Path(studies_path).parent / VOCABULARY_FILE
    if path.is_file():
        return load_vocabulary(path)
    return Vocabulary((), str(path), declared=False)
