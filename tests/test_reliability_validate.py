"""The validator on hostile files: every reproducer is a fixed regression case.

Each broken file gives exit 2 with ``PATH:LINE: column 'X': ...`` at the line and column of
the problem, every other problem in the file is still reported, and nothing ever raises.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import metaally as ma
import metaally.data.studies
from metaally.cli import main
from metaally.data.reading import validate_file
from metaally.data.studies import PROBLEMS_SHOWN

ROOT = Path(__file__).resolve().parents[1]
TABLE2 = ROOT / "data" / "table2.csv"
MESSAGE = re.compile(
    r"^(?P<path>.+):(?P<line>\d+): column '(?P<col>[^']+)': (?P<what>.+) \((?P<exp>.+)\)$"
)


def table2_rows() -> list[list[str]]:
    text = TABLE2.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == len(text.splitlines()), "table2.csv has one physical line per row"
    return rows


def column_index(name: str) -> int:
    return table2_rows()[0].index(name)


def notes_last_text() -> str:
    """table2.csv without the optional columns after ``notes``, so that ``notes`` ends
    every line (the quoting tests edit the end of a line)."""
    rows = table2_rows()
    keep = column_index("notes") + 1
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(row[:keep] for row in rows)
    return out.getvalue()


def with_last_note(tmp_path: Path, index: int, text: str) -> tuple[Path, list[str]]:
    """``notes_last_text()`` with the notes cell of line ``index + 1`` replaced by the raw
    text ``text`` (quotes as written); the file and its lines."""
    lines = notes_last_text().splitlines()
    lines[index] = lines[index].rsplit(",", 1)[0] + "," + text
    path = tmp_path / "notes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path


def with_cells(tmp_path: Path, *edits: tuple[int, str, str]) -> Path:
    """table2.csv with cell (physical line, column) set to text, for each edit."""
    rows = table2_rows()
    for line, name, text in edits:
        rows[line - 1][column_index(name)] = text
    return write_rows(tmp_path / "edited.csv", rows)


def located(problems: list[str]) -> list[tuple[int, str, str]]:
    out = []
    for p in problems:
        m = MESSAGE.match(p)
        assert m, p
        out.append((int(m["line"]), m["col"], m["what"]))
    return out


def assert_one(path: Path, line: int, column: str, words: str) -> None:
    """Exactly one problem at (line, column) containing words; exit 2 from the CLI too."""
    problems = validate_file(path)
    assert [(ln, col) for ln, col, _ in located(problems)] == [(line, column)], problems
    assert words in located(problems)[0][2], problems
    with pytest.raises(ma.StudiesValidationError):
        ma.load_studies(path)
    assert main(["validate", str(path)]) == 2


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("edits", "line", "column", "words"),
    [
        # f2 = 1e308 gave vi = inf downstream; t = 1e200 gave vi = inf
        (((5, "metric", "f2"), (5, "value", "1e308")), 5, "value", "too large in magnitude"),
        (((4, "metric", "t"), (4, "value", "1e200")), 4, "value", "too large in magnitude"),
        (((4, "value", "-1e101"),), 4, "value", "too large in magnitude"),
        # n beyond int64 gave OverflowError text
        (((3, "n", "99999999999999999999"),), 3, "n", "too large"),
        (((3, "n", "9223372036854775808"),), 3, "n", "too large"),
        # non-ASCII digits were read as numbers
        (((2, "value", "\uff10.\uff12\uff17"),), 2, "value", "only the digits 0-9"),
        (((2, "n", "\u0663"),), 2, "n", "only the digits 0-9"),
        (((2, "value", "0.2\u0667"),), 2, "value", "is not a number"),
        # hints: decimal comma (quoted, so one cell), Unicode minus, nan
        (((6, "value", "0,27"),), 6, "value", "decimal comma; write 0.27"),
        (((7, "value", "\u22120.2"),), 7, "value", "MINUS SIGN instead of '-'; write -0.2"),
        (((7, "value", "\u20130.2"),), 7, "value", "EN DASH instead of '-'"),
        (((7, "value", "inf"),), 7, "value", "not a finite number"),
    ],
)
def test_values_that_would_not_convert_are_rejected_at_their_cell(
    tmp_path: Path, edits: tuple, line: int, column: str, words: str
) -> None:
    assert_one(with_cells(tmp_path, *edits), line, column, words)


def test_largest_accepted_values_give_finite_effects(tmp_path: Path) -> None:
    """At the magnitude limit the effect sizes and variances are still finite numbers."""
    path = with_cells(tmp_path, (5, "metric", "f2"), (5, "value", "1e100"),
                      (4, "metric", "t"), (4, "value", "-1e100"),
                      (3, "n", str(2**63 - 1)))
    assert validate_file(path) == []
    effects = ma.compute_effects(ma.load_studies(path))
    included = effects[effects["included"]]
    assert included["yi"].map(abs).lt(float("inf")).all()
    assert included["vi"].lt(float("inf")).all()


# --------------------------------------------------------------------------- never raises


def test_oversized_integer_keeps_every_other_problem(tmp_path: Path) -> None:
    path = with_cells(tmp_path, (3, "n", "9" * 5000), (9, "arms", "x"))
    got = [(ln, col) for ln, col, _ in located(validate_file(path))]
    assert got == [(3, "n"), (9, "arms")]
    assert "5000 characters" in validate_file(path)[0]  # the value is shortened, not printed


def test_field_beyond_the_csv_limit_keeps_every_other_problem(tmp_path: Path) -> None:
    path = with_cells(tmp_path, (4, "notes", "x" * (csv.field_size_limit() + 10)),
                      (9, "arms", "x"))
    got = located(validate_file(path))
    assert [(ln, col) for ln, col, _ in got] == [(4, "(file)"), (9, "arms")]
    assert "longer than" in got[0][2]


def test_newline_in_a_repeated_header_name_stays_on_one_line(tmp_path: Path) -> None:
    rows = table2_rows()
    rows[0] = [*rows[0], "x\ny", "x\ny"]
    rows[1:] = [[*r, "", ""] for r in rows[1:]]
    problems = validate_file(write_rows(tmp_path / "h.csv", rows))
    assert len(problems) == 1 and "\n" not in problems[0]
    assert located(problems) == [(1, "x\\ny", "the column name is repeated")]


def test_quote_in_a_column_name_is_escaped_in_the_message(tmp_path: Path) -> None:
    rows = table2_rows()
    notes = column_index("notes")
    rows[0][notes] = "it's notes"
    rows[29] = rows[29][:notes]
    problems = validate_file(write_rows(tmp_path / "q.csv", rows))
    assert [p.split(": ", 2)[1] for p in problems] == ["column 'notes'",
                                                        "column 'it\\'s notes'"]


# --------------------------------------------------------------------------- quoting


def test_unclosed_quote_swallowing_rows_is_an_error_where_it_opens(tmp_path: Path) -> None:
    """An unclosed quote in a notes cell, closed by a quote two lines later, used to turn
    three rows into one: validate said OK and load_studies returned 39 of 41 rows."""
    lines = notes_last_text().splitlines()
    lines[4] += '"opened here'           # line 5 ends with an empty notes cell
    lines[6] += 'and closed here"'       # line 7
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_one(path, 5, "notes", "a closing quote is missing")


def test_quote_never_closed_is_an_error_where_it_opens(tmp_path: Path) -> None:
    path, lines = with_last_note(tmp_path, -2, '"unfinished note')
    assert_one(path, len(lines) - 1, "(file)", "never closed")


def test_quote_closed_too_late_is_an_error_where_it_opens(tmp_path: Path) -> None:
    path, lines = with_last_note(tmp_path, 34, '"unfinished note')
    assert "\"" in lines[35] and "\"" not in notes_last_text().splitlines()[34]
    problems = located(validate_file(path))
    assert problems[0][:2] == (35, "(file)") and "closing quote is missing" in problems[0][2]


def test_text_after_a_closing_quote_gets_a_quoting_hint(tmp_path: Path) -> None:
    path, _ = with_last_note(tmp_path, 2, '"say "hi" please"')
    problems = located(validate_file(path))
    assert problems[0][:2] == (3, "(file)") and 'written ""' in problems[0][2]


def test_a_multiline_note_is_still_accepted(tmp_path: Path) -> None:
    path = with_cells(tmp_path, (4, "notes", "first line\nsecond, line\nthird"))
    studies = ma.load_studies(path)
    assert len(studies) == 41 and studies["source_line"].tolist()[2:4] == [4, 7]


# --------------------------------------------------------------------------- whole-file hints


@pytest.mark.parametrize(("delimiter", "label"), [(";", "';'"), ("\t", "tab")])
def test_other_delimiters_give_one_line(tmp_path: Path, delimiter: str, label: str) -> None:
    path = tmp_path / "semi.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerows(table2_rows())
    assert_one(path, 1, "(file)", f"separated by {label}, not by commas")


def test_unquoted_decimal_comma_hints_at_the_split_number(tmp_path: Path) -> None:
    lines = notes_last_text().splitlines()
    lines[1] = lines[1].replace(",d,0.27,", ",d,0,27,")
    path = tmp_path / "comma.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_one(path, 2, "(row)", "decimal comma such as 0,27")


def test_latin1_bytes_are_reported_once_at_their_line(tmp_path: Path) -> None:
    data = TABLE2.read_bytes().split(b"\n")
    data[9] = data[9].replace(b"Awareness", b"Awaren\xe9ss")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\n".join(data))
    problems = located(validate_file(path))
    assert problems[0][:2] == (10, "(file)") and "Windows-1252" in problems[0][2]


@pytest.mark.parametrize("block", [97, 1 << 20])
@pytest.mark.parametrize("ending", ["\n", "\r", "\r\n"])
def test_mac_and_windows_line_endings_load_every_row(
    tmp_path: Path, ending: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the file is read in blocks of 97 bytes (every line crosses a block end)."""
    monkeypatch.setattr(metaally.data.studies, "_BLOCK_BYTES", block)
    path = tmp_path / "endings.csv"
    path.write_bytes(TABLE2.read_text(encoding="utf-8").replace("\n", ending).encode())
    studies = ma.load_studies(path)
    assert studies["source_line"].tolist() == list(range(2, 43))
    pd.testing.assert_frame_equal(studies, ma.load_studies(TABLE2))


