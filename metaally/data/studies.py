"""The studies CSV: its schema, loading, and validation with file:line:column messages.

One row of the CSV is one reported result of one study (per condition, per
outcome, per time point).  The schema below is the single definition of the
columns, their fixed vocabularies and which are required; the validator, the codebook
(``data/README.md``, checked by the tests) and later stages all read it.  The words
of the review's own coding columns (``DECLARED_COLUMNS``: targeted components,
techniques, what an outcome measures) are not in the code: they are declared in the
vocabulary file beside the CSV (``metaally.data.vocabulary``).

Every problem is reported as ``PATH:LINE: column 'NAME': what is wrong (what
was expected)``, LINE being the physical line of the CSV file, and all problems
are collected before anything is raised.  The file is only ever read.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import io
import itertools
import math
import re
import sys
import unicodedata
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from metaally.data.vocabulary import (
    DECLARED_COLUMNS,
    Vocabulary,
    load_vocabulary,
    vocabulary_beside,
)

__all__ = [
    "CLUSTER_COLUMNS",
    "COLUMNS",
    "COMPARATORS",
    "COMPARATOR_WORDS",
    "Column",
    "DESIGNS",
    "DIRECTIONS",
    "METRICS",
    "METRIC_COLUMNS",
    "Metric",
    "REQUIRED_COLUMNS",
    "ROLES",
    "Rule",
    "SCHEMA",
    "SIGNS",
    "STUDY_LEVEL",
    "StudiesValidationError",
    "VocabularyArg",
    "YEAR_MAX",
    "read_exact",
    "resolve_schema",
    "resolve_vocabulary",
]

# --------------------------------------------------------------------------- schema

COMPARATORS = ("control", "active")
ROLES = ("intervention_effect", "association")
DESIGNS = ("between", "prepost")
DIRECTIONS = ("higher", "lower")
#: Words a comparison arm may have besides the declared techniques and the declared
#: ``comparator_technique`` words (network meta-analysis nodes): ``control`` (no or neutral
#: treatment) and ``unspecified`` (not described: a node of its own per study).
COMPARATOR_WORDS = ("control", "unspecified")
SIGNS = ("+", "-", "\u2212")


#: A cross-cell rule of a metric: parsed cells -> [(column, what is wrong, what was expected)].
Rule = Callable[[dict[str, Any]], list[tuple[str, str, str]]]


@dataclass(frozen=True)
class Metric:
    """Validation rule of one effect-size metric.

    Values must lie in [low, high] (or (low, high) when ``open_interval``);
    ``contrast`` says whether the metric can express an intervention contrast
    (an association measure such as R² cannot); ``designs`` are the designs it
    can come from.  ``uses_value`` is false for metrics computed from other
    columns (means, counts, ...); ``columns`` must be filled for the metric,
    ``optional`` may be; ``rules`` check values across cells.
    """

    label: str
    low: float = -math.inf
    high: float = math.inf
    open_interval: bool = False
    contrast: bool = True
    designs: tuple[str, ...] = DESIGNS
    uses_value: bool = True
    columns: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    def admits(self, x: float) -> bool:
        """Is ``x`` inside the metric's valid range?"""
        if self.open_interval:
            return self.low < x < self.high
        return self.low <= x <= self.high

    def expected(self) -> str:
        """The valid range as an error message words it, e.g. ``d in (-inf, inf)``."""
        left = "(" if self.open_interval or math.isinf(self.low) else "["
        right = ")" if self.open_interval or math.isinf(self.high) else "]"
        return f"{self.label} in {left}{self.low:g}, {self.high:g}{right}"


def _positive(*names: str) -> Rule:
    """Each named cell > 0 (standard deviations)."""
    def rule(v: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [(name, f"{name} = {v[name]:g} is not positive", "a standard deviation > 0")
                for name in names if v.get(name) is not None and v[name] <= 0]
    return rule


def _interval_rule(log: bool) -> Rule:
    """ci_low/ci_high: both or neither, around the value (> 0 for ratios); or se > 0, not both."""
    def rule(v: dict[str, Any]) -> list[tuple[str, str, str]]:
        low, high, se, x = v.get("ci_low"), v.get("ci_high"), v.get("se"), v.get("value")
        if (low is None) != (high is None):
            present, absent = ("ci_low", "ci_high") if high is None else ("ci_high", "ci_low")
            return [(absent, f"{present} is given but {absent} is blank",
                     "both bounds of the 95% CI")]
        if low is None:
            if se is not None and se <= 0:
                return [("se", f"se = {se:g} is not positive", "a standard error > 0")]
            if se is not None and x is None:
                return [("se", "an se is given for a range", "an se only for a single value")]
            return []
        if se is not None:
            return [("se", "both a CI and an se are given", "either ci_low and ci_high or se")]
        if x is None:
            return [("ci_low", "a CI is given for a range", "a CI only around a single value")]
        if log and low <= 0:
            return [("ci_low", f"ci_low = {low:g} is not positive", "a ratio's CI bound > 0")]
        if not low < x < high:
            return [("ci_low", f"the CI {low:g} to {high:g} does not contain the value {x:g}",
                     "ci_low < value < ci_high")]
        return []
    return rule


def _events_rule(v: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e, f"{e} = {v[e]} exceeds {n} = {v[n]}", f"0 <= {e} <= {n}")
            for e, n in (("events1", "n1"), ("events2", "n2"))
            if v.get(e) is not None and v.get(n) is not None and v[e] > v[n]]


def _chi2_rule(v: dict[str, Any]) -> list[tuple[str, str, str]]:
    x, n = v.get("value"), v.get("n")
    if x is not None and n is not None and x >= n:
        return [("value", f"chi2 = {x:g} is not below n = {n}",
                 "chi2 < n, so that r = sqrt(chi2/n) < 1")]
    return []


