"""Issue 13, "Done when", end to end: one new study of each CSV metric appended to a copy of
data/table2.csv runs through every step of ``make figures`` and the outputs stay correct.

The ten studies (means, g, d with a CI, F, p, chi2, or, counts, prepost, medians; two of them
target all-inclusivity, one with a newly declared technique) and the yi/vi metafor 3.8's escalc
gives them are in tests/reference/e2e_update.json (made by tests/reference/e2e_update.R).  The
pipeline runs in-process: each script of analyses/ is copied beside the temporary data and run as
``make figures`` runs it, in the Makefile's order, so its outputs land in the temporary results/.
"""

from __future__ import annotations

import csv
import json
import math
import re
import runpy
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
from metaally.cli import main
from metaally.data.reading import validate_file
from metaally.plots import export

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests" / "reference" / "e2e_update.json")
                       .read_text(encoding="utf-8"))
STUDIES = REFERENCE["studies"]
METRICS = ["means", "g", "d", "F", "p", "chi2", "or", "counts", "prepost", "medians"]


def _makefile_scripts() -> list[str]:
    """The analyses/ scripts `make figures` runs, in the Makefile's order (its SCRIPTS)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    variables = dict(re.findall(r"^([A-Z_]+)\s*:=\s*(.*)$", text, flags=re.M))
    words = variables["SCRIPTS"].split()
    return [w for word in words
            for w in (variables[word[2:-1]].split() if word.startswith("$(") else [word])]


STEPS = _makefile_scripts()
#: a statistic and the p-value that must be beside it, per results table
STATISTIC_COLUMNS = ("statistic", "stat")
P_COLUMNS = ("pvalue", "pvalue_cr2")
SIMULATION_REPS = 50
DRAFT_DPI = 20


def _study_id(metric: str) -> str:
    return f"{metric.lower()}study2025"


def _citation(metric: str) -> str:
    return f"{metric.capitalize()}study et al. (2025)"


def _new_rows(header: list[str]) -> list[dict[str, str]]:
    """One row per reference study: its cells plus what any new between-groups study needs."""
    rows = []
    for study in STUDIES:
        cells = {k: (f"{v:g}" if isinstance(v, float) else str(v))
                 for k, v in study["cells"].items()}
        metric = cells["metric"]
        rows.append({c: "" for c in header} | {
            "study_id": _study_id(metric), "citation": _citation(metric), "year": "2025",
            "intervention": f"An intervention reported with metric {metric}",
            "participants": "Employees", "n": str(int(cells["n1"]) + int(cells["n2"])),
            "arms": "2", "comparison": "wait-list control", "comparator": "control",
            "design": "between", "outcome": f"Outcome of the {metric} study",
            "outcome_domain": "intention_behaviour", "timepoint": "post",
            "role": "intervention_effect", "peer_reviewed": "true", "randomised": "yes",
        } | cells)
    return rows


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with the ten studies appended, after every step of the pipeline."""
    root = tmp_path_factory.mktemp("living_update")
    for name in ("data", "analyses"):
        (root / name).mkdir()
    for name in ("table2.csv", "vocabulary.csv"):
        shutil.copyfile(ROOT / "data" / name, root / "data" / name)
    for script in STEPS:
        shutil.copyfile(ROOT / "analyses" / f"{script}.py", root / "analyses" / f"{script}.py")
    shutil.copytree(ROOT / "results", root / "results")  # the "before" of changes.md
    with open(root / "data" / "vocabulary.csv", "a", encoding="utf-8") as fh:
        fh.write("technique,workshop,Workshop,a facilitated group session\n")
    path = root / "data" / "table2.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    extra = list(dict.fromkeys(k for s in STUDIES for k in s["cells"] if k not in table[0]))
    header = table[0] + extra
    new = _new_rows(header)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(row + [""] * len(extra) for row in table[1:])
        writer.writerows([row[c] for c in header] for row in new)
    return root


@pytest.fixture(scope="module")
def results(project: Path) -> Path:
    """Every `make figures` step, run on the updated copy (each must finish without error)."""
    assert validate_file(project / "data" / "table2.csv") == []
    assert main(["validate", str(project / "data" / "table2.csv")]) == 0
    simulate, save_figure = ma.simulate, export.save_figure

    def fewer_reps(*args, n_reps: int, **kwargs):
        return simulate(*args, n_reps=min(n_reps, SIMULATION_REPS), **kwargs)

    def draft_png(fig, stem, dpi=300, formats=export.FORMATS):
        return save_figure(fig, stem, dpi=DRAFT_DPI, formats=("png",))

    with pytest.MonkeyPatch.context() as patch:
        # To keep this test within about a minute: planning's coverage simulation (up to
        # 20,000 replications) depends on the data only through the median study size, and
        # every figure is drawn in full but saved once, as a low-resolution PNG (the writing
        # of PNG/SVG/PDF is tested in test_plots.py and test_living_update.py).
        patch.setattr(ma, "simulate", fewer_reps)
        patch.setattr(ma, "save_figure", draft_png)
        patch.setattr(export, "save_figure", draft_png)
        for script in STEPS:
            runpy.run_path(str(project / "analyses" / f"{script}.py"), run_name="__main__")
    return project / "results"


def test_the_steps_are_the_makefile_s() -> None:
    assert STEPS[0] == "effects_table" and STEPS[-1] == "changes"
    assert {"summary_report", "report_html", "sensitivity", "network"} <= set(STEPS)
    assert all((ROOT / "analyses" / f"{s}.py").is_file() for s in STEPS)
    assert len(STEPS) == len(set(STEPS)) >= 17


