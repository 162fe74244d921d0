"""Write results/effects.csv: one row per effect size of data/table2.csv.

Run by ``make figures``.  Uses only the public API.  The output is sorted and
written with a fixed float format, so adding a study shows up as a clean diff.
"""

from __future__ import annotations

from pathlib import Path

import metaally as ma

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    studies = ma.load_studies(ROOT / "data" / "table2.csv")
    effects = ma.compute_effects(studies).sort_values(["study_id", "es_id"], kind="stable")
    out = ROOT / "results" / "effects.csv"
    out.parent.mkdir(exist_ok=True)
    effects.to_csv(out, index=False, float_format="%.6f", lineterminator="\n")
    print(f"wrote {out.relative_to(ROOT)} ({len(effects)} effects, "
          f"{int(effects['included'].sum())} included)")


if __name__ == "__main__":
    main()
