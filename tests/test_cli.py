"""The command line: exit codes 0 / 2, one line per problem, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import metaally.data.reading
from metaally.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PROBLEM = re.compile(r"^.+:\d+: column '[^']+': .+ \(.+\)$")


def test_valid_file_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "data" / "table2.csv")]) == 0
    assert capsys.readouterr().out.strip().endswith("table2.csv: OK")


def test_invalid_file_exits_2_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "several_problems.csv")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert all(PROBLEM.match(line) for line in lines), lines


@pytest.mark.parametrize(
    "name", ["missing", "directory", "binary.csv", "not_utf8.csv", "empty.csv"]
)
def test_unreadable_inputs_exit_2_with_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = {"missing": tmp_path / "absent.csv", "directory": tmp_path}.get(name, FIXTURES / name)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_unexpected_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(path: str) -> list[str]:
        raise RuntimeError("something broke")

    monkeypatch.setattr(metaally.data.reading, "validate_file", boom)
    assert main(["validate", "whatever.csv"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "metaally: error: RuntimeError: something broke"


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("path", "code"),
    [("data/table2.csv", 0), ("tests/fixtures/ragged_line.csv", 2), ("no/such.csv", 2)],
    ids=["valid", "invalid", "missing"],
)
def test_python_m_metaally(path: str, code: int) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "metaally", "validate", path],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert run.returncode == code
    assert "Traceback" not in run.stderr


def test_console_script() -> None:
    script = Path(sys.executable).parent / "metaally"
    if not script.exists():
        pytest.skip("the metaally console script is not installed in this environment")
    run = subprocess.run(
        [str(script), "validate", "tests/fixtures/duplicate_row.csv"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("tests/fixtures/duplicate_row.csv:5: column '(row)'")