def _prepost_rule(v: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    r = v.get("r_prepost")
    if r is not None and not -1 < r < 1:
        out.append(("r_prepost", f"r_prepost = {r:g} is out of range", "-1 < r_prepost < 1"))
    for name in ("n1", "n2"):
        if v.get(name) is not None and v[name] < 3:
            out.append((name, f"{name} = {v[name]} is too small for a pre-post change",
                        "at least 3 per arm"))
    return out


def _median_rule(v: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for arm in ("1", "2"):
        quartiles = (f"q1_{arm}", f"q3_{arm}")
        extremes = (f"min{arm}", f"max{arm}")
        have_q = [v.get(c) is not None for c in quartiles]
        have_r = [v.get(c) is not None for c in extremes]
        broken = False
        for pair, have in ((quartiles, have_q), (extremes, have_r)):
            if any(have) and not all(have):
                absent = pair[have.index(False)]
                out.append((absent, f"{pair[have.index(True)]} is given but {absent} is blank",
                            "both of " + " and ".join(pair)))
                broken = True
        if broken:
            continue
        if not any(have_q) and not any(have_r):
            out.append((quartiles[0], "needed for metric 'medians'",
                        f"q1_{arm} and q3_{arm}, or min{arm} and max{arm}"))
            continue
        order = [c for c in (extremes[0], quartiles[0], f"median{arm}", quartiles[1],
                             extremes[1]) if v.get(c) is not None]
        bad = next(((a, b) for a, b in zip(order, order[1:], strict=False) if v[a] > v[b]), None)
        if bad:
            a, b = bad
            out.append((a, f"{a} = {v[a]:g} exceeds {b} = {v[b]:g}",
                        "min <= q1 <= median <= q3 <= max"))
        elif v[order[0]] == v[order[-1]]:
            out.append((order[-1], f"{order[0]} equals {order[-1]}: no spread",
                        "a spread > 0 to estimate an SD"))
    return out


_PREPOST_COLUMNS = ("mean_pre1", "mean_post1", "sd_pre1", "mean_pre2", "mean_post2", "sd_pre2",
                    "n1", "n2")
_MEDIAN_OPTIONAL = ("q1_1", "q3_1", "min1", "max1", "q1_2", "q3_2", "min2", "max2")

#: Adding a metric: one entry here (its columns and validation rules) and one function
#: in ``metaally.effects.compute.METRIC_EFFECTS`` (data/README.md, "Adding a metric").
METRICS: dict[str, Metric] = {
    "d": Metric("Cohen's d", -10.0, 10.0, optional=("ci_low", "ci_high", "se"),
                rules=(_interval_rule(log=False),)),
    "g": Metric("Hedges' g", -10.0, 10.0, optional=("ci_low", "ci_high", "se"),
                rules=(_interval_rule(log=False),)),
    "f2": Metric("Cohen's f2", 0.0, math.inf),
    "r": Metric("a correlation r", -1.0, 1.0, open_interval=True),
    "t": Metric("an independent-groups t statistic", -math.inf, math.inf, designs=("between",)),
    "F": Metric("an F(1, df) statistic", 0.0, math.inf, designs=("between",), columns=("sign",)),
    "p": Metric("a two-sided p-value", 0.0, 1.0, open_interval=True, designs=("between",),
                columns=("sign",)),
    "chi2": Metric("a chi-square(1) statistic", 0.0, math.inf, designs=("between",),
                   columns=("sign",), rules=(_chi2_rule,)),
    "or": Metric("an odds ratio", 0.0, math.inf, open_interval=True, designs=("between",),
                 optional=("ci_low", "ci_high"), rules=(_interval_rule(log=True),)),
    "means": Metric("group means", designs=("between",), uses_value=False,
                    columns=("mean1", "sd1", "mean2", "sd2", "n1", "n2"),
                    rules=(_positive("sd1", "sd2"),)),
    "counts": Metric("event counts", designs=("between",), uses_value=False,
                     columns=("events1", "events2", "n1", "n2"), rules=(_events_rule,)),
    "prepost": Metric("pre-post means of two groups", uses_value=False, columns=_PREPOST_COLUMNS,
                      optional=("r_prepost",),
                      rules=(_positive("sd_pre1", "sd_pre2"), _prepost_rule)),
    "medians": Metric("medians with quartiles or ranges", designs=("between",), uses_value=False,
                      columns=("median1", "median2", "n1", "n2"), optional=_MEDIAN_OPTIONAL,
                      rules=(_median_rule,)),
    "R2": Metric("R2", 0.0, 1.0, contrast=False),
}
#: Columns only some metrics use: filled on another metric's row, they are an error.
METRIC_COLUMNS = tuple(dict.fromkeys(
    c for m in METRICS.values() for c in (*m.columns, *m.optional) if c not in ("n1", "n2")
))
#: Optional columns of any contrast row: a cluster-randomised design (Hedges 2007).
CLUSTER_COLUMNS = ("icc", "cluster_size")


@dataclass(frozen=True)
class Column:
    """One column of the studies CSV.

    ``kind`` is how a cell is parsed: ``text``, ``id`` (lower-case identifier), ``ids``
    (``;``-separated identifiers),
    ``int``, ``float``, ``bool`` (true/false), ``vocab`` (one word of
    ``vocabulary``) or ``multi`` (``;``-separated words of ``vocabulary``).
    ``required`` columns must be in the header; ``blank_ok`` cells may be empty;
    ``minimum`` bounds an ``int`` from below.  For a column of ``DECLARED_COLUMNS`` the
    ``vocabulary`` comes from the review's vocabulary file and ``declared_in`` says where
    a new word is declared.
    """

    name: str
    kind: str
    description: str
    required: bool = True
    blank_ok: bool = False
    vocabulary: tuple[str, ...] = ()
    minimum: int | None = None
    declared_in: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("study_id", "id", "first author + year, lower case, e.g. bonam2019"),
    Column("ref", "int", "the review's reference number; blank for studies added later",
           blank_ok=True, minimum=1),
    Column("citation", "text", "e.g. 'Bonam et al. (2019)'"),
    Column("year", "int", "publication year", minimum=1900),
    Column("table_group", "text", "Table 2's 'Targeted component' label verbatim", blank_ok=True),
    Column("components", "multi", "targeted components, ';'-separated (declared words)"),
    Column("intervention", "text", "what participants received"),
    Column("technique", "multi",
           "the technique of the intervention arm, ';'-separated (declared words)"),
    Column("participants", "text", "who took part"),
    Column("n", "int", "total sample size of the study (or of the comparison)", minimum=1),
    Column("arms", "int", "number of conditions the total n is split across", minimum=2),
    Column("n1", "int", "per-arm n of the intervention arm, if reported", required=False,
           blank_ok=True, minimum=2),
    Column("n2", "int", "per-arm n of the comparison arm, if reported", required=False,
           blank_ok=True, minimum=2),
    Column("comparison", "text", "what the intervention is compared with", blank_ok=True),
    Column("comparator", "vocab", "control or active comparator", vocabulary=COMPARATORS),
    Column("design", "vocab", "between-groups contrast or possible pre-post change",
           vocabulary=DESIGNS),
    Column("outcome", "text", "the outcome as Table 2 words it"),
    Column("direction", "vocab", "direction of the outcome described as the effect",
           vocabulary=DIRECTIONS),
    Column("outcome_component", "vocab",
           "which component the outcome measures (declared words)"),
    Column("outcome_domain", "vocab", "kind of outcome (declared words)"),
    Column("timepoint", "text", "when the outcome was measured, e.g. post, one week later"),
    Column("role", "vocab", "intervention effect or association", vocabulary=ROLES),
    Column("metric", "vocab", "effect-size metric of value / value_low / value_high",
           vocabulary=tuple(METRICS)),
    Column("value", "float", "a single reported value", blank_ok=True),
    Column("value_low", "float", "lower bound of a reported range", blank_ok=True),
    Column("value_high", "float", "upper bound of a reported range", blank_ok=True),
    *(Column(name, "float", text, required=False, blank_ok=True) for name, text in (
        ("ci_low", "lower bound of the 95% CI of value (d, g, or)"),
        ("ci_high", "upper bound of the 95% CI of value (d, g, or)"),
        ("se", "standard error of value (d, g)"),
        ("mean1", "mean of the intervention arm (means)"),
        ("sd1", "SD of the intervention arm (means)"),
        ("mean2", "mean of the comparison arm (means)"),
        ("sd2", "SD of the comparison arm (means)"),
        ("mean_pre1", "pre-test mean of the intervention arm (prepost)"),
        ("mean_post1", "post-test mean of the intervention arm (prepost)"),
        ("sd_pre1", "pre-test SD of the intervention arm (prepost)"),
        ("mean_pre2", "pre-test mean of the comparison arm (prepost)"),
        ("mean_post2", "post-test mean of the comparison arm (prepost)"),
        ("sd_pre2", "pre-test SD of the comparison arm (prepost)"),
        ("r_prepost", "pre-post correlation (prepost); blank: 0.5 assumed"),
        ("median1", "median of the intervention arm (medians)"),
        ("q1_1", "first quartile of the intervention arm (medians)"),
        ("q3_1", "third quartile of the intervention arm (medians)"),
        ("min1", "minimum of the intervention arm (medians)"),
        ("max1", "maximum of the intervention arm (medians)"),
        ("median2", "median of the comparison arm (medians)"),
        ("q1_2", "first quartile of the comparison arm (medians)"),
        ("q3_2", "third quartile of the comparison arm (medians)"),
        ("min2", "minimum of the comparison arm (medians)"),
        ("max2", "maximum of the comparison arm (medians)"),
        ("icc", "intraclass correlation of a cluster-randomised design"),
        ("cluster_size", "mean cluster size of a cluster-randomised design"),
    )),
    Column("events1", "int", "participants with the event, intervention arm (counts)",
           required=False, blank_ok=True, minimum=0),
    Column("events2", "int", "participants with the event, comparison arm (counts)",
           required=False, blank_ok=True, minimum=0),
    Column("sign", "vocab", "for F, p, chi2: + if the intervention arm moved in `direction`",
           required=False, blank_ok=True, vocabulary=SIGNS),
    Column("peer_reviewed", "bool", "true, or false for a preprint"),
    Column("notes", "text", "assumptions and remarks", blank_ok=True),
    Column("comparator_technique", "multi",
           "what the comparison arm received: control, or its technique(s), ';'-separated; "
           "blank means control", required=False, blank_ok=True),
)


SCHEMA: dict[str, Column] = {c.name: c for c in COLUMNS}
REQUIRED_COLUMNS = tuple(c.name for c in COLUMNS if c.required)
#: Columns that describe the study, not the result: one value per study_id.
STUDY_LEVEL = ("ref", "citation", "year", "peer_reviewed", "table_group", "components")
YEAR_MAX = 2100
_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+\Z", re.ASCII)
_MINUS_SIGNS = "\u2212\u2012\u2013\u2014\ufe63\uff0d"


class StudiesValidationError(ValueError):
    """A studies CSV broke the schema; ``problems`` lists every problem, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the studies file:\n"
            + "\n".join(capped_problems(self.problems))
        )


# --------------------------------------------------------------------------- public API


VocabularyArg = Vocabulary | str | PathLike[str] | None


#: How many problems a report shows before "... and N more".
PROBLEMS_SHOWN = 50


def capped_problems(problems: list[str], limit: int = PROBLEMS_SHOWN) -> list[str]:
    """The first ``limit`` problems, then one line saying how many more there are."""
    if len(problems) <= limit:
        return list(problems)
    return [*problems[:limit], f"... and {len(problems) - limit} more problem(s)"]


def resolve_vocabulary(path: str | PathLike[str], vocabulary: VocabularyArg = None) -> Vocabulary:
    """The ``Vocabulary`` a studies CSV at ``path`` is checked against (see ``load_studies``)."""
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    if vocabulary is None:
        return vocabulary_beside(path)
    return load_vocabulary(vocabulary)


def resolve_schema(vocabulary: Vocabulary) -> dict[str, Column]:
    """``SCHEMA`` with the declared columns' words taken from ``vocabulary`` (without a
    vocabulary file: any identifiers, ``kind`` "id" / "ids")."""
    def declared(col: Column) -> Column:
        if not vocabulary.declared:
            return replace(col, kind="ids" if col.kind == "multi" else "id")
        words = vocabulary.levels(col.name)
        if col.name == "comparator_technique":  # any technique, or a comparator's own word
            words = (COMPARATOR_WORDS[0], *vocabulary.levels("technique"), *words,
                     COMPARATOR_WORDS[1])
        return replace(col, vocabulary=words, declared_in=vocabulary.where())

    return {name: declared(col) if name in DECLARED_COLUMNS else col
            for name, col in SCHEMA.items()}


# --------------------------------------------------------------------------- reading

#: Rows checked together: the reader holds one chunk at a time, so memory does not grow
#: with the file (only the frame being built and the per-row fingerprints do).
_CHUNK_ROWS = 8192
#: Bytes read from the file at a time.
_BLOCK_BYTES = 1 << 20
#: Numbers are squared on the way to an effect size and its variance (d², g²/(2n)); a
#: magnitude above 1e100 would overflow there, so the validator rejects it at its cell.
FLOAT_MAGNITUDE_MAX = 1e100
#: Integers are stored as 64-bit integers.
INT_MAX = 2**63 - 1
#: What the file is called in messages when it is read from standard input (``-``).
STDIN_NAME = "<stdin>"


class _Problems:
    """Problems of one file as ``PATH:LINE: column 'NAME': what (expected)`` lines.

    ``add`` may be called in any order (the reader, the chunks and the whole-file
    checks run at different times); ``lines()`` returns them sorted by line, stably.
    """

    def __init__(self, path: str):
        self.path = path
        self._items: list[tuple[int, int, str]] = []
        self._stopped = False

    def stop(self, line: int, what: str, expected: str) -> None:
        """The file is not a text CSV at all: this problem replaces every other."""
        self._items.clear()
        self.add(line, "(file)", what, expected)
        self._stopped = True

    def add(self, line: int, column: str, what: str, expected: str) -> None:
        if self._stopped:
            return
        where = f"{self.path}:{line}: column '{_printable(column)}'"
        self._items.append((line, len(self._items), f"{where}: {what} ({expected})"))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def lines(self) -> list[str]:
        return [text for _, _, text in sorted(self._items)]


def _printable(text: str) -> str:
    """A column name as a message quotes it: control characters escaped (one problem stays
    one line), and \\ and ' escaped (the quoted name ends at the first bare ')."""
    text = text.replace("\\", "\\\\").replace("'", "\\'")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def read_exact(path: str, schema: dict[str, Column],
               keep: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """(frame, problems) of a studies CSV checked against ``schema`` (``resolve_schema``),
    read line by line in one streaming pass: the exact reader, source of every message.

    ``keep=False`` (validation only) builds no frame.  ``path == "-"`` reads standard input.
    """
    name = STDIN_NAME if path == "-" else path
    problems = _Problems(name)
    with _open_binary(path) as fh, _without_cyclic_gc():
        lines = itertools.chain.from_iterable(_decoded_lines(fh, problems))
        chunks = _read_chunks(lines, problems, _CHUNK_ROWS)
        first = next(chunks, None)
        if first is None:
            if not problems:
                problems.add(1, "(file)", "the file is empty",
                             "a header line and at least one data row")
            return pd.DataFrame(), problems.lines()
        header_line, _, header = first[0]
        header = [f.strip() for f in header]
        if _wrong_delimiter(header_line, header, problems):
            return pd.DataFrame(), problems.lines()
        columns = _check_header(header_line, header, problems)
        rows = _Rows(header, columns, keep and not problems, schema)
        rows.check(first[1:], problems)
        for chunk in chunks:
            rows.check(chunk, problems)
    if rows.count == 0:
        problems.add(header_line + 1, "(file)", "there are no data rows after the header",
                     "at least one data row")
    rows.check_whole_file(problems)
    if problems:
        return pd.DataFrame(), problems.lines()
    return rows.frame(), []


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause Python's cycle collector while reading (as parsers commonly do): the reader makes
    millions of small lists and tuples, none in a cycle, and each full collection walks all
    live ones, which made reading grow faster than the file (1e5 -> 3e5 rows: 3.5x time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _open_binary(path: str) -> Any:
    if path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    return open(path, "rb")


def _decoded_lines(fh: Any, problems: _Problems) -> Iterator[list[str]]:
    """Physical lines of a byte stream as text (line endings kept), a block's list at a time.

    Stops at binary content (a NUL byte) or UTF-16; undecodable UTF-8 is reported
    once, at its line, and replaced so that the rest of the file is still checked.
    """
    state = {"line": 0, "bad_encoding": False}
    carry = b""
    first = True
    while block := fh.read(_BLOCK_BYTES):
        data = carry + block
        # cut after the last whole line: at a \n, else (old Mac files) at a \r that is not
        # the last byte (its \n may be in the next block)
        cut = data.rfind(b"\n") + 1 or data.rfind(b"\r", 0, len(data) - 1) + 1
        data, carry = data[:cut], data[cut:]
        if first and data:
            first = False
            if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                problems.stop(1, "the file is UTF-16 text",
                              "a CSV file saved as UTF-8, e.g. Excel's 'CSV UTF-8'")
                return
            data = data.removeprefix(codecs.BOM_UTF8)
        lines = _block_lines(data, state, problems)
        if lines is None:
            return
        yield lines
    if carry:
        if first:
            carry = carry.removeprefix(codecs.BOM_UTF8)
        yield _block_lines(carry, state, problems) or []


def _block_lines(data: bytes, state: dict[str, Any], problems: _Problems) -> list[str] | None:
    """The lines of a block of whole lines; None (and the problem reported) at a NUL byte."""
    nul = data.find(b"\x00")
    if nul >= 0:
        problems.stop(state["line"] + _line_ends(data[:nul]) + 1,
                      "binary content (a NUL byte)", "a text CSV file")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not state["bad_encoding"]:
            state["bad_encoding"] = True
            problems.add(state["line"] + _line_ends(data[: exc.start]) + 1, "(file)",
                         "the bytes are not valid UTF-8 text (it looks saved as "
                         "Windows-1252/Latin-1)",
                         "a CSV file saved as UTF-8, e.g. Excel's 'CSV UTF-8'")
        text = data.decode("utf-8", errors="replace")
    if "\r" in text and text.count("\r") != text.count("\r\n"):  # bare CR ends (old Mac)
        lines = io.StringIO(text, newline="").readlines()
    else:
        parts = text.split("\n")
        last = parts.pop()
        lines = [part + "\n" for part in parts]
        if last:
            lines.append(last)
    state["line"] += len(lines)
    return lines


def _line_ends(data: bytes) -> int:
    """Line ends in ``data``: LF, CRLF and a bare CR (the csv reader's newline="")."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _read_chunks(
    lines: Iterator[str], problems: _Problems, size: int
) -> Iterator[list[tuple[int, int, list[str]]]]:
    """Non-blank CSV records as (first physical line, last physical line, fields), in
    lists of ``size`` records.

    Quoting errors are reported at the line where the record starts (where the
    quote opened) and reading goes on with the next line.
    """
    reader = csv.reader(lines, strict=True)
    previous = 0
    chunk: list[tuple[int, int, list[str]]] = []
    append = chunk.append
    while True:
        try:
            for fields in reader:  # a for loop: no Python call per record
                end = reader.line_num
                joined = "".join(fields)
                if joined and not joined.isspace():
                    append((previous + 1, end, fields))
                    if len(chunk) == size:
                        yield chunk
                        chunk = []
                        append = chunk.append
                previous = end
            break
        except csv.Error as exc:  # report, then go on with the next line
            start, previous = previous + 1, reader.line_num
            problems.add(start, "(file)", *_csv_error(str(exc), start, previous))
    if chunk:
        yield chunk


