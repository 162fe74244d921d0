"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Tests draw figures without a display: the Agg backend, set before anything imports matplotlib.
os.environ.setdefault("MPLBACKEND", "Agg")

# In CI (CI=true) property tests draw the same examples every run, so a landing never hangs on a
# rare draw; locally they explore new examples each run (hypothesis' default).
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# CI checks the repository out with ../shared/ beside it; tests needing it skip without it.
TABLE2_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "table2_source.md"


@pytest.fixture
def table2_source() -> str:
    """Text of the review's Table 2 excerpt; skips the test when ../shared/ is absent."""
    if not TABLE2_SOURCE.is_file():
        pytest.skip(f"{TABLE2_SOURCE} not present (the review excerpt lives beside the clone)")
    return TABLE2_SOURCE.read_text(encoding="utf-8")


@pytest.fixture
def no_show_and_close(monkeypatch: pytest.MonkeyPatch):
    """Make ``plt.show()`` fail the test (plotting functions must never call it) and
    close every figure afterwards; plot test modules use it through ``pytestmark``."""
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise AssertionError("plotting functions must never call plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise the example-data-set test classes (``UnivariateExample``,
    ``MultilevelExample``) with their reference cases, with readable ids."""
    cls = metafunc.cls
    if cls is None or not hasattr(cls, "reference_cases"):
        return
    for argname, cases in cls.reference_cases().items():
        if argname in metafunc.fixturenames:
            metafunc.parametrize(argname, cases, ids=[cls.case_id(c) for c in cases])
