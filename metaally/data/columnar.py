"""A columnar first pass over a studies CSV: the exact reader's result, or nothing.

``metaally.data.reading`` reads a file through the exact, line-by-line reader
(``studies.read_exact``: Python's ``csv.reader(strict=True)``), which is the single source
of every message. Before that, ``read_columnar`` tries a columnar pass (pyarrow's
streaming CSV parser, every column read as dictionary-encoded strings) and returns the
frame the exact reader would return for a file without problems; on any problem, and on
any doubt that pyarrow read the bytes as Python's csv module would, it returns ``None``
and the exact reader reads the file (a file with problems is read twice). The columnar
pass checks nothing of its own: it runs the exact reader's pieces (``_Rows.parse_texts``
for cells, ``_Rows.rule_found`` with the rules of ``studies._RULES``, ``_check_header``,
``_column_series``) once per distinct cell text of a block of rows and once per distinct
combination of the cells a rule reads (combined dictionary codes, ``numpy.unique``), so a
problem found here is one the exact reader reports. The bytes are checked in one thread
and pyarrow parses in another while this one checks the rows; memory holds a few groups of
rows, the whole-file checks' 64-bit hashes and, for a frame, its columns (as small codes
until the end).

When it returns ``None`` (bails out), and why what it accepts is then read exactly:

* ``path`` is not a regular file (a pipe is read once, by the exact reader);
* the header line (line 1) is not one CSV record of Python's reader, is blank, has a
  delimiter or header problem, is not UTF-8 or is longer than a block (1 MB): the exact
  reader reports the header;
* pyarrow raises (a line with another number of fields than the header, invalid UTF-8) or
  a distinct cell text is not strict UTF-8 for Python: Python reports the line;
* a NUL byte (the exact reader stops at binary content), or a carriage return not
  followed by a line feed (old Mac line ends: the exact reader splits lines differently);
* a cell holds a line feed (a quoted cell over several lines, or a quote never closed):
  otherwise every record is one physical line, and pyarrow's empty-line rows (blank lines
  are kept, ``ignore_empty_lines=False``) have a blank ``study_id``; so data row ``i``
  (from 0) is on line ``i + 2``, as the exact reader counts;
* a row whose cells are all blank or whitespace (the exact reader skips it): implied,
  ``study_id`` is a required column and blank there is a problem;
* a cell longer than ``csv.field_size_limit()`` (UTF-8 bytes, at least its characters):
  Python's reader stops there;
* quotes that Python's strict reader could read otherwise than pyarrow.  Counting the
  quotes of the file in order, quote ``k`` must be, for even ``k``, at the start of a field
  (after a comma, a line end or the file start) or the second of a doubled ``""``, and for
  odd ``k``, followed by a comma, a line end, the end of the file or the quote ``k + 1``;
  and the count must be even.  Then each quoted field opens at a field start and closes
  before a delimiter, with ``""`` for a quote inside, which both parsers read alike (a
  quote inside an unquoted field, ``"a"b``, ``"a" ``, ``"a,"b`` all bail: pyarrow would
  join what Python's strict reader rejects).  False alarms only cost the second read;
* any cell that does not parse, any rule finding, a duplicated row (the exact reader's
  fingerprint, Python's tuple hash of the parsed key cells, computed here in numpy; a
  collision counts as a duplicate there too), or a study whose rows differ in a
  study-level value (rows grouped by Python's hash of ``study_id``, their study-level
  values compared exactly; a collision of two studies' hashes can only cause a bail-out):
  the exact reader reports them;
* the file has no data rows, or Python's tuple hash is not the one computed here.
"""

from __future__ import annotations

import csv
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from metaally.data.studies import (
    _RULES,
    Column,
    _check_header,
    _column_series,
    _Problems,
    _Rows,
    _studies_frame,
    _wrong_delimiter,
)

__all__ = ["read_columnar"]