def _csv_error(message: str, start: int, end: int) -> tuple[str, str]:
    """(what, expected) for a csv module error, with a hint on the usual cause."""
    if "end of data" in message or "EOF" in message:
        return (f"a quoted cell opened on this line is never closed (the file ends inside it, "
                f"{end - start + 1} lines later)", 'a closing " for every opening "')
    if "field larger than field limit" in message:
        return (f"a cell is longer than {csv.field_size_limit()} characters (a quote opened "
                "on this line and not closed swallows the lines after it)",
                'a closing " for every opening "')
    if "expected after" in message and end > start:
        return (f"a quoted cell opened on this line runs on to line {end}, where a quote is "
                "followed by more text (a closing quote is missing)",
                'a closing " for every opening "')
    if "expected after" in message:
        return ("a quote ends a quoted cell but the cell goes on (a \" inside a quoted cell "
                "must be written \"\")", 'quotes inside a quoted cell doubled, e.g. "say ""hi"""')
    return f"the CSV cannot be parsed: {message}", "well-formed CSV quoting"


def _wrong_delimiter(line: int, header: list[str], problems: _Problems) -> bool:
    """A header that is one field holding ';'- or tab-separated column names."""
    if len(header) != 1:
        return False
    for delimiter, label in ((";", "';'"), ("\t", "tab")):
        names = [n.strip() for n in header[0].split(delimiter)]
        if len(names) > 1 and len(set(names) & set(SCHEMA)) >= 2:
            problems.add(line, "(file)", f"the columns are separated by {label}, not by commas",
                         "a comma-separated file: save it as 'CSV (comma delimited)' or "
                         "'CSV UTF-8'")
            return True
    return False


