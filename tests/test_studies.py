"""Loading and validating the studies CSV."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import metaally as ma
import metaally.allyship as ally
from metaally.data.reading import validate_file
from metaally.data.studies import COLUMNS, METRICS, STUDY_LEVEL

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TABLE2 = ROOT / "data" / "table2.csv"

# (fixture, physical line, column named, words of the message) - one broken file per rule
BROKEN = [
    ("empty.csv", 1, "(file)", "the file is empty"),
    ("header_only.csv", 2, "(file)", "no data rows"),
    ("missing_column.csv", 1, "arms", "required column is missing"),
    ("repeated_column.csv", 1, "notes", "repeated"),
    ("unnamed_column.csv", 1, "(column 29)", "the column has no name"),
    ("ragged_line.csv", 3, "peer_reviewed", "26 fields but the header has 28"),
    ("not_utf8.csv", 2, "(file)", "not valid UTF-8"),
    ("binary.csv", 2, "(file)", "NUL byte"),
    ("n_not_number.csv", 2, "n", "'abc' is not a whole number"),
    ("n_underscore.csv", 2, "n", "'1_000' is not a whole number"),
    ("n_negative.csv", 3, "n", "-5 is out of range"),
    ("n_zero.csv", 4, "n", "0 is out of range"),
    ("arms_below_two.csv", 2, "arms", "1 is out of range"),
    ("too_few_per_arm.csv", 3, "arms", "fewer than 2 participants per arm"),
    ("unknown_component.csv", 4, "components", "unknown components 'allyship'"),
    ("repeated_component.csv", 4, "components", "repeats a value"),
    ("unknown_metric.csv", 2, "metric", "unknown metric 'OR'"),
    ("value_missing.csv", 2, "value", "no value and no range"),
    ("value_and_range.csv", 2, "value", "both a value and a range"),
    ("range_half.csv", 3, "value_high", "value_low is given but value_high is blank"),
    ("low_above_high.csv", 3, "value_low", "0.5 is greater than value_high 0.3"),
    ("f2_negative.csv", 4, "value", "f2 = -0.01 is out of range"),
    ("r2_out_of_range.csv", 4, "value", "R2 = 1.2 is out of range"),
    ("r2_as_intervention_effect.csv", 4, "role", "association"),
    ("r_out_of_range.csv", 4, "value", "r = 1 is out of range"),
    ("t_from_prepost.csv", 2, "design", "metric t cannot come from a prepost design"),
    ("d_beyond_10.csv", 2, "value", "d = 12 is out of range"),
    ("non_finite.csv", 2, "value", "'nan' is not a finite number"),
    ("duplicate_row.csv", 5, "(row)", "duplicate of line 2"),
    ("unknown_technique.csv", 2, "technique", "unknown technique 'workshop'"),
    ("unknown_outcome_component.csv", 2, "outcome_component", "unknown outcome_component"),
    ("unknown_outcome_domain.csv", 2, "outcome_domain", "unknown outcome_domain"),
    ("unknown_comparator.csv", 2, "comparator", "unknown comparator 'placebo'"),
    ("unknown_role.csv", 2, "role", "unknown role 'effect'"),
    ("unknown_design.csv", 2, "design", "unknown design 'within'"),
    ("unknown_direction.csv", 2, "direction", "unknown direction 'up'"),
    ("bad_peer_reviewed.csv", 2, "peer_reviewed", "'yes' is not true/false"),
    ("bad_study_id.csv", 4, "study_id", "not a valid identifier"),
    ("bad_year.csv", 4, "year", "'20x1' is not a whole number"),
    ("bad_ref.csv", 4, "ref", "0 is out of range"),
    ("outcome_missing.csv", 3, "outcome", "value is missing"),
    ("n1_without_n2.csv", 4, "n2", "n1 is given but n2 is blank"),
    ("per_arm_exceeds_n.csv", 4, "n1", "n1 + n2 = 250 exceeds n = 200"),
    ("study_inconsistent.csv", 3, "year", "different value on line 2"),
    ("bad_after_multiline_note.csv", 4, "n", "'zero' is not a whole number"),
]
MESSAGE = re.compile(
    r"^(?P<path>.+):(?P<line>\d+): column '(?P<col>[^']+)': (?P<what>.+) \((?P<exp>.+)\)$"
)


@pytest.mark.parametrize(("name", "line", "column", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_rule_names_line_and_column(name: str, line: int, column: str, words: str) -> None:
    path = FIXTURES / name
    problems = validate_file(path)
    assert len(problems) == 1, problems
    match = MESSAGE.match(problems[0])
    assert match, problems[0]
    assert match["path"] == str(path)
    assert int(match["line"]) == line
    assert match["col"] == column
    assert words in match["what"]


def test_every_fixture_is_in_the_rule_table() -> None:
    valid_or_combined = {"valid.csv", "valid_bom_spaces_crlf.csv", "several_problems.csv"}
    tested = {b[0] for b in BROKEN} | valid_or_combined
    assert {p.name for p in FIXTURES.glob("*.csv")} - {"vocabulary.csv"} == tested


def test_all_problems_are_collected() -> None:
    problems = validate_file(FIXTURES / "several_problems.csv")
    located = [MESSAGE.match(p).group("line", "col") for p in problems]
    assert located == [("2", "n"), ("2", "metric"), ("3", "components")]


def test_load_studies_raises_with_every_problem() -> None:
    path = FIXTURES / "several_problems.csv"
    with pytest.raises(ma.StudiesValidationError) as info:
        ma.load_studies(path)
    assert info.value.problems == validate_file(path)
    assert isinstance(info.value, ValueError)


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ma.load_studies(tmp_path / "absent.csv")
    with pytest.raises(IsADirectoryError):
        validate_file(tmp_path)


def test_bom_trailing_spaces_crlf_and_multiline_notes_are_accepted() -> None:
    studies = ma.load_studies(FIXTURES / "valid_bom_spaces_crlf.csv")
    assert list(studies.columns[:2]) == ["study_id", "ref"]
    assert studies["study_id"].tolist() == ["alpha2020", "alpha2020", "beta2021"]
    assert studies["notes"].iloc[0] == "a note\nspanning two lines"
    # header on line 1, a blank line 2, row 1 spans lines 3-4
    assert studies["source_line"].tolist() == [3, 5, 6]


def test_loaded_types() -> None:
    studies = ma.load_studies(FIXTURES / "valid.csv")
    assert studies["n"].dtype == "int64"
    assert studies["n1"].dtype == "Int64" and studies["n1"].isna().tolist() == [True, True, False]
    assert studies["value"].isna().tolist() == [False, True, False]
    assert studies["peer_reviewed"].tolist() == [True, True, False]
    assert studies["ref"].isna().all()
    assert studies["table_group"].tolist() == ["", "", ""]


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    lines = (FIXTURES / "valid.csv").read_text(encoding="utf-8").splitlines()
    extended = [lines[0] + ",coder"] + [line + ",EP" for line in lines[1:]]
    path = tmp_path / "extra.csv"
    path.write_text("\n".join(extended) + "\n", encoding="utf-8")
    assert ma.load_studies(path)["coder"].tolist() == ["EP"] * 3


def test_table2_loads_from_the_package() -> None:
    studies = ally.load_table2()
    assert len(studies) == 41
    assert studies["study_id"].nunique() == 11
    assert studies["ref"].notna().all()
    pd.testing.assert_frame_equal(studies, ma.load_studies(TABLE2))


def test_packaged_copy_is_a_link_to_the_data_file() -> None:
    packaged = ROOT / "metaally" / "allyship" / "table2.csv"
    assert packaged.is_symlink()
    assert packaged.resolve() == TABLE2.resolve()


def test_table2_encodings_of_design_notes() -> None:
    """DESIGN.md §2: the documented encodings are in the data, not in code."""
    s = ally.load_table2().set_index("source_line")
    by_ref = s.groupby("ref")
    assert set(s.loc[s["comparator"] == "active", "ref"]) == {165, 172, 175}
    assert set(s.loc[~s["peer_reviewed"], "ref"]) == {164}
    assert s.loc[s["role"] == "association", ["ref", "metric"]].values.tolist() == [[179, "R2"]]
    assert by_ref["arms"].first().to_dict() == {
        73: 2, 161: 4, 163: 3, 164: 2, 165: 2, 166: 2, 167: 3, 172: 2, 175: 2, 176: 2, 179: 2
    }
    assert set(s.loc[s["design"] == "prepost", "ref"]) == {166, 167}
    assert (s.loc[s["ref"] == 175, "metric"] == "f2").all()
    assert s["components"].str.contains("all_inclusivity").sum() == 0


def _table2_values(source: str) -> tuple[Counter, dict[int, int]]:
    """(ref, metric, value or (low, high)) of every effect size in Table 2, and n per ref."""
    values: Counter = Counter()
    sizes: dict[int, int] = {}
    ref = None
    effect = re.compile(
        r"\$(d|f\^2|R\^2)(?:\$ values)? = ([\d.]+)(?:\s*[-–]\s*([\d.]+))?\$?"
    )
    for line in source.split("## References")[0].splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        if fields[-1].strip().isdigit():
            ref = int(fields[-1])
        n = re.search(r"\$n = ([\d,]+)\$", line)
        if n:
            sizes[ref] = int(n.group(1).replace(",", ""))
        for metric, low, high in effect.findall(line):
            metric = {"f^2": "f2", "R^2": "R2"}.get(metric, metric)
            values[(ref, metric, (float(low), float(high)) if high else float(low))] += 1
    return values, sizes


def test_every_table2_number_is_in_the_csv(table2_source: str) -> None:
    expected, sizes = _table2_values(table2_source)
    assert sum(expected.values()) == 49 - 8  # 41 cells: 8 of them ranges
    studies = ally.load_table2()
    found: Counter = Counter()
    for row in studies.itertuples():
        value = row.value if pd.notna(row.value) else (row.value_low, row.value_high)
        found[(row.ref, row.metric, value)] += 1
    assert found == expected
    assert studies.groupby("ref")["n"].first().to_dict() == sizes


def test_codebook_documents_every_column_and_word() -> None:
    codebook = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for col in COLUMNS:
        assert f"`{col.name}`" in codebook, col.name
        for word in col.vocabulary:
            assert f"`{word}`" in codebook, (col.name, word)
    for metric in METRICS:
        assert f"`{metric}`" in codebook
    assert set(STUDY_LEVEL) <= {c.name for c in COLUMNS}


def test_codebook_documents_the_vocabulary_file() -> None:
    from metaally.data.vocabulary import DECLARED_COLUMNS, HEADER, load_vocabulary

    codebook = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert "## Vocabulary: `data/vocabulary.csv`" in codebook
    assert ",".join(HEADER) in codebook
    for column in DECLARED_COLUMNS:
        assert f"`{column}`" in codebook
    declared = load_vocabulary(ROOT / "data" / "vocabulary.csv")
    assert {w.column for w in declared.words} == set(DECLARED_COLUMNS)
    assert (FIXTURES / "vocabulary.csv").read_bytes() == (ROOT / "data" / "vocabulary.csv"
                                                          ).read_bytes()


def test_validation_never_writes_the_input() -> None:
    before = (hashlib.sha256(TABLE2.read_bytes()).hexdigest(), TABLE2.stat().st_mtime_ns)
    validate_file(TABLE2)
    ma.compute_effects(ma.load_studies(TABLE2))
    after = (hashlib.sha256(TABLE2.read_bytes()).hexdigest(), TABLE2.stat().st_mtime_ns)
    assert before == after
