"""A make-figures step killed outright (SIGKILL) and rerun gives the files an uninterrupted run
gives, byte for byte, with no half-written file or temporary file left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEP = "forest_plots"   # several figures, each PNG + SVG + PDF: a long run of writes
CODE = "import sys; from metaally.allyship.pipeline import run; run(sys.argv[1], sys.argv[2])"


def _project(where: Path) -> Path:
    (where / "results").mkdir(parents=True)
    shutil.copytree(ROOT / "data", where / "data")
    shutil.copy(ROOT / "results" / "effects.csv", where / "results" / "effects.csv")
    return where


def _step(root: Path) -> subprocess.Popen:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-c", CODE, STEP, str(root)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "figures").rglob("*")) if p.is_file()}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_step_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    clean = _project(tmp_path / "clean")
    done = _step(clean)
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    expected = _files(clean)
    assert expected, "the step wrote no figure"

    killed = _project(tmp_path / "killed")
    proc = _step(killed)
    deadline = time.monotonic() + 120
    # kill it mid-run: once its first figure file (or temporary file) exists
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "figures").is_dir() and any((killed / "figures").iterdir()):
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the step ended before it could be killed"
    rerun = _step(killed)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
    assert _files(killed) == expected