#: Bytes pyarrow parses per block (a batch of about 1,800 table-2 rows; larger blocks made its
#: dictionary encoding slower).
_BLOCK_BYTES = 1 << 20
#: Rows checked together (blocks are joined, their dictionaries unified).
_GROUP_ROWS = 1 << 15

# Python's tuple hash (CPython >= 3.8, 64-bit: xxHash's primes, Objects/tupleobject.c).
_XXPRIME_1 = np.uint64(11400714785074694791)
_XXPRIME_2 = np.uint64(14029467366897019727)
_XXPRIME_5 = 2870177450012600261
_U64_MAX = np.uint64(2**64 - 1)


class _Doubt(Exception):
    """The columnar pass cannot vouch for its result: the exact reader reads the file."""


def read_columnar(path: str, schema: dict[str, Column], keep: bool) -> pd.DataFrame | None:
    """The frame the exact reader returns for the studies CSV at ``path``, when that file has
    no problem and pyarrow reads it as Python's csv module does; else None (see the module).

    ``schema`` is the one the exact reader uses (declared words resolved); ``keep=False``
    (validation) builds no frame and returns an empty one.
    """
    if not _TUPLE_HASH_OK or not os.path.isfile(path):
        return None
    with open(path, "rb") as fh:
        line = fh.readline(_BLOCK_BYTES)
        header = None if len(line) == _BLOCK_BYTES else _header(line)
    if header is None:
        return None
    problems = _Problems(path)
    if _wrong_delimiter(1, header, problems):
        return None
    columns = _check_header(1, header, problems)
    if problems:
        return None
    import pyarrow as pa  # pandas imports it already; the CSV parser module only here

    try:
        return _Columnar(_Rows(header, columns, keep, schema)).read(path)
    except (_Doubt, pa.ArrowException, UnicodeDecodeError):
        return None


def _header(line: bytes) -> list[str] | None:
    """The header fields as the exact reader reads line 1, or None if it might not."""
    try:
        text = line.decode("utf-8").removeprefix("\ufeff")
        records = list(csv.reader([text], strict=True))
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(records) != 1 or not "".join(records[0]).strip():
        return None
    return [f.strip() for f in records[0]]


