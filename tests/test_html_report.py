"""The self-contained HTML report: what the renderer writes, and what a real browser
(headless Chromium) makes of it — no console errors, every figure decoded, tables that
sort.  Without a browser the browser tests are skipped with the reason, never passed."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import metaally as ma
from metaally.report.html import (
    FigureFile,
    ReportSection,
    markdown_html,
    render_html,
    table_html,
    write_html,
)
from tests.browser import chromium_path, load

SUMMARY = """# Results

Some **bold** and *italic* text with `code`.

## Pooled

| Group | g |
|---|---|
| a | 0.50 |
| b | 0.20 |

- first item
- second item
"""


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    fig = ma.forest_plot(pd.DataFrame({"label": ["a", "b", "c"], "yi": [0.2, 0.5, -0.1],
                                       "vi": [0.02, 0.03, 0.05]}))
    paths = ma.save_figure(fig, out / "forest", dpi=100)
    return [FigureFile(paths[0], "Forest plot (PNG)"), FigureFile(paths[1], "Forest plot (SVG)")]


@pytest.fixture(scope="module")
def report(figures, tmp_path_factory):
    table = pd.DataFrame({"level": ["b", "a", "c", "d"], "estimate": [0.2, 0.5, -0.25, np.nan],
                          "k": [3, 2, 5, 0]})
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_html(path, "Test report", [
        ReportSection("Summary", SUMMARY),
        ReportSection("Tables", tables={"Pooled by level": table}, figures=figures),
    ], data=pd.DataFrame({"study": ["x", "y"], "yi": [0.1, 0.2]}),
        provenance={"source": "data.csv", "rows": 2}, settings={"rho": 0.6, "method": "REML"})
    return path


def test_markdown_subset():
    out = markdown_html(SUMMARY, shift=1)
    assert "<h2>Results</h2>" in out and "<h3>Pooled</h3>" in out
    assert "<strong>bold</strong>" in out and "<em>italic</em>" in out
    assert "<code>code</code>" in out
    assert "<ul><li>first item</li><li>second item</li></ul>" in out
    assert "<th>Group</th>" in out and "<td class=\"nw\">0.50</td>" in out and "---" not in out
    assert "&lt;script&gt;" in markdown_html("<script>alert(1)</script>")


def test_table_is_sortable_escaped_and_blank_for_nan():
    out = table_html(pd.DataFrame({"a": ["<x>"], "b": [np.nan], "c": [-0.0001],
                                   "n": [5580.0], "g": [-0.004], "p": [0.1234]}), digits=2)
    assert 'class="sortable"' in out and "&lt;x&gt;" in out
    assert '<td class="num"></td>' in out and "-1.0e-04" in out
    assert ">5580<" in out and ">-4.0e-03<" in out and ">0.12<" in out and "-0.00<" not in out


def test_report_is_one_file_with_embedded_figures_and_no_network(report, figures):
    text = report.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 1
    assert text.count("data:image/svg+xml;base64,") == 1
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<link" not in text and "@import" not in text
    for heading in ("Summary", "Tables", "Data", "Settings"):
        assert f"<h2>{heading}</h2>" in text
    assert "<dt>rho</dt><dd><code>0.6</code></dd>" in text
    assert not list(report.parent.glob(".*.tmp"))


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="title"):
        render_html(" ", [])
    with pytest.raises(ValueError, match="file not found"):
        render_html("t", [ReportSection("s", figures=[FigureFile(tmp_path / "none.png")])])
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="unknown image type"):
        render_html("t", [ReportSection("s", figures=[FigureFile(tmp_path / "x.gif")])])


BROWSER = chromium_path()
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium); "
                            "the HTML report was not opened in a browser")


@needs_browser
def test_report_opens_in_chromium_without_errors_and_every_image_decodes(report):
    page = load(report, BROWSER)
    assert page.probe["errors"] == [] and page.probe["console"] == []
    assert page.console == []
    images = page.probe["images"]
    assert len(images) == 2
    assert all(img["complete"] and img["width"] > 0 for img in images), images


@needs_browser
def test_tables_sort_by_a_click_in_chromium(report):
    page = load(report, BROWSER)
    # the first sortable table is the Markdown one: Group a, b
    assert page.probe["before"] == ["a", "b"]
    assert page.probe["ascending"] == ["a", "b"] and page.probe["descending"] == ["b", "a"]


@needs_browser
def test_numeric_columns_sort_as_numbers_in_chromium(tmp_path):
    table = pd.DataFrame({"g": [0.5, -0.25, 10.0, np.nan]})
    path = write_html(tmp_path / "r.html", "t", [ReportSection("s", tables={"t": table})])
    page = load(path, BROWSER)
    assert page.probe["ascending"] == ["-0.250", "0.500", "10", ""]
    assert page.probe["descending"] == ["10", "0.500", "-0.250", ""]
