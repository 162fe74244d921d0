"""Fuzzing the studies CSV reader with mutations of data/table2.csv.

Whatever the bytes, ``validate_file`` returns ``PATH:LINE: column 'X': what (expected)``
lines (one line each, LINE inside the file) and never raises; the CLI exits 0 or 2; and a
file that validates loads every row that looks like one and gives finite effect sizes.

CI runs a fixed, derandomised budget (conftest's "ci" profile: 400 + 50 files, ~5 s).
``make fuzz`` sets ``METAALLY_FUZZ_SECONDS`` and keeps drawing fresh mutations for that long.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metaally as ma
from metaally.cli import main
from metaally.data.reading import validate_file
from metaally.data.studies import PROBLEMS_SHOWN

ROOT = Path(__file__).resolve().parents[1]
TABLE2 = (ROOT / "data" / "table2.csv").read_bytes()
HEADER = TABLE2.split(b"\n", 1)[0].decode()
WIDTH = len(next(csv.reader([HEADER])))
MESSAGE = re.compile(
    r"^(?P<path>.+):(?P<line>\d+): column '(?P<col>(?:[^'\\]|\\.)*)': .+ \(.+\)$"
)
#: A physical line that starts a row: an identifier, then at least WIDTH - 1 separators.
ROW_START = re.compile(r"^[a-z][a-z0-9_]*,")
LONG_SECONDS = float(os.environ.get("METAALLY_FUZZ_SECONDS", "0"))

# --------------------------------------------------------------------------- mutations

NASTY_TEXT = st.sampled_from([
    "", " ", '"', '""', ",", ";", "\t", "\n", "\r\n", "\r", "\x00", "\ufeff", "nan", "inf",
    "-inf", "1e308", "-1e308", "1e-320", "1e100", "1e101", "9" * 30, "9" * 5000, "-0", "+1",
    "0x10", "1_000", "0,27", "\u22120.2", "\uff10.\uff12\uff17", "\u0663", "1e", ".", "-",
    "true", "false", "TRUE", "yes", "d", "f2", "r", "t", "R2", "prepost", "between",
    "association", "intervention_effect", "x" * 200_000, "caf\u00e9", "\u2028", "a,b\nc,d",
])
CELL = st.one_of(NASTY_TEXT, st.text(max_size=12),
                 st.floats(allow_nan=True).map(repr), st.integers().map(str))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = TABLE2
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(
            ["cell", "cell", "cell", "insert", "delete", "line", "dupline", "truncate", "quote",
             "delimiter", "encoding"]))
        if kind == "cell":  # one cell set to a nasty value, quoted as a CSV writer would
            try:
                rows = list(csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline="")))
            except csv.Error:  # an earlier mutation made an over-long cell: mutate bytes only
                continue
            if not rows:
                continue
            r = draw(st.integers(0, len(rows) - 1))
            if not rows[r]:
                continue
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(CELL)
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            data = out.getvalue().encode("utf-8", "surrogatepass")
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=8) | NASTY_TEXT.map(
                lambda s: s.encode("utf-8", "surrogatepass"))) + data[at:]
        elif kind == "delete":
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            data = data[:at] + data[at + draw(st.integers(1, 50)):]
        elif kind in ("line", "dupline"):
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = [] if kind == "line" else [lines[i], lines[i]]
            data = b"\n".join(lines)
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "quote":  # a stray quote, e.g. an unclosed one in a notes cell
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = lines[i] + b'"' + draw(st.sampled_from([b"", b"note", b"a, b"]))
            data = b"\n".join(lines)
        elif kind == "delimiter":
            data = data.replace(b",", draw(st.sampled_from([b";", b"\t", b"|"])))
        else:
            data = data.decode("utf-8", "replace").encode(draw(st.sampled_from(
                ["utf-16", "latin-1", "utf-8-sig", "cp1252"])), "replace")
    return data


# --------------------------------------------------------------------------- the property


def check_file(tmp: Path, data: bytes) -> None:
    path = tmp / "fuzz.csv"
    path.write_bytes(data)
    n_lines = len(re.split(rb"\r\n|\r|\n", data))
    problems = validate_file(path)  # must not raise, whatever the bytes
    for p in problems:
        m = MESSAGE.match(p)
        assert m and m["path"] == str(path), p
        assert "\n" not in p and "\r" not in p, p
        assert 1 <= int(m["line"]) <= n_lines + 1, (p, n_lines)
    assert [int(MESSAGE.match(p)["line"]) for p in problems] == sorted(
        int(MESSAGE.match(p)["line"]) for p in problems)
    if problems:
        with pytest.raises(ma.StudiesValidationError):
            ma.load_studies(path)
        return
    studies = ma.load_studies(path)
    # no row lost: a physical line outside a quoted cell starts a record, and if it starts
    # like a row it is a loaded row; a line inside a quoted cell never looks like a whole row
    # (an identifier and as many commas as a row has)
    starts, rowlike, swallowed = set(), [], []
    quoted = False
    lines = re.split(r"\r\n|\r|\n", data.decode("utf-8-sig"))  # a bare CR ends a line too
    header = next(i for i, line in enumerate(lines, start=1)  # blank records are skipped
                  if line.replace(",", "").replace("\"", "").strip())
    for i, line in enumerate(lines, start=1):
        looks = ROW_START.match(line) is not None
        if i > header and not quoted:
            starts.add(i)
            if looks:
                rowlike.append(i)
        elif i > header and looks and line.count(",") >= WIDTH - 1:
            swallowed.append(i)
        quoted = _ends_quoted(line + "\n", quoted)
    loaded = studies["source_line"].tolist()
    assert not swallowed, swallowed
    assert set(rowlike) <= set(loaded) <= starts, (rowlike, loaded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effects = ma.compute_effects(studies)
    used = effects[effects["included"]]
    assert np.isfinite(used["yi"]).all() and np.isfinite(used["vi"]).all()
    assert (used["vi"] > 0).all()


def _ends_quoted(line: str, quoted: bool) -> bool:
    """Is a quoted cell still open after ``line``?  RFC 4180: a quote opens a cell only as
    its first character; inside, "" is a quote and a lone " closes the cell."""
    at_start = not quoted
    i = 0
    while i < len(line):
        c = line[i]
        if quoted:
            if c == '"':
                if line[i + 1:i + 2] == '"':
                    i += 1
                else:
                    quoted = False
        elif c == '"' and at_start:
            quoted = True
        at_start = c == "," and not quoted
        i += 1
    return quoted


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_table2_never_breaks_the_validator(tmp_path: Path, data: bytes) -> None:
    check_file(tmp_path, data)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_cli_exits_0_or_2_and_prints_at_most_51_lines(
    tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    code = main(["validate", str(path)])
    out = capsys.readouterr()
    assert code in (0, 2)
    assert "Traceback" not in out.err
    assert len(out.err.splitlines()) <= PROBLEMS_SHOWN + 1


@pytest.mark.skipif(LONG_SECONDS <= 0, reason="long fuzzing runs with make fuzz")
def test_long_fuzz(tmp_path: Path) -> None:
    """Fresh random mutations until METAALLY_FUZZ_SECONDS have passed."""

    @settings(max_examples=500, deadline=None, derandomize=False, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=mutated())
    def run(data: bytes) -> None:
        check_file(tmp_path, data)

    stop = time.monotonic() + LONG_SECONDS
    rounds = 0
    while time.monotonic() < stop:
        run()
        rounds += 1
    print(f"long fuzz: {rounds * 500} mutated files, nothing found")
