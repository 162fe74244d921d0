"""Open an HTML file in headless Chromium and report what a reader's browser saw.

Used by the HTML report tests.  ``chromium_path()`` finds Debian's ``chromium`` (or
Google Chrome); ``load(path)`` copies the page, adds a probe script at the top of
``<head>`` that records uncaught errors and ``console.error``/``console.warn`` calls and,
after the ``load`` event, every image's ``naturalWidth`` and the first table column
before and after one click on its first header; Chromium's ``--dump-dom`` prints the
DOM with the probe's result in a ``data-probe`` attribute.  Console messages Chromium
itself logs (``--enable-logging=stderr``) are returned too.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_PROBE = """<script>
window.__probe = {errors: [], console: []};
window.addEventListener("error", function (e) { __probe.errors.push(String(e.message)); });
["error", "warn"].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    __probe.console.push(level + ": " + Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
});
window.addEventListener("load", function () {
  __probe.images = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth};
  });
  var table = document.querySelector("table.sortable");
  if (table) {
    var column = function () {
      return Array.prototype.map.call(table.tBodies[0].rows,
        function (r) { return r.cells[0].textContent; });
    };
    __probe.before = column();
    table.querySelector("thead th").click();
    __probe.ascending = column();
    table.querySelector("thead th").click();
    __probe.descending = column();
  }
  document.body.setAttribute("data-probe", JSON.stringify(__probe));
});
</script>"""


@dataclass(frozen=True)
class PageLoad:
    probe: dict
    console: list[str]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def load(path: Path, browser: str, timeout: float = 120.0) -> PageLoad:
    text = Path(path).read_text(encoding="utf-8")
    probed = text.replace("<head>", "<head>\n" + _PROBE, 1)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(probed, encoding="utf-8")
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp}/profile", "--enable-logging=stderr",
             "--v=0", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False)
    match = re.search(r'data-probe="([^"]*)"', result.stdout)
    if match is None:
        raise AssertionError(f"the page never finished loading (exit {result.returncode}):\n"
                             f"{result.stderr[-2000:]}")
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return PageLoad(json.loads(html.unescape(match.group(1))), console)


def screenshot(path: Path, out: Path, browser: str, width: int = 1200,
               height: int = 2400) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp}/profile",
             f"--window-size={width},{height}", f"--screenshot={out}", Path(path).as_uri()],
            capture_output=True, timeout=120, check=True)
    return out
