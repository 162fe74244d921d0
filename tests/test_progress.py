"""The progress-bar policy of metaally.progress (shown on long calls, in a terminal only)."""

from __future__ import annotations

import io
import sys

import pytest

from metaally import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_when_asked(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress.progress_bar(10, "x", "fits", progress=False)
    bar.update(10)
    bar.close()
    assert sys.stderr.getvalue() == ""


def test_off_by_default_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress.progress_bar(10, "x", "fits")
    bar.update(10)
    bar.close()
    assert sys.stderr.getvalue() == ""


def test_default_in_a_terminal_waits_for_a_long_call(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress.progress_bar(10, "x", "fits")
    assert bar.delay == pytest.approx(progress.DELAY)   # a short call never shows it
    bar.update(10)
    bar.close()
    assert sys.stderr.getvalue() == ""


def test_forced_on_shows_at_once(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress.progress_bar(10, "GOSH", "subsets", progress=True)
    bar.update(10)
    bar.close()
    assert "GOSH" in sys.stderr.getvalue() and "10/10" in sys.stderr.getvalue()
