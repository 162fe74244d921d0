"""The progress-bar policy of metaally.models.progress (shown on long calls, in a terminal only)."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import metaally as ma
from metaally.models import progress


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


# Every chunked public call follows the policy above: (call, bar label, units of work).
_Y = np.array([-0.9, -1.6, -1.3, -1.4, -0.2, -0.8])
_V = np.array([0.33, 0.19, 0.42, 0.02, 0.05, 0.007])
LONG_CALLS = {
    "random_effects_batch": (
        lambda progress: ma.random_effects_batch(np.tile(_Y, (40, 1)), np.tile(_V, (40, 1)),
                                                 method="DL", progress=progress),
        "meta-analyses", 40),
    "gosh": (lambda progress: ma.gosh(_Y, _V, method="DL", progress=progress), "GOSH", 63),
    "permutation_test": (
        lambda progress: ma.permutation_test(ma.random_effects(_Y, _V, method="DL"),
                                             progress=progress),
        "permutation test", 64),
}


@pytest.mark.parametrize("name", sorted(LONG_CALLS))
def test_long_calls_show_a_bar_only_when_asked(monkeypatch, name):
    call, label, total = LONG_CALLS[name]
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    call(True)
    shown = sys.stderr.getvalue()
    assert label in shown and f"{total}/{total}" in shown
    for stream, policy in [(io.StringIO(), None), (_Terminal(), None), (_Terminal(), False)]:
        monkeypatch.setattr(sys, "stderr", stream)
        call(policy)   # not a terminal, a call shorter than DELAY, or switched off
        assert stream.getvalue() == ""