def _check_header(line: int, header: list[str], problems: _Problems) -> set[str]:
    """Schema columns present in the header (reports missing and repeated ones)."""
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name == "":
            problems.add(line, f"(column {position})", "the column has no name",
                         "a name for every column")
        elif name in seen:
            problems.add(line, name, "the column name is repeated", "each column once")
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            problems.add(line, name, "required column is missing from the header",
                         "every required column of the codebook data/README.md")
    return {name for name in seen if name in SCHEMA}


# --------------------------------------------------------------------------- cells


class _CellError(ValueError):
    """What is wrong with one cell (the expectation comes from its Column)."""


def _parse_cell(col: Column, text: str) -> Any:
    """The parsed cell (None when blank and allowed); raises ``_CellError``."""
    if text == "":
        if col.blank_ok:
            return None
        raise _CellError("value is missing")
    return _CELL_PARSERS[col.kind](col, text)


def _expected(col: Column) -> str:
    if col.kind in ("vocab", "multi"):
        words = ", ".join(col.vocabulary) or "the declared words"
        text = ("one of " + words if col.kind == "vocab"
                else "one or more of " + words + " separated by ';', each once")
        return text + (f"; to add a word, {col.declared_in}" if col.declared_in else "")
    if col.kind == "int":
        upper = f" and <= {YEAR_MAX}" if col.name == "year" else ""
        return f"a whole number >= {col.minimum}{upper}"
    return {
        "id": "lower-case letters, digits and _, starting with a letter, e.g. bonam2019",
        "ids": "lower-case words (letters, digits and _) separated by ';', each once",
        "float": f"a finite number of magnitude at most {FLOAT_MAGNITUDE_MAX:g}",
        "bool": "true or false",
        "text": "a non-empty text",
    }[col.kind]


