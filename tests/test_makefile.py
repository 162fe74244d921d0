"""The Makefile: each target defined once, no GNU Make >= 4.3 grouped targets, and every
analyses/ script run by `make figures` (through its stamp)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
RULE = re.compile(r"^([A-Za-z0-9_.$()/%-][^:=#\t]*?)\s*::?(?!=)(.*)$")


def _rules() -> list[str]:
    targets = []
    for line in MAKEFILE.splitlines():
        if line.startswith(("\t", "#", " ")) or not line.strip():
            continue
        match = RULE.match(line)
        if match and not match.group(1).startswith("."):
            targets += match.group(1).split()
    return targets


def test_each_target_is_defined_once_and_no_grouped_targets():
    assert "&:" not in MAKEFILE
    repeated = [t for t, n in Counter(_rules()).items() if n > 1]
    assert repeated == []
    for target in ("figures:", "test:", "bench:", "validate:", "lint:", "clean:"):
        assert re.search(rf"^{target}", MAKEFILE, re.MULTILINE), target


def test_every_analyses_script_has_a_stamp():
    scripts = {p.stem for p in (ROOT / "analyses").glob("*.py")}
    listed = set(re.search(r"^SCRIPTS\s*:=(.*)$", MAKEFILE, re.MULTILINE).group(1)
                 .replace("$(FROM_EFFECTS)", re.search(
                     r"^FROM_EFFECTS\s*:=((?:.*\\\n)*.*)$", MAKEFILE, re.MULTILINE).group(1)
                     .replace("\\\n", " ")).split())
    assert listed == scripts