def test_the_reference_has_one_study_per_new_metric() -> None:
    assert [s["cells"]["metric"] for s in STUDIES] == METRICS
    assert sum(s["cells"]["components"] == "all_inclusivity" for s in STUDIES) >= 1


def test_new_rows_have_metafors_yi_and_vi(project: Path, results: Path) -> None:
    expected = pd.DataFrame({"study_id": [_study_id(s["cells"]["metric"]) for s in STUDIES],
                             "yi": [s["yi"] for s in STUDIES],
                             "vi": [s["vi"] for s in STUDIES]})
    # in-process: compute_effects on the updated file equals metafor to 1e-10 relative
    effects = ma.compute_effects(ma.load_studies(project / "data" / "table2.csv"))
    new = effects.set_index("study_id").loc[expected["study_id"]]
    np.testing.assert_allclose(new["yi"], expected["yi"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(new["vi"], expected["vi"], rtol=1e-10, atol=0)
    # results/effects.csv writes six decimals: equal to metafor's values rounded
    written = pd.read_csv(results / "effects.csv").set_index("study_id").loc[expected["study_id"]]
    np.testing.assert_allclose(written["yi"], expected["yi"], rtol=0, atol=5.000001e-7)
    np.testing.assert_allclose(written["vi"], expected["vi"], rtol=0, atol=5.000001e-7)
    assert written["included"].all()
    assert written["derivation"].str.len().gt(0).all()
    assert written.loc[_study_id("prepost"), "derivation"].endswith("r_prepost = 0.5 assumed")


def test_all_inclusivity_is_pooled(results: Path) -> None:
    pooled = pd.read_csv(results / "pooled_by_component.csv")
    row = pooled[(pooled["grouping"] == "component")
                 & (pooled["component"] == "all_inclusivity")]
    assert len(row) == 1
    row = row.iloc[0]
    targeting = [s for s in STUDIES if "all_inclusivity" in s["cells"]["components"]]
    assert row["k_studies"] == len(targeting) >= 1
    assert math.isfinite(row["estimate"]) and row["note"] != "no studies yet"
    techniques = pd.read_csv(results / "pooled_by_technique.csv")
    assert techniques.loc[techniques["level"] == "workshop", "k_studies"].item() == 2


def test_changes_md_lists_the_studies_and_each_pooled_estimate(results: Path) -> None:
    text = (results / "changes.md").read_text(encoding="utf-8")
    for study in STUDIES:
        metric = study["cells"]["metric"]
        assert (f"- Added: {_citation(metric)} (`{_study_id(metric)}`), 1 effect (a new study)"
                in text), metric
    level_column = {"pooled_by_component.csv": "component",
                    "pooled_by_technique.csv": "level",
                    "pooled_by_outcome_component.csv": "level"}
    changed = 0
    for name, column in level_column.items():
        before = pd.read_csv(ROOT / "results" / name)
        after = pd.read_csv(results / name)
        merged = after.merge(before, on=["grouping", column], how="left",
                             suffixes=("", "_before"))
        for r in merged.itertuples():
            if r.k_studies == r.k_studies_before and (
                    (pd.isna(r.estimate) and pd.isna(r.estimate_before))
                    or abs(r.estimate - r.estimate_before) < 1e-9):
                continue
            g_before = "—" if pd.isna(r.estimate_before) else f"{r.estimate_before:.2f}"
            g_after = "—" if pd.isna(r.estimate) else f"{r.estimate:.2f}"
            k_before = "—" if pd.isna(r.k_studies_before) else str(int(r.k_studies_before))
            pattern = (rf"\| {re.escape(name)} \| [^|]+ \| {k_before} → {int(r.k_studies)} "
                       rf"\| {re.escape(g_before)} → {re.escape(g_after)} \|")
            matches = [line for line in text.splitlines() if re.match(pattern, line)]
            assert matches, (name, getattr(r, column), pattern)
            changed += 1
    assert changed >= 5  # overall, three targeted components, all-inclusivity at least


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce")


def test_no_results_table_has_a_bad_df_or_a_blank_p(results: Path) -> None:
    tables = sorted(results.glob("*.csv"))
    assert len(tables) >= 15
    for path in tables:
        frame = pd.read_csv(path)
        for column in frame.columns:
            if column == "df" or column.startswith("df_") or column.endswith("_df"):
                df = _numeric(frame, column)
                assert not (df <= 0).any(), (path.name, column, frame[df <= 0])
            if column in P_COLUMNS:
                p = _numeric(frame, column)
                assert p.dropna().between(0, 1).all(), (path.name, column)
        for stat in STATISTIC_COLUMNS:
            if stat not in frame:
                continue
            given = frame[stat].notna()
            for p in (c for c in P_COLUMNS if c in frame):
                blank = given & frame[p].isna()
                assert not blank.any(), (path.name, stat, frame[blank])


def _claims(summary: str, noun: str) -> bool:
    return f"evidence that at least one {noun} differs" in summary


def test_summary_claims_only_what_the_tests_support(results: Path) -> None:
    summary = (results / "summary.md").read_text(encoding="utf-8")
    for name, noun in (("component_differences.csv", "component"),
                       ("technique_differences.csv", "technique")):
        frame = pd.read_csv(results / name)
        test = frame[frame["row_type"] == "test"].iloc[0]
        supported = (test["inference"] == "CR2" and test["pvalue"] < 0.05
                     and test["df_den"] >= 4)
        assert _claims(summary, noun) == supported, (name, test.to_dict())
        if test["inference"] != "none":
            assert not (test["pvalue"] >= 0.05) or f"no evidence that the {noun}s differ" in summary
    assert not re.search(r"F\(\d+(\.\d+)?, -", summary)
    assert not re.search(r"\bnan\b|\binf\b", summary)
    assert not re.search(r"\b1 (studies|effects)\b", summary)
