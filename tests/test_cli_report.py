"""``metaally report`` on another review in the same schema, and ``metaally --version``.

The fixture (tests/reviews/bangertdrowns2004.csv) is written by
tests/reference/bangertdrowns2004_report.R from metadat's dat.bangertdrowns2004
(Bangert-Drowns, Hurley & Wilkinson 2004, Rev. Educ. Res. 74:29-58: 48 studies of
writing-to-learn interventions, standardised mean differences); the same script stores
metafor's escalc SMD effects and its REML random-effects fit, which the report must match.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaally as ma
from metaally.cli import main
from metaally.report.pipeline import OUTPUTS
from tests.browser import chromium_path, load

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "reviews" / "bangertdrowns2004.csv"
REFERENCE = json.loads((ROOT / "tests" / "reference" / "bangertdrowns2004_report.json")
                       .read_text())


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    code = main(["report", str(FIXTURE), "--out", str(out), "--model", "univariate", "--quiet"])
    assert code == 0
    return out


def test_version_matches_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"metaally {version}" == f"metaally {ma.__version__}"


def test_every_listed_output_is_written(report_dir):
    columns = ("components", "technique", "outcome_component", "outcome_domain")
    for name in OUTPUTS:
        stems = ([name.replace("<column>", c) for c in columns] if "<column>" in name
                 else [name])
        for stem in stems:
            base, _, formats = stem.partition(".")
            for fmt in formats.split("|"):
                pages = list(report_dir.glob(f"{base}*.{fmt}"))
                assert pages, f"{base}.{fmt} not written"
    assert not list(report_dir.rglob(".*.tmp"))


# metafor's escalc and metaally both use the exact J = Γ(m/2) / (√(m/2) Γ((m−1)/2)).


def test_effect_sizes_match_metafor_escalc_exactly(report_dir):
    effects = pd.read_csv(report_dir / "effects.csv")
    assert list(effects["study_id"]) == REFERENCE["study_id"]
    np.testing.assert_allclose(effects["yi"], REFERENCE["yi"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(effects["vi"], REFERENCE["vi"], rtol=1e-7)
    # the published g (metadat rounds to 2 decimals) comes back
    np.testing.assert_allclose(effects["yi"], REFERENCE["original_yi"], atol=5e-3)


def _overall(report_dir):
    pooled = pd.read_csv(report_dir / "pooled_by_technique.csv")
    return pooled[pooled["grouping"] == "overall"].iloc[0]


def test_pooled_estimate_matches_metafor_rma_exactly(report_dir):
    overall = _overall(report_dir)
    assert overall["k_studies"] == REFERENCE["k"] == 48
    assert overall["estimate"] == pytest.approx(REFERENCE["estimate"], rel=1e-6)
    assert overall["sigma2_study"] == pytest.approx(REFERENCE["tau2"], rel=1e-5)
    assert overall["i2"] == pytest.approx(REFERENCE["i2"], rel=1e-2)


def test_summary_and_html_carry_the_numbers(report_dir):
    summary = (report_dir / "summary.md").read_text()
    assert "48 studies contribute 48 effect sizes" in summary
    assert f"g = {REFERENCE['estimate']:.2f}" in summary
    html = (report_dir / "report.html").read_text()
    svgs = list((report_dir / "figures").glob("*.svg"))
    assert html.count("data:image/svg+xml;base64,") == len(svgs) >= 6
    assert "SHA-256" in html and "bangertdrowns2004.csv" in html
    findings = pd.read_csv(report_dir / "summary_of_findings.csv")
    assert findings.iloc[-1]["level"] == "overall"
    assert findings.iloc[-1]["publication_bias"].startswith("Egger's sandwich test p =")


@pytest.mark.skipif(chromium_path() is None,
                    reason="no Chromium on PATH (Debian: apt-get install chromium); the "
                           "report was not opened in a browser")
def test_report_opens_in_chromium(report_dir):
    page = load(report_dir / "report.html", chromium_path())
    assert page.probe["errors"] == [] and page.probe["console"] == [] and page.console == []
    assert page.probe["images"] and all(i["complete"] and i["width"] > 0
                                        for i in page.probe["images"])


def test_invalid_file_exits_2_with_path_line_messages_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["report", str(ROOT / "tests" / "fixtures" / "bad_year.csv"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "bad_year.csv:4: column 'year'" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["report", str(FIXTURE), "--out", str(out), "--rho", "1.5"]) == 2
    assert "--rho" in capsys.readouterr().err


def test_console_script_runs_without_an_activated_venv():
    result = subprocess.run([sys.executable, "-m", "metaally", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("metaally ")


def test_unknown_coding_column_is_a_clear_error(tmp_path):
    from metaally.report.pipeline import run_report

    with pytest.raises(ValueError, match="columns: not in bangertdrowns2004.csv: arm_colour"):
        run_report(FIXTURE, tmp_path, columns=["technique", "arm_colour"], progress=False)
    assert not (tmp_path / "effects.csv").exists()