def _parse_id(col: Column, text: str) -> str:
    if not _ID.match(text):
        raise _CellError(f"{text!r} is not a valid identifier")
    return text


def _parse_int(col: Column, text: str) -> int:
    if not _INT.match(text):
        raise _CellError(f"{_shown(text)} is not a whole number" + _number_hint(text))
    if len(text.lstrip("+-").lstrip("0")) > 19 or abs(value := int(text)) > INT_MAX:
        raise _CellError(f"{_shown(text)} is too large (at most {INT_MAX})")
    if (col.minimum is not None and value < col.minimum) or (
        col.name == "year" and value > YEAR_MAX
    ):
        raise _CellError(f"{value} is out of range")
    return value


def _parse_float(col: Column, text: str) -> float:
    if not _FLOAT.match(text):
        if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise _CellError(f"{text!r} is not a finite number")
        raise _CellError(f"{_shown(text)} is not a number" + _number_hint(text))
    value = float(text)
    if not abs(value) <= FLOAT_MAGNITUDE_MAX:
        raise _CellError(f"{_shown(text)} is too large in magnitude to compute with")
    return value


def _shown(text: str, limit: int = 40) -> str:
    """``repr`` of a cell, shortened when long (a cell can be 100,000 characters)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"... ({len(text)} characters)"


def _number_hint(text: str) -> str:
    """A one-line hint for the usual ways a number is written that Python cannot read."""
    if _DECIMAL_COMMA.match(text):
        return f": a decimal comma; write {text.replace(',', '.')}"
    if text and text[0] in _MINUS_SIGNS:
        return f": {unicodedata.name(text[0], 'a dash')} instead of '-'; write -{text[1:]}"
    if any(c.isdigit() and not c.isascii() for c in text):
        return ": only the digits 0-9 are read"
    return ""


def _parse_bool(col: Column, text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise _CellError(f"{text!r} is not true/false")
    return text.lower() == "true"


def _parse_vocab(col: Column, text: str) -> str:
    if text not in col.vocabulary:
        raise _CellError(f"unknown {col.name} {text!r}")
    return text


def _parse_ids(col: Column, text: str) -> str:
    words = [w.strip() for w in text.split(";")]
    bad = [w for w in words if not _ID.match(w)]
    if bad:
        raise _CellError(", ".join(repr(w) for w in bad) + " is not a valid word")
    if len(set(words)) < len(words):
        raise _CellError(f"{text!r} repeats a value")
    return ";".join(words)


def _parse_multi(col: Column, text: str) -> str:
    words = [w.strip() for w in text.split(";")]
    unknown = [w for w in words if w not in col.vocabulary]
    if unknown:
        raise _CellError(f"unknown {col.name} " + ", ".join(repr(w) for w in unknown))
    if len(set(words)) < len(words):
        raise _CellError(f"{text!r} repeats a value")
    return ";".join(words)


_CELL_PARSERS: dict[str, Callable[[Column, str], Any]] = {
    "text": lambda col, text: text,
    "id": _parse_id,
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "vocab": _parse_vocab,
    "multi": _parse_multi,
    "ids": _parse_ids,
}


# --------------------------------------------------------------------------- rows


class _Bad(str):
    """A cell's parse error message (what a cache holds for a cell that does not parse)."""


