"""The columnar first pass (metaally.data.columnar) against the exact reader.

Differential: every CSV the tests use and hypothesis mutations give the same problems and
the same frame (dtypes included) with the columnar pass as with the exact reader alone.
The pass is taken on clean files (one that spans several groups of rows included), and
each case its docstring lists as a bail-out returns None, the public functions then giving
the exact reader's messages.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_csv import mutated

import metaally.data.reading as reading
import metaally.data.studies as studies
from metaally.data.columnar import _ByteScan, _Doubt, _tuple_hashes, read_columnar
from metaally.data.reading import load_studies, validate_file
from metaally.data.studies import StudiesValidationError

ROOT = Path(__file__).resolve().parents[1]
TABLE2 = ROOT / "data" / "table2.csv"
VOCABULARY = ROOT / "data" / "vocabulary.csv"
CSV_FILES = sorted([TABLE2, *(ROOT / "tests").rglob("*.csv")])


@contextlib.contextmanager
def exact_only() -> Iterator[None]:
    """The exact line-by-line reader alone (the columnar pass switched off)."""
    before = reading._COLUMNAR
    reading._COLUMNAR = False
    try:
        yield
    finally:
        reading._COLUMNAR = before


def public(path: Path) -> tuple[list[str], pd.DataFrame | None, list[str] | None]:
    """validate_file's problems, and load_studies' frame or the problems it raised."""
    problems = validate_file(path)
    try:
        return problems, load_studies(path), None
    except StudiesValidationError as exc:
        return problems, None, exc.problems


def assert_same_as_exact(path: Path) -> None:
    fast = public(path)
    with exact_only():
        exact = public(path)
    assert fast[0] == exact[0]
    assert fast[2] == exact[2]
    if exact[1] is None:
        assert fast[1] is None
    else:
        pd.testing.assert_frame_equal(fast[1], exact[1], check_exact=True)


def columnar(path: Path, keep: bool = True) -> pd.DataFrame | None:
    schema = studies.resolve_schema(studies.resolve_vocabulary(path))
    return read_columnar(str(path), schema, keep)


def table2_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(TABLE2.read_text(encoding="utf-8"), newline="")))


def write(tmp_path: Path, data: bytes | str, name: str = "studies.csv") -> Path:
    """A studies file beside a copy of the review's vocabulary."""
    (tmp_path / "vocabulary.csv").write_bytes(VOCABULARY.read_bytes())
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def rows_text(rows: list[list[str]], **writer: object) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=writer.pop("lineterminator", "\n"), **writer).writerows(rows)
    return out.getvalue()


# --------------------------------------------------------------------------- differential


@pytest.mark.parametrize("path", CSV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_csv_of_the_tests_reads_as_the_exact_reader_reads_it(path: Path) -> None:
    assert_same_as_exact(path)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_table2_reads_as_the_exact_reader_reads_it(tmp_path: Path, data: bytes) -> None:
    assert_same_as_exact(write(tmp_path, data))


@st.composite
def valid_variants(draw: st.DrawFn) -> bytes:
    """Table 2's rows, written in the ways a CSV writer may (quoting, line ends, a BOM,
    blanks around cells), some cells changed to texts that keep the file valid."""
    header, *body = table2_rows()
    order = draw(st.permutations(range(len(body))))
    rows = [list(body[i]) for i in order[:draw(st.integers(1, len(body)))]]
    notes = header.index("notes")
    for row in rows:
        if draw(st.booleans()):
            row[notes] = draw(st.text(max_size=20) | st.sampled_from(
                ['say "hi"', 'a, "b"', '"', '""', "x,y", " padded ", "caf\u00e9"]))
        if draw(st.integers(0, 9)) == 0:  # blanks around a cell are stripped
            j = draw(st.integers(0, len(row) - 1))
            row[j] = " " + row[j] + "\t"
    text = rows_text([header, *rows],
                     quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
                     lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = data.rstrip(b"\r\n")  # no line end after the last row
    return (codecs.BOM_UTF8 if draw(st.booleans()) else b"") + data


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=valid_variants())
def test_valid_variants_read_as_the_exact_reader_reads_them(tmp_path: Path, data: bytes) -> None:
    assert_same_as_exact(write(tmp_path, data))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.none() | st.text(max_size=5), st.integers() | st.none(),
                               st.floats(allow_nan=False), st.booleans()),
                     min_size=1, max_size=20))
