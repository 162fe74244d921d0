"""A self-contained HTML report: one file that opens offline in any browser.

``render_html`` takes structured inputs — Markdown text (the written summary), named
tables (DataFrames), figure files, the analysed data with its provenance and the settings
used — and returns one HTML document: figures embedded as base64 data URIs, a small
inline script that sorts any table by a click on its header, no external request of any
kind (no fonts, scripts or style sheets from the network).  ``write_html`` writes it
atomically.  Nothing here knows what is being reviewed.

Markdown support is the subset ``metaally``'s own writers produce: ``#`` headings,
paragraphs, ``-``/``*`` and numbered lists, pipe tables, ``**bold**``, ``*italic*``,
`` `code` `` and ``[text](url)`` links.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "FigureFile",
    "ReportSection",
    "markdown_html",
    "render_html",
    "table_html",
    "write_html",
]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg"}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;color:#1f1f1f;line-height:1.5;background:#fff}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem}
nav{background:#f4f6f8;border-bottom:1px solid #d8dde2;padding:.6rem 2rem;position:sticky;top:0}
nav a{margin-right:1.1rem;color:#1b4f8a;text-decoration:none;font-size:.92rem}
h1{font-size:1.6rem;margin-top:.5rem}h2{border-bottom:1px solid #d8dde2;padding-bottom:.2rem;
 margin-top:2.2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.86rem;display:block;overflow-x:auto}
th,td{border:1px solid #d8dde2;padding:.25rem .5rem;text-align:left;vertical-align:top}
td{min-width:3rem;max-width:26rem}
th{background:#f4f6f8;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th::after{content:" \\2195";color:#8c8c8c;font-size:.8em}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";color:#1b4f8a}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";color:#1b4f8a}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nw{white-space:nowrap}
figure{margin:1.2rem 0 2rem}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#5a5a5a}
code{background:#f4f6f8;padding:0 .2rem;border-radius:3px}
dl.settings{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dl.settings dt{font-weight:600}dl.settings dd{margin:0}
.muted{color:#5a5a5a;font-size:.9rem}
"""

# sorts a table by the clicked column: numbers numerically, text alphabetically, blanks last
_SCRIPT = """
(function () {
  function key(cell) {
    var text = cell.textContent.trim().replace("\\u2212", "-");
    var number = parseFloat(text);
    return text === "" ? null : (isNaN(number) || !/^[-+]?[0-9.]/.test(text) ? text : number);
  }
  function compare(a, b) {
    if (a === b) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    if (typeof a === typeof b) { return a < b ? -1 : 1; }
    return typeof a === "number" ? -1 : 1;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, column) {
      th.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var a = key(r1.cells[column]), b = key(r2.cells[column]);
          if (a === null || b === null) { return compare(a, b); }
          return ascending ? compare(a, b) : compare(b, a);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"""


@dataclass(frozen=True)
class FigureFile:
    """A figure file to embed (PNG, SVG or JPEG) with its caption."""

    path: Path
    caption: str = ""


@dataclass(frozen=True)
class ReportSection:
    """One part of the report: a heading, optional Markdown text, tables and figures,
    in that order.  ``tables`` maps a caption to a DataFrame."""

    title: str
    markdown: str = ""
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    figures: Sequence[FigureFile] = ()