def test_utf16_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_text(TABLE2.read_text(encoding="utf-8"), encoding="utf-16")
    assert_one(path, 1, "(file)", "UTF-16")


def test_a_badly_broken_file_prints_at_most_50_problems_and_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "README.csv"
    path.write_text("# Title\n\n" + "".join(f"Some, prose, line {i}.\n" for i in range(300)),
                    encoding="utf-8")
    problems = validate_file(path)
    assert len(problems) > PROBLEMS_SHOWN
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == PROBLEMS_SHOWN + 1
    assert err[-1] == f"... and {len(problems) - PROBLEMS_SHOWN} more problem(s)"
    with pytest.raises(ma.StudiesValidationError) as info:
        ma.load_studies(path)
    assert len(info.value.problems) == len(problems)
    assert len(str(info.value).splitlines()) == PROBLEMS_SHOWN + 2


# --------------------------------------------------------------------------- stdin, terminals


def _run(args: list[str], stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metaally", *args], input=stdin,
                          capture_output=True, env={**os.environ, **env}, timeout=120)


def test_dash_reads_standard_input(tmp_path: Path) -> None:
    ok = _run(["validate", "-"], TABLE2.read_bytes())
    assert ok.returncode == 0 and ok.stdout.decode().strip() == "<stdin>: OK"
    bad = with_cells(tmp_path, (3, "n", "many"))
    out = _run(["validate", "-"], bad.read_bytes())
    assert out.returncode == 2
    assert out.stderr.decode().splitlines()[0].startswith("<stdin>:3: column 'n': ")


def test_ascii_only_terminal_never_fails(tmp_path: Path) -> None:
    path = with_cells(tmp_path, (7, "value", "\u22120.2"), (8, "citation", "\u2264 caf\u00e9"))
    out = _run(["validate", str(path)], PYTHONIOENCODING="ascii")
    assert out.returncode == 2
    err = out.stderr.decode("ascii")
    assert "Traceback" not in err and "\\u2212" in err
    assert MESSAGE.match(err.splitlines()[0])