def test_fingerprints_are_pythons_tuple_hash(rows: list[tuple[object, ...]]) -> None:
    lanes = [np.array([hash(v) for v in col], dtype=np.int64).view(np.uint64)
             for col in zip(*rows, strict=True)]
    got = _tuple_hashes(lanes, len(rows)).view(np.int64).tolist()
    assert got == [hash(r) for r in rows]


# --------------------------------------------------------------------------- taken


def test_the_columnar_pass_is_taken_on_a_clean_file_of_many_groups(tmp_path: Path) -> None:
    header, *body = table2_rows()
    rows = [[f"{r[0]}_{i}", *r[1:]] for i in range(2000) for r in body]  # 82,000 rows
    path = write(tmp_path, rows_text([header, *rows]))
    frame = columnar(path)
    assert frame is not None and len(frame) == len(rows)
    assert columnar(path, keep=False) is not None
    with exact_only():
        exact = load_studies(path)
    pd.testing.assert_frame_equal(frame, exact, check_exact=True)
    assert frame["source_line"].tolist() == list(range(2, len(rows) + 2))


@pytest.mark.parametrize("variant", ["bom", "crlf", "quote_all", "doubled_quotes", "padded",
                                     "no_final_newline", "extra_column"])
def test_the_columnar_pass_is_taken_on_valid_writing_variants(tmp_path: Path,
                                                              variant: str) -> None:
    header, *body = table2_rows()
    rows = [header, *body]
    notes = header.index("notes")
    if variant == "doubled_quotes":
        rows[3][notes] = 'they said "no", then ""yes"""'
    if variant == "padded":
        rows[5] = [f"  {c} " for c in rows[5]]
    if variant == "extra_column":
        rows = [[*r, "coder" if i == 0 else f"x{i % 3}"] for i, r in enumerate(rows)]
    text = rows_text(rows, lineterminator="\r\n" if variant == "crlf" else "\n",
                     quoting=csv.QUOTE_ALL if variant == "quote_all" else csv.QUOTE_MINIMAL)
    data = text.encode("utf-8")
    data = codecs.BOM_UTF8 + data if variant == "bom" else data
    data = data.rstrip(b"\n") if variant == "no_final_newline" else data
    path = write(tmp_path, data)
    assert columnar(path) is not None
    assert_same_as_exact(path)


# --------------------------------------------------------------------------- bail-outs


def table2_with(edit: str) -> bytes:
    """Table 2 (``notes`` moved to the end of each line) with one edit of its bytes."""
    header, *body = table2_rows()
    notes = header.index("notes")
    rows = [[*(c for j, c in enumerate(r) if j != notes), r[notes]] for r in [header, *body]]
    lines = rows_text(rows).encode("utf-8").split(b"\n")
    second_study = next(i for i, r in enumerate(rows) if i > 1 and r[0] != rows[1][0])
    before_note = lines[3].rsplit(b",", 1)[0] + b","
    edits = {
        "header_problem": lambda: lines[0].replace(b"study_id,", b"study,", 1),
        "utf16": lambda: None,
        "nul": lambda: (3, before_note + b"a\x00b"),
        "bare_cr": lambda: None,
        "blank_line": lambda: (3, lines[3] + b"\n"),
        "whitespace_row": lambda: (3, lines[3] + b"\n" + b" ," * (len(header) - 1) + b" "),
        "multiline_note": lambda: (3, before_note + b'"two\nlines"'),
        "long_cell": lambda: (3, before_note + b"x" * (csv.field_size_limit() + 1)),
        "text_after_closing_quote": lambda: (3, before_note + b'"quoted"then'),
        "space_after_closing_quote": lambda: (3, before_note + b'"quoted" '),
        "comma_then_closing_quote": lambda: (3, before_note + b'"a,"b'),
        "quote_inside_unquoted": lambda: (3, before_note + b'ab"c'),
        "unclosed_quote_at_end": lambda: (len(lines) - 2, lines[-2] + b',"open'),
        "ragged": lambda: (3, lines[3] + b",extra"),
        "latin1": lambda: (3, before_note + "caf\u00e9".encode("latin-1")),
        "unparsable_cell": lambda: (3, lines[3].replace(b",between,", b",betwixt,", 1)),
        "rule_finding": lambda: (3, lines[3].replace(b",control,", b",active,", 1)),
        "duplicate_row": lambda: (3, lines[3] + b"\n" + lines[3]),
        "study_mismatch": lambda: (second_study, lines[second_study].replace(
            b"(", b"(x", 1)),
        "no_rows": lambda: None,
    }
    change = edits[edit]()
    if edit == "header_problem":
        lines[0] = change
    elif change is not None:
        lines[change[0]] = change[1]
    data = b"\n".join(lines)
    if edit == "utf16":
        return data.decode("utf-8").encode("utf-16")
    if edit == "bare_cr":
        return data.replace(b"\n", b"\r")
    if edit == "no_rows":
        return lines[0] + b"\n"
    return data