def render_html(
    title: str,
    sections: Sequence[ReportSection],
    *,
    data: pd.DataFrame | None = None,
    provenance: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    float_digits: int = 3,
) -> str:
    """The report as one HTML document (a string).

    ``sections`` in order, then — when given — "Data" (``data``, every row, sortable, with
    ``provenance``: e.g. source file, checksum, number of rows) and "Settings" (the
    ``settings`` name → value pairs the results were computed with).  Floats in tables are
    printed with ``float_digits`` significant digits.  Raises ``ValueError`` when ``title``
    is empty or a figure file is missing or of an unknown type.
    """
    if not str(title).strip():
        raise ValueError("title must not be empty")
    sections = list(sections)
    if data is not None or provenance:
        sections.append(ReportSection("Data", _provenance_markdown(provenance or {}),
                                {} if data is None else {"Analysed data": data}))
    parts = [_section_html(s, i, float_digits) for i, s in enumerate(sections)]
    if settings:
        parts.append(_settings_html(settings, len(sections)))
        sections.append(ReportSection("Settings"))
    nav = "".join(f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<nav>{nav}</nav>\n<main>\n<h1>{html.escape(title)}</h1>\n"
        + "\n".join(parts)
        + f"\n</main>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def write_html(path: str | Path, title: str, sections: Sequence[ReportSection],
               **kwargs: Any) -> Path:
    """Write ``render_html(title, sections, **kwargs)`` to ``path`` atomically (a
    temporary file in the same folder, then a rename)."""
    path = Path(path)
    text = render_html(title, sections, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# --- pieces -----------------------------------------------------------------------------


def _section_html(section: ReportSection, index: int, digits: int) -> str:
    out = [f'<section id="s{index}">', f"<h2>{html.escape(section.title)}</h2>"]
    if section.markdown:
        out.append(markdown_html(section.markdown, shift=1))
    for caption, frame in section.tables.items():
        out.append(table_html(frame, caption, digits))
    for figure in section.figures:
        out.append(_figure_html(figure))
    out.append("</section>")
    return "\n".join(out)


def _figure_html(figure: FigureFile) -> str:
    path = Path(figure.path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"figure {path}: unknown image type {path.suffix!r} "
                         f"(expected one of {', '.join(_MIME)})")
    if not path.is_file():
        raise ValueError(f"figure {path}: file not found")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(figure.caption or path.stem)
    return (f'<figure><img src="data:{mime};base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def table_html(frame: pd.DataFrame, caption: str = "", digits: int = 3) -> str:
    """A DataFrame as a sortable HTML table (index dropped; numbers right-aligned)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) for c in frame.columns]
    rows = []
    for values in frame.itertuples(index=False):
        cells = []
        for value, is_number in zip(values, numeric, strict=True):
            text = html.escape(_cell(value, digits))
            cells.append(f'<td class="num">{text}</td>' if is_number
                         else f"<td{_short(text)}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="sortable">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _short(text: str) -> str:
    """Short cells (an interval, a number) never wrap; long text wraps."""
    return ' class="nw"' if len(text) <= 18 else ""


def _cell(value: Any, digits: int) -> str:
    """Whole numbers as integers; others with ``digits`` decimals (scientific notation
    below 10^-digits, e.g. small p-values, so nothing prints as "-0.000")."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) < 10.0**-digits:
            return f"{value:.{max(digits - 1, 1)}e}"
        return f"{value:.{digits}f}"
    return str(value)


def _provenance_markdown(provenance: Mapping[str, Any]) -> str:
    return "\n".join(f"- **{key}**: {value}" for key, value in provenance.items())


def _settings_html(settings: Mapping[str, Any], index: int) -> str:
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd><code>{html.escape(str(v))}</code></dd>"
                    for k, v in settings.items())
    return f'<section id="s{index}"><h2>Settings</h2><dl class="settings">{items}</dl></section>'


# --- Markdown subset --------------------------------------------------------------------

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def markdown_html(text: str, shift: int = 0) -> str:
    """The Markdown subset of the module docstring as HTML; headings move down ``shift``
    levels (a summary's ``#`` becomes ``<h2>`` with ``shift=1``)."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            level = min(6, len(heading.group(1)) + shift)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        if stripped.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i].strip())
                i += 1
            out.append(_pipe_table(block))
            continue
        bullet = re.match(r"^([-*]|\d+[.)])\s+", stripped)
        if bullet:
            ordered = stripped[0].isdigit()
            items = []
            while i < len(lines) and re.match(r"^\s*([-*]|\d+[.)])\s+", lines[i]):
                item = re.sub(r"^\s*([-*]|\d+[.)])\s+", "", lines[i])
                i += 1
                while (i < len(lines) and lines[i].startswith("  ") and lines[i].strip()
                       and not re.match(r"^\s*([-*]|\d+[.)])\s+", lines[i])):
                    item += " " + lines[i].strip()
                    i += 1
                items.append(f"<li>{_inline(item)}</li>")
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
            continue
        paragraph = [stripped]
        i += 1
        while (i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("#", "|"))
               and not re.match(r"^\s*([-*]|\d+[.)])\s+", lines[i])):
            paragraph.append(lines[i].strip())
            i += 1
        out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    return "\n".join(out)


def _pipe_table(block: list[str]) -> str:
    def cells(row: str) -> list[str]:
        return [c.strip() for c in row.strip().strip("|").split("|")]

    header = cells(block[0])
    body = [cells(r) for r in block[1:] if not re.fullmatch(r"\|?[\s:|-]+\|?", r)]
    head = "".join(f"<th>{_inline(c)}</th>" for c in header)
    rows = "".join("<tr>" + "".join(f"<td{_short(c)}>{_inline(c)}</td>" for c in r) + "</tr>"
                   for r in body)
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