class _Columnar:
    """The rows of a file, read by pyarrow and checked a group of blocks at a time."""

    def __init__(self, rows: _Rows):
        self.rows = rows
        self.header = rows.header
        present = set(rows.header)
        self.rules = [(which, rule, [c for c in reads if c in present])
                      for which, rule, reads in _RULES]
        self.rule_columns = list(dict.fromkeys(c for _, _, reads in self.rules for c in reads))
        self.fingerprints: list[np.ndarray] = []
        self.study_rows: dict[tuple[Any, ...], int] = {}
        self.studies: list[np.ndarray] = []  # per distinct row: a hash of its study_id
        self.study_values: list[np.ndarray] = []  # per distinct row: its study_rows number
        # per column and group: its distinct parsed values, each row's index into them
        self.parts: dict[str, list[tuple[pd.Series, np.ndarray]]] = {
            name: [] for name in rows.header}

    def read(self, path: str) -> pd.DataFrame:
        """Check the file's bytes (one thread), parse it with pyarrow (another) and check
        its rows here, a group at a time; then the whole-file checks and the frame."""
        scan = _Background(lambda stop: _scan_bytes(path, stop))
        groups = _Background(lambda stop: _parsed_groups(path, len(self.header), stop))
        with scan, groups:
            for n, columns in groups:
                self._check(n, columns)
            scan.result()
        return self._result()

    # ---------------------------------------------------------------- a group of rows

    def _check(self, n: int, columns: list[tuple[Any, np.ndarray]]) -> None:
        """Parse each distinct text of each column, run the rules, remember what the
        whole-file checks need and (``keep``) the frame's part."""
        rows = self.rows
        rows.count += n
        codes: dict[str, np.ndarray] = {}
        parsed: dict[str, list[Any]] = {}
        for name, (dictionary, indices) in zip(self.header, columns, strict=True):
            texts = dictionary.to_pylist()
            if rows.parse_texts(name, set(texts)):
                raise _Doubt
            parsed[name] = list(map(rows.caches[name].__getitem__, texts))
            codes[name] = indices
        self._check_rules(codes, parsed)
        if rows.key_columns:
            lane = np.empty(n, dtype=np.uint64)  # refilled for each column
            self.fingerprints.append(_tuple_hashes(
                (_lanes(parsed[c], codes[c], lane) for c in rows.key_columns), n))
        if rows.study_level:
            self._check_studies(codes, parsed)
        if rows.keep:
            for name in self.header:
                distinct = _column_series(rows.schema[name], parsed[name])
                width = len(distinct)
                small = np.uint8 if width <= 1 << 8 else np.uint16 if width <= 1 << 16 else None
                self.parts[name].append(
                    (distinct, codes[name] if small is None else codes[name].astype(small)))

    def _check_rules(self, codes: dict[str, np.ndarray], parsed: dict[str, list[Any]]) -> None:
        """Every rule once per distinct combination of the cells the rules read."""
        if not self.rule_columns:
            return
        firsts, _ = _distinct_rows(codes, parsed, self.rule_columns)
        for i in firsts.tolist():
            for which, rule, present in self.rules:
                values = tuple(parsed[c][codes[c][i]] for c in present)
                if self.rows.rule_found(which, rule, present, values):
                    raise _Doubt

    def _check_studies(self, codes: dict[str, np.ndarray], parsed: dict[str, list[Any]]) -> None:
        """Per row, Python's hash of its study_id and a number for its study-level values
        (equal numbers: equal values); ``_result`` compares them across the file."""
        level = self.rows.study_level
        firsts, inverse = _distinct_rows(codes, parsed, level)
        numbers = self.study_rows
        found = np.array([numbers.setdefault(tuple(parsed[c][codes[c][i]] for c in level),
                                             len(numbers)) for i in firsts.tolist()],
                         dtype=np.int64)
        # one row of each distinct (study, study-level values) is enough to compare
        pairs = codes["study_id"].astype(np.int64) * len(found) + found[inverse]
        _, firsts = np.unique(pairs, return_index=True)
        self.study_values.append(found[inverse[firsts]])
        self.studies.append(_lanes(parsed["study_id"], codes["study_id"][firsts]))

    def _result(self) -> pd.DataFrame:
        if self.rows.count == 0:
            raise _Doubt  # the exact reader says there are no data rows
        if self.fingerprints:
            prints = np.concatenate(self.fingerprints)
            self.fingerprints.clear()
            prints.sort()
            if (prints[1:] == prints[:-1]).any():
                raise _Doubt
        if self.studies:  # a study_id hash with two study-level numbers: a mismatch (or a
            # collision of two studies' hashes: the exact reader then finds no problem)
            studies = np.concatenate(self.studies)
            values = np.concatenate(self.study_values)
            order = np.argsort(studies, kind="stable")
            studies, values = studies[order], values[order]
            if ((studies[1:] == studies[:-1]) & (values[1:] != values[:-1])).any():
                raise _Doubt
        if not self.rows.keep:
            return pd.DataFrame()
        data = {}
        # one buffer for every column: a fresh array per step cost more than the steps
        # (page faults of new memory)
        codes = np.empty(self.rows.count, dtype=np.intp)
        for name in self.header:
            parts = self.parts.pop(name)
            distinct = pd.concat([values for values, _ in parts], ignore_index=True)
            end = offset = 0
            for values, part in parts:  # each group's codes, into the concatenated values
                start, end = end, end + len(part)
                codes[start:end] = part
                codes[start:end] += offset
                offset += len(values)
            data[name] = pd.Series(distinct.array.take(codes), dtype=distinct.dtype, copy=False)
        return _studies_frame(data, np.arange(2, self.rows.count + 2, dtype=np.int64))