_TEXT = Column("(extra)", "text", "a column beyond the schema", blank_ok=True)
_SIZE_COLUMNS = ("n", "arms", "n1", "n2")
_VALUE_COLUMNS = ("metric", "role", "design", "value", "value_low", "value_high")
_COMPARATOR_COLUMNS = ("comparator", "comparator_technique", "role")
_METRIC_READS = ("metric", "value", "value_low", "value_high", "n", "arms", "n1", "n2",
                 *METRIC_COLUMNS, *CLUSTER_COLUMNS)
_CACHE_MAX = 65536


class _Rows:
    """The data rows, checked one chunk at a time.

    Cells are parsed column by column through a cache of distinct cell texts (a
    column of a studies file repeats few values), and the rules across cells
    (``_check_sizes``, ``_check_values``) through a cache of the distinct
    combinations they read; so a chunk costs a few C-level passes per column.
    Kept between chunks: the frame's columns (when ``keep``), a 64-bit
    fingerprint and the line of every row (for duplicates) and the first
    study-level values of every study.
    """

    def __init__(self, header: list[str], columns: set[str], keep: bool,
                 schema: dict[str, Column]):
        self.header = header
        self.columns = columns
        self.keep = keep
        self.count = 0
        self.position = {name: j for j, name in enumerate(header)}
        self.schema = {name: schema[name] if name in columns else _TEXT for name in header}
        self.caches: dict[str, dict[str, Any]] = {name: {} for name in header}
        self.bad_texts: dict[str, set[str]] = {name: set() for name in header}
        self.rule_caches: dict[str, dict[tuple[Any, ...], list[tuple[str, str, str]]]] = {
            "sizes": {}, "values": {}, "comparator": {}, "metric": {}
        }
        self.parts: dict[str, list[Any]] = {name: [] for name in header}
        self.lines: list[np.ndarray] = []
        self.key_columns = sorted(columns - {"notes"})
        self.fingerprints = array("q")
        self.fingerprint_lines = array("q")
        self.study_level = [c for c in STUDY_LEVEL if c in columns] if "study_id" in columns else []
        self.studies: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self.mismatches: list[tuple[int, str, str]] = []

    # ---------------------------------------------------------------- one chunk

    def check(self, chunk: list[tuple[int, int, list[str]]], problems: _Problems) -> None:
        if not chunk:
            return
        self.count += len(chunk)
        width = len(self.header)
        rows = []
        swallowing: set[int] = set()
        for start, end, fields in chunk:
            if end > start and self._check_multiline(start, fields, problems):
                swallowing.add(len(rows))
            if len(fields) == width:
                rows.append((start, fields))
            else:
                self._ragged(start, fields, problems)
        if not rows:
            self.keep = False
            return
        before = len(problems)
        lines = [line for line, _ in rows]
        cells = dict(zip(self.header, zip(*(fields for _, fields in rows), strict=True),
                         strict=False))
        values: dict[str, list[Any]] = {}
        bad_rows: set[int] = swallowing
        failed: dict[str, set[int]] = {}
        needed = {*_SIZE_COLUMNS, *_VALUE_COLUMNS, *_COMPARATOR_COLUMNS, *_METRIC_READS,
                  *self.key_columns, *self.study_level}
        for name in self.header:
            col = self.schema[name]
            column_cells = cells[name]
            errors = self._parse_column(name, col, column_cells)
            failed[name] = set(errors)
            for i, what in errors.items():
                problems.add(lines[i], name, what, _expected(col))
            bad_rows.update(errors)
            if self.keep or name in needed:
                parsed = list(map(self.caches[name].__getitem__, column_cells))
                for i in errors:
                    parsed[i] = None
                values[name] = parsed
        for which, rule, reads in _RULES:
            self._check_rules(which, rule, reads, lines, values, failed, bad_rows, problems)
        good = [i for i in range(len(rows)) if i not in bad_rows] if bad_rows else range(len(rows))
        self._remember(lines, values, good)
        if len(problems) > before:
            self.keep = False
        if self.keep:
            for name in self.header:
                self.parts[name].append(values[name])
            self.lines.append(np.asarray(lines, dtype=np.int64))

    def _parse_column(self, name: str, col: Column, cells: tuple[str, ...]) -> dict[int, str]:
        """{row index: error} of the cells of a column that fail to parse."""
        bad = self.parse_texts(name, set(cells))
        if not bad:
            return {}
        cache = self.caches[name]
        return {i: str(cache[c]) for i, c in enumerate(cells) if c in bad}

    def parse_texts(self, name: str, distinct: set[str]) -> set[str]:
        """Parse the distinct cell texts of column ``name`` not yet cached (each text once per
        file, through ``_parse_cell``); afterwards ``caches[name]`` holds every one of them.
        Returns the texts that do not parse (cached as ``_Bad``)."""
        cache, known_bad = self.caches[name], self.bad_texts[name]
        if len(cache) > _CACHE_MAX:
            cache.clear()
            known_bad.clear()
        col = self.schema[name]
        for text in distinct.difference(cache):
            try:
                cache[text] = _parse_cell(col, text.strip())
            except _CellError as exc:
                cache[text] = _Bad(exc)
                known_bad.add(text)
        return distinct & known_bad if known_bad else set()

    def _check_rules(self, which: str, rule: Callable[..., None], reads: tuple[str, ...],
                     lines: list[int], values: dict[str, list[Any]], failed: dict[str, set[int]],
                     bad_rows: set[int], problems: _Problems) -> None:
        """Run a rule across cells on every row whose cells it reads all parsed; the rule
        runs once per distinct combination of those cells."""
        present = [c for c in reads if c in values]
        skip = set().union(*(failed[c] for c in present))
        keys = zip(*(values[c] for c in present), strict=True)
        for i, key in enumerate(keys):
            if i in skip:
                continue
            found = self.rule_found(which, rule, present, key)
            if found:
                bad_rows.add(i)
                for column, what, expected in found:
                    problems.add(lines[i], column, what, expected)

    def rule_found(self, which: str, rule: Callable[..., None], present: list[str],
                   key: tuple[Any, ...]) -> list[tuple[str, str, str]]:
        """(column, what, expected) of each problem ``rule`` finds in a row whose cells
        ``present`` hold the parsed values ``key``; each distinct key is checked once."""
        cache = self.rule_caches[which]
        found = cache.get(key)
        if found is None:
            if len(cache) > _CACHE_MAX:
                cache.clear()
            recorder = _Recorder()
            rule(0, dict(zip(present, key, strict=True)), self.columns, recorder)
            found = cache[key] = recorder.found
        return found

    def _remember(self, lines: list[int], values: dict[str, list[Any]], good: Any) -> None:
        """What the whole-file checks need of the rows without problems."""
        def kept(column: list[Any]) -> Any:
            return column if isinstance(good, range) else [column[i] for i in good]

        lines = kept(lines)
        if self.key_columns:
            self.fingerprints.extend(
                map(hash, zip(*(kept(values[c]) for c in self.key_columns), strict=True))
            )
            self.fingerprint_lines.extend(lines)
        if self.study_level:
            combos = list(zip(kept(values["study_id"]),
                              zip(*(kept(values[c]) for c in self.study_level), strict=True),
                              strict=True))
            # the first row of each distinct (study, values) in the chunk
            first_row = dict(zip(reversed(combos), range(len(combos) - 1, -1, -1), strict=True))
            for (sid, row), i in sorted(first_row.items(), key=lambda item: item[1]):
                first = self.studies.get(sid)
                if first is None:
                    self.studies[sid] = (lines[i], row)
                elif first[1] != row:
                    for j in range(i, len(combos)):
                        if combos[j] == (sid, row):
                            self._study_mismatch(lines[j], sid, first, row)

    def _study_mismatch(self, line: int, sid: str, first: tuple[int, tuple[Any, ...]],
                        row: tuple[Any, ...]) -> None:
        for name, was, now in zip(self.study_level, first[1], row, strict=True):
            if was != now:
                shown = "" if now is None else now
                if isinstance(shown, bool):
                    shown = "true" if shown else "false"
                self.mismatches.append((line, name, f"study {sid!r} has {str(shown)!r} here but "
                                        f"a different value on line {first[0]}"))

    # ---------------------------------------------------------------- whole file

    def check_whole_file(self, problems: _Problems) -> None:
        """Duplicated rows and study-level values that differ between rows of a study."""
        if self.fingerprints:
            prints = np.frombuffer(self.fingerprints, dtype=np.int64)
            order = np.argsort(prints, kind="stable")
            same = prints[order][1:] == prints[order][:-1]
            lines = np.frombuffer(self.fingerprint_lines, dtype=np.int64)
            for j in np.flatnonzero(same):
                first = j
                while first > 0 and same[first - 1]:
                    first -= 1
                problems.add(int(lines[order[j + 1]]), "(row)",
                             f"duplicate of line {int(lines[order[first]])}",
                             "each reported result once")
        for line, name, what in self.mismatches:
            problems.add(line, name, what, "one value per study")

    def frame(self) -> pd.DataFrame:
        data = {name: _column_series(self.schema[name],
                                     [c for part in self.parts[name] for c in part])
                for name in self.header}
        lines = np.concatenate(self.lines) if self.lines else np.zeros(0, dtype=np.int64)
        return _studies_frame(data, lines)

    # ---------------------------------------------------------------- whole lines

    def _ragged(self, line: int, fields: list[str], problems: _Problems) -> None:
        width = len(self.header)
        column = self.header[len(fields)] if len(fields) < width else "(row)"
        hint = ""
        if len(fields) > width and any(
            _DECIMAL_COMMA.match(f"{a.strip()},{b.strip()}")
            for a, b in itertools.pairwise(fields)
        ):
            hint = " (a decimal comma such as 0,27 splits a number in two: write 0.27)"
        problems.add(line, column, f"the line has {len(fields)} fields but the header has "
                     f"{width}{hint}", "one field per header column")

    def _check_multiline(self, start: int, fields: list[str], problems: _Problems) -> bool:
        """A cell spanning lines that look like rows: a quote opened and not closed."""
        line = start
        found = False
        least = max(2, (len(self.header) - 1) // 2)
        for position, text in enumerate(fields):
            if "\n" in text or "\r" in text:
                inner = text.splitlines()[1:]
                rowlike = sum(1 for part in inner if part.count(",") >= least)
                if rowlike:
                    name = self.header[position] if position < len(self.header) else "(row)"
                    problems.add(line, name, f"a quoted cell opens here and runs over "
                                 f"{len(inner)} more line(s), {rowlike} of them looking like "
                                 "rows (a closing quote is missing)",
                                 'a closing " for every opening "')
                    found = True
                line += text.count("\n") or text.count("\r")
        return found


def _column_series(col: Column, cells: Any) -> pd.Series:
    """The frame's column of parsed cells (None = blank): text kinds as object strings ("" when
    blank), ``int`` as int64 (Int64 when it may be blank), ``float`` (NaN when blank), ``bool``.
    Both readers build their columns here (the columnar one from a column's distinct values)."""
    if col.kind in ("text", "id", "ids", "vocab", "multi"):
        if col.blank_ok:
            cells = ["" if c is None else c for c in cells]
        return pd.Series(cells, dtype=object)
    if col.kind == "int":
        return pd.Series(cells, dtype="Int64" if col.blank_ok else "int64")
    if col.kind == "float":
        return pd.Series(np.array(cells, dtype=float), dtype=float)
    return pd.Series(cells, dtype=bool)


def _studies_frame(columns: dict[str, pd.Series], lines: np.ndarray) -> pd.DataFrame:
    """The loaded frame: the header's columns, then ``source_line``.  The columns are built
    for it, so they are not copied again into one block per dtype (``copy=False``)."""
    return pd.DataFrame({**columns, "source_line": pd.Series(lines, dtype="int64")}, copy=False)


class _Recorder:
    """Stands in for ``_Problems`` when a rule runs once for many rows."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str, str]] = []

    def add(self, line: int, column: str, what: str, expected: str) -> None:
        self.found.append((column, what, expected))

    def __len__(self) -> int:
        return len(self.found)


def _check_sizes(line: int, v: dict[str, Any], columns: set[str], problems: _Problems) -> None:
    if v.get("n") is not None and v.get("arms") is not None and v["n"] / v["arms"] < 2:
        problems.add(line, "arms", f"n/arms = {v['n']}/{v['arms']} leaves fewer than 2 "
                     "participants per arm", "at least 2 participants per arm")
    if {"n1", "n2"} <= columns:
        n1, n2 = v.get("n1"), v.get("n2")
        given = (n1 is not None, n2 is not None)
        if given == (True, False) or given == (False, True):
            present, absent = ("n1", "n2") if given[0] else ("n2", "n1")
            problems.add(line, absent, f"{present} is given but {absent} is blank",
                         "both per-arm sizes or neither")
        elif all(given) and v.get("n") is not None and n1 + n2 > v["n"]:
            problems.add(line, "n1", f"n1 + n2 = {n1 + n2} exceeds n = {v['n']}", "n1 + n2 <= n")


def _check_values(line: int, v: dict[str, Any], columns: set[str], problems: _Problems) -> None:
    if not {"value", "value_low", "value_high"} <= columns:
        return
    value, low, high = v.get("value"), v.get("value_low"), v.get("value_high")
    metric = METRICS.get(v.get("metric") or "")
    if metric is not None and not metric.uses_value:
        for name in ("value", "value_low", "value_high"):
            if v.get(name) is not None:
                problems.add(line, name, f"not used by metric '{v['metric']}'",
                             "blank: the effect is computed from the metric's columns")
        if v.get("design") is not None and v["design"] not in metric.designs:
            problems.add(line, "design", f"metric {v['metric']} cannot come from a "
                         f"{v['design']} design", "design " + " or ".join(metric.designs)
                         + " for this metric")
        return
    if value is None and low is None and high is None:
        problems.add(line, "value", "no value and no range is given",
                     "a value, or value_low and value_high")
    elif value is not None and (low is not None or high is not None):
        problems.add(line, "value", "both a value and a range are given",
                     "either value or value_low and value_high")
    elif value is None and (low is None) != (high is None):
        present, absent = ("value_low", "value_high")
        if low is None:
            present, absent = absent, present
        problems.add(line, absent, f"{present} is given but {absent} is blank",
                     "both bounds of a range")
    elif low is not None and high is not None and low > high:
        problems.add(line, "value_low", f"value_low {low:g} is greater than value_high {high:g}",
                     "value_low <= value_high")
    if metric is None:
        return
    for name in ("value", "value_low", "value_high"):
        x = v.get(name)
        if x is not None and not metric.admits(x):
            problems.add(line, name, f"{v['metric']} = {x:g} is out of range", metric.expected())
    if not metric.contrast and v.get("role") == "intervention_effect":
        problems.add(line, "role", f"{v['metric']} measures an association, not an intervention "
                     "contrast", "role association for this metric")
    if v.get("design") is not None and v["design"] not in metric.designs:
        problems.add(line, "design", f"metric {v['metric']} cannot come from a {v['design']} "
                     "design", "design " + " or ".join(metric.designs) + " for this metric")


def _check_comparator_technique(
    line: int, v: dict[str, Any], columns: set[str], problems: _Problems
) -> None:
    """``comparator_technique`` agrees with ``comparator``; blank means control, so it is
    needed only for an active comparator."""
    if "comparator_technique" not in columns:
        return
    given = v.get("comparator_technique")
    if given is None:  # blank: the comparison arm is the control when comparator says so
        if v.get("role") == "intervention_effect" and v.get("comparator") == "active":
            problems.add(line, "comparator_technique", "is blank for an active comparator",
                         "the technique the active comparison arm received, or unspecified")
        return
    words = given.split(";")
    if v.get("comparator") == "control" and words != ["control"]:
        problems.add(line, "comparator_technique", f"is {given!r} but comparator is control",
                     "control")
    elif v.get("comparator") == "active" and "control" in words:
        problems.add(line, "comparator_technique", "is control but comparator is active",
                     "the technique the active comparison arm received, or unspecified")
def _check_metric_columns(
    line: int, v: dict[str, Any], columns: set[str], problems: _Problems
) -> None:
    """The metric's own columns: filled when needed, blank when not used, its rules, clustering."""
    name = v.get("metric") or ""
    metric = METRICS.get(name)
    if metric is None:
        return
    before = len(problems)
    for column in metric.columns:
        if v.get(column) is None:
            problems.add(line, column, f"needed for metric '{name}'",
                         SCHEMA[column].description)
    used = set(metric.columns) | set(metric.optional)
    for column in METRIC_COLUMNS:
        if column not in used and v.get(column) is not None:
            users = [m for m, rule in METRICS.items() if column in (*rule.columns, *rule.optional)]
            problems.add(line, column, f"not used by metric '{name}'",
                         "blank, or a metric that uses it: " + ", ".join(users))
    if len(problems) == before:
        for rule in metric.rules:
            for column, what, expected in rule(v):
                problems.add(line, column, what, expected)
    _check_cluster(line, v, metric, problems)


def _check_cluster(line: int, v: dict[str, Any], metric: Metric, problems: _Problems) -> None:
    icc, size = v.get("icc"), v.get("cluster_size")
    if icc is None and size is None:
        return
    if (icc is None) != (size is None):
        present, absent = ("icc", "cluster_size") if size is None else ("cluster_size", "icc")
        problems.add(line, absent, f"{present} is given but {absent} is blank",
                     "both icc and cluster_size, or neither")
        return
    if not metric.contrast:
        problems.add(line, "icc", f"metric '{v['metric']}' is not a contrast",
                     "icc and cluster_size only on intervention contrasts")
        return
    if not 0 <= icc < 1:
        problems.add(line, "icc", f"icc = {icc:g} is out of range", "0 <= icc < 1")
        return
    n1, n2 = v.get("n1"), v.get("n2")
    arm = min(n1, n2) if n1 is not None and n2 is not None else v["n"] / v["arms"]
    total = n1 + n2 if n1 is not None and n2 is not None else 2 * arm
    if not 1 <= size <= arm:
        problems.add(line, "cluster_size", f"cluster_size = {size:g} is out of range",
                     f"1 <= cluster_size <= the smaller arm ({arm:g})")
    elif 2 * (size - 1) * icc >= total - 2:
        problems.add(line, "icc", f"icc = {icc:g} with clusters of {size:g} is too large "
                     f"for N = {total:g}", "2(cluster_size - 1)icc < N - 2 (Hedges 2007)")


#: The rules across cells: (its cache in ``_Rows.rule_caches``, the rule, the cells it reads).
_RULES: tuple[tuple[str, Callable[..., None], tuple[str, ...]], ...] = (
    ("sizes", _check_sizes, _SIZE_COLUMNS),
    ("values", _check_values, _VALUE_COLUMNS),
    ("comparator", _check_comparator_technique, _COMPARATOR_COLUMNS),
    ("metric", _check_metric_columns, _METRIC_READS),
)