def test_a_pipe_is_left_to_the_exact_reader(tmp_path: Path) -> None:
    """Not a regular file: read once, by the exact reader."""
    fifo = tmp_path / "studies.csv"
    os.mkfifo(fifo)
    result: list[object] = []
    reading = threading.Thread(target=lambda: result.append(columnar(fifo)), daemon=True)
    reading.start()
    reading.join(timeout=10)  # opening the pipe would wait for a writer
    assert result == [None]


BAIL_OUTS = ["header_problem", "utf16", "nul", "bare_cr", "blank_line", "whitespace_row",
             "multiline_note", "long_cell", "text_after_closing_quote",
             "space_after_closing_quote", "comma_then_closing_quote", "quote_inside_unquoted",
             "unclosed_quote_at_end", "ragged", "latin1", "unparsable_cell", "rule_finding",
             "duplicate_row", "study_mismatch", "no_rows"]


@pytest.mark.parametrize("edit", BAIL_OUTS)
def test_each_bail_out_returns_none_and_the_exact_readers_result_stands(
    tmp_path: Path, edit: str
) -> None:
    path = write(tmp_path, table2_with(edit))
    assert columnar(path) is None
    assert columnar(path, keep=False) is None
    assert_same_as_exact(path)


def test_the_unedited_table_of_the_bail_out_cases_is_taken(tmp_path: Path) -> None:
    """The bail-out files differ from a file the columnar pass takes by their one edit."""
    path = write(tmp_path, _unedited())
    assert columnar(path) is not None


def _unedited() -> bytes:
    header, *body = table2_rows()
    notes = header.index("notes")
    rows = [[*(c for j, c in enumerate(r) if j != notes), r[notes]] for r in [header, *body]]
    return rows_text(rows).encode("utf-8")


@pytest.mark.parametrize("edit", ["duplicate_row", "study_mismatch"])
def test_whole_file_problems_across_groups_bail_out(tmp_path: Path, edit: str) -> None:
    """A duplicate or a study's differing value 60,000 rows apart (other groups of rows)."""
    header, *body = table2_rows()
    rows = [[f"{r[0]}_{i}", *r[1:]] for i in range(1500) for r in body]
    late = list(rows[0])
    if edit == "study_mismatch":
        late[header.index("citation")] += " (corrected)"
        late[header.index("outcome")] += " again"
    rows.append(late)
    path = write(tmp_path, rows_text([header, *rows]))
    assert columnar(path, keep=False) is None
    problems = validate_file(path)
    assert len(problems) == 1 and f":{len(rows) + 1}:" in problems[0]
    with exact_only():
        assert validate_file(path) == problems


def scan_verdict(blocks: list[bytes]) -> bool:
    scan = _ByteScan()
    try:
        for block in blocks:
            scan.feed(block)
        scan.finish()
    except _Doubt:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(mutated(), valid_variants(), st.binary(max_size=40),
                      st.text(alphabet='ab,"\r\n', max_size=40).map(str.encode)),
       cuts=st.lists(st.integers(0, 2**31), max_size=6))
def test_the_byte_scan_gives_one_verdict_however_the_file_is_cut_into_blocks(
    data: bytes, cuts: list[int]
) -> None:
    """A CR, a quote or a doubled quote across a block boundary is judged as within a block."""
    at = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    blocks = [data[a:b] for a, b in itertools.pairwise(at)]
    assert scan_verdict(blocks) == scan_verdict([data])


@pytest.mark.parametrize(("text", "ok"), [
    (b'a,"b"\n', True), (b'a,"b""c"\r\n', True), (b'"a",""\n', True), (b'a,b"c\n', False),
    (b'a,"b"c\n', False), (b'a,"b,"c\n', False), (b'a,"b\n', False), (b'a,b\rc\n', False),
    (b'a,b\x00\n', False), (b'a,"b\nc"\n', True),  # a line feed in a cell: left to pyarrow's cells
])
def test_the_byte_scan_on_small_cases(text: bytes, ok: bool) -> None:
    assert scan_verdict([text]) is ok
    assert scan_verdict([text[i:i + 1] for i in range(len(text))]) is ok  # byte by byte