def _parsed_groups(path: str, width: int, stop: threading.Event) -> Iterator[Any]:
    """The data rows as pyarrow parses them, about ``_GROUP_ROWS`` at a time: (rows, per
    column (its distinct texts, each row's index into them)).  Raises ``_Doubt`` at a cell
    holding a line feed or longer than the csv module's field limit."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    names = [str(j) for j in range(width)]
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=True, block_size=_BLOCK_BYTES,
                                       skip_rows=1, column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.dictionary(pa.int32(), pa.string())),
            strings_can_be_null=False, check_utf8=True),
    )
    limit = csv.field_size_limit()

    def group(batches: list[Any]) -> tuple[int, list[tuple[Any, np.ndarray]]]:
        table = pa.Table.from_batches(batches).unify_dictionaries()
        columns = []
        for column in table.columns:
            column = column.combine_chunks()
            dictionary = column.dictionary
            if len(dictionary) and (
                pc.max(pc.binary_length(dictionary)).as_py() > limit
                or pc.any(pc.match_substring(dictionary, "\n")).as_py()
            ):
                raise _Doubt
            columns.append((dictionary, column.indices.to_numpy()))
        return table.num_rows, columns

    with reader:
        batches: list[Any] = []
        size = 0
        for batch in reader:
            if stop.is_set():
                return
            batches.append(batch)
            size += batch.num_rows
            if size >= _GROUP_ROWS:
                yield group(batches)
                batches, size = [], 0
        if batches:
            yield group(batches)


def _scan_bytes(path: str, stop: threading.Event) -> Iterator[None]:
    """``_ByteScan`` over the whole file (yields nothing: its result is not raising)."""
    scan = _ByteScan()
    buffer = bytearray(_BLOCK_BYTES)
    with open(path, "rb", buffering=0) as fh:
        while (n := fh.readinto(buffer)) and not stop.is_set():
            scan.feed(buffer if n == len(buffer) else buffer[:n])
    scan.finish()
    return
    yield


class _Background:
    """A generator run in a thread (pyarrow and numpy release the GIL), its items taken in
    order by iterating; its exception is raised here.  Leaving the ``with`` block stops it."""

    _END = object()

    def __init__(self, generator: Callable[[threading.Event], Iterator[Any]]):
        self.stop = threading.Event()
        self.items: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(generator,), daemon=True)
        self.thread.start()

    def _run(self, generator: Callable[[threading.Event], Iterator[Any]]) -> None:
        try:
            for item in generator(self.stop):
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the reading thread
            self.error = exc
        self._put(self._END)

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        while (item := self.items.get()) is not self._END:
            yield item
        if self.error is not None:
            raise self.error

    def result(self) -> None:
        """Wait for the generator to end; raise its exception."""
        for _ in self:
            pass

    def __enter__(self) -> _Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _distinct_rows(codes: dict[str, np.ndarray], parsed: dict[str, list[Any]],
                   columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the first row of each distinct combination of the cells of ``columns``, each row's
    combination): the dictionary codes combined as digits of one integer."""
    key = np.zeros(len(codes[columns[0]]), dtype=np.int64)
    radix = 1
    for c in columns:
        width = max(len(parsed[c]), 1)
        if radix * width >= 2**62:  # renumber the combinations so far densely
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64).ravel()
            radix = int(key.max()) + 1
        key = key * width + codes[c]
        radix *= width
    _, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    return firsts, inverse.ravel()


def _lanes(values: list[Any], codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Python's hash of each row's parsed cell, as unsigned 64-bit integers (into ``out``)."""
    hashes = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
    return np.take(hashes.view(np.uint64), codes, out=out, mode="clip")  # unbuffered


def _tuple_hashes(lanes: Iterable[np.ndarray], n: int) -> np.ndarray:
    """``hash(tuple(row))`` for every row, from the hashes of its items (CPython's
    ``tuplehash``: xxHash-style accumulation, Objects/tupleobject.c)."""
    acc = np.full(n, _XXPRIME_5, dtype=np.uint64)
    scratch = np.empty(n, dtype=np.uint64)
    width = 0
    for lane in lanes:
        width += 1
        np.multiply(lane, _XXPRIME_2, out=scratch)
        acc += scratch
        np.left_shift(acc, np.uint64(31), out=scratch)
        acc >>= np.uint64(33)
        acc |= scratch
        acc *= _XXPRIME_1
    acc += np.uint64(width ^ (_XXPRIME_5 ^ 3527539))
    acc[acc == _U64_MAX] = 1546275796  # -1 is an error code in C; CPython maps it
    return acc


def _tuple_hash_matches() -> bool:
    """Does ``_tuple_hashes`` give Python's own ``hash(tuple)`` on this interpreter?"""
    rows = [("a", 1, None, 2.5, True), ("", -1, "x" * 40, -0.0, False), ((), 2**62, "b", 1e100, 0)]
    lanes = [np.array([hash(v) for v in col], dtype=np.int64).view(np.uint64)
             for col in zip(*rows, strict=True)]
    got = _tuple_hashes(lanes, len(rows)).view(np.int64).tolist()
    return got == [hash(r) for r in rows]


_TUPLE_HASH_OK = _tuple_hash_matches()


class _ByteScan:
    """The raw bytes, block by block: no NUL, every CR followed by LF, quotes in the order
    the module docstring states (the count of quotes so far, the byte before a block, and a
    quote or CR that ends a block are carried to the next)."""

    def __init__(self) -> None:
        self.odd = 0  # quotes so far, modulo 2
        self.last = 10  # the byte before the file: a line start
        self.quote_at_end = False  # an odd quote ended the previous block
        self.cr_at_end = False

    def feed(self, block: bytes) -> None:
        if not block:
            return
        if block.find(b"\x00") >= 0:
            raise _Doubt
        first = block[0]
        if self.cr_at_end and first != 10:
            raise _Doubt
        if self.quote_at_end and first not in (44, 10, 13, 34):
            raise _Doubt
        self.cr_at_end = self.quote_at_end = False
        a = None
        if b"\r" in block:
            a = np.frombuffer(block, dtype=np.uint8)
            cr = np.flatnonzero(a == 13)
            if cr[-1] == len(a) - 1:
                self.cr_at_end = True
                cr = cr[:-1]
            if (a[cr + 1] != 10).any():
                raise _Doubt
        if b'"' in block:
            a = np.frombuffer(block, dtype=np.uint8) if a is None else a
            self._quotes(a, np.flatnonzero(a == 34))
        self.last = block[-1]

    def _quotes(self, a: np.ndarray, q: np.ndarray) -> None:
        n, end = len(q), len(a) - 1
        before = a[np.maximum(q - 1, 0)]
        after = a[np.minimum(q + 1, end)]
        doubled_before = np.zeros(n, dtype=bool)
        doubled_before[1:] = q[1:] == q[:-1] + 1
        doubled_after = np.zeros(n, dtype=bool)
        doubled_after[:-1] = doubled_before[1:]
        if q[0] == 0:
            before[0] = self.last
            doubled_before[0] = self.last == 34
        even = (np.arange(self.odd, self.odd + n) & 1) == 0
        opens = (before == 44) | (before == 10) | doubled_before
        closes = (after == 44) | (after == 10) | (after == 13) | doubled_after
        if q[-1] == end and not even[-1]:
            closes[-1] = True  # decided by the next block's first byte (or the file's end)
            self.quote_at_end = True
        if not np.where(even, opens, closes).all():
            raise _Doubt
        self.odd ^= n & 1

    def finish(self) -> None:
        """The end of the file: no quote left open, no CR as the last byte."""
        if self.odd or self.cr_at_end:
            raise _Doubt

