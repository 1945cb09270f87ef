"""Every real spreadsheet and CSV of the corpus (password-protected, empty, fuzzed and denial-of-service
files included) through ``read_workbook`` in a parser process: each ends as a Workbook or an
InputError naming the file within its deadline, never another exception, a hang or a crash. Values
the upstream projects' own tests expect are checked for a few files; and the read speed on a
generated 100,000-row workbook is measured beside python-calamine's bare ``to_python``."""

from __future__ import annotations

import datetime
import functools
import html
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.content import Limits
from conveyor.errors import InputError
from conveyor.extractors.isolation import Deadline, Sandbox
from conveyor.extractors.sniff import CSV, HEAD_BYTES, sniff
from conveyor.extractors.spreadsheet import Workbook, read_workbook

D, T, DT, TD = datetime.date, datetime.time, datetime.datetime, datetime.timedelta
SECONDS_PER_FILE = 30.0
LIMITS = Limits(seconds_per_file=SECONDS_PER_FILE, parse_workers=2)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    pool = Sandbox(workers=2, memory_bytes=LIMITS.memory_bytes)
    yield pool
    pool.close()


def inputs(corpus_dir: Path) -> list[Path]:
    """The files to read: not the manifests nor the expected results kept beside them."""
    files = []
    for folder in ("sheets", "csv"):
        for path in sorted((corpus_dir / folder).rglob("*")):
            name = path.name
            is_expected = "expected" in path.parts or ".expected." in name or ".groundtruth." in name
            if path.is_file() and name != "MANIFEST.tsv" and not is_expected:
                files.append(path)
    return files


def read(sandbox: Sandbox, path: Path, **claimed: str) -> Workbook:
    """Sniffed as the pipelines sniff it, then read in a parser process under the file's deadline."""
    sniffed = sniff(path.read_bytes()[:HEAD_BYTES], path.name, lambda: path.open("rb"))
    reader = functools.partial(
        read_workbook,
        encoding=claimed.get("encoding", sniffed.encoding),
        delimiter=claimed.get("delimiter", sniffed.delimiter),
    )
    deadline = Deadline.start(SECONDS_PER_FILE)
    return sandbox.run(
        reader, str(path), sniffed.media_type, path.name, LIMITS, deadline=deadline, subject=path.name
    )


def test_every_corpus_sheet_and_csv_ends_as_a_workbook_or_an_input_error(
    corpus_dir: Path, sandbox: Sandbox
) -> None:
    files = inputs(corpus_dir)
    assert len(files) > 150
    outcomes: dict[str, str] = {}
    for path in files:
        relative = str(path.relative_to(corpus_dir))
        started = time.monotonic()
        try:
            workbook = read(sandbox, path)
        except InputError as error:
            message = str(error)
            assert message.startswith(f"{path.name}: "), message
            assert "Traceback" not in message
            outcomes[relative] = f"error: {message}"
        else:
            assert isinstance(workbook, Workbook)
            outcomes[relative] = f"{len(workbook.sheets)} sheets"
        assert time.monotonic() - started < SECONDS_PER_FILE + 5, relative
    errors = {name: outcome for name, outcome in outcomes.items() if outcome.startswith("error")}
    for name in (
        "calamine/pass_protected.xlsx",
        "calamine/pass_protected.ods",
        "unstructured/password_protected.xlsx",
    ):
        assert "password-protected" in errors[f"sheets/{name}"]
    for name in (
        "openpyxl/null_file.xlsx",
        "python-calamine/empty_file.xlsx",
        "python-calamine/empty_file.ods",
    ):
        assert errors[f"sheets/{name}"].endswith("the file is empty")
    assert "not a spreadsheet; the content is a ZIP archive" in errors["sheets/openpyxl/null_archive.xlsx"]
    # The fuzzed file calamine's own test expects to fail with a compound-file error, not run out of memory
    assert "Cfb error" in errors["sheets/calamine/OOM_alloc3.xls"]
    # Everything else reads, the other fuzzed xls and the binary files in the CSV set included.
    assert len(errors) == 8, errors
    assert outcomes["sheets/calamine/OOM_alloc2.xls"] == "1 sheets"
    assert outcomes["csv/csvlint/spreadsheet.xlsx"] == "3 sheets"


# --- values the upstream tests expect --------------------------------------------------------------


@pytest.mark.parametrize("name", ["date.xlsx", "date_1904.xlsx", "date_1904.xls"])
def test_calamine_dates_and_durations_in_both_date_systems(
    corpus_dir: Path, sandbox: Sandbox, name: str
) -> None:
    (sheet,) = read(sandbox, corpus_dir / "sheets" / "calamine" / name).sheets
    assert sheet.rows == [
        [D(2021, 1, 1), 15],
        [D(2021, 1, 2), 16],
        [TD(days=10, hours=15, minutes=10, seconds=10), 17],
    ]


def test_calamine_ods_dates_times_and_fractions_of_a_second(corpus_dir: Path, sandbox: Sandbox) -> None:
    (sheet,) = read(sandbox, corpus_dir / "sheets" / "calamine" / "date.ods").sheets
    assert sheet.rows == [
        [D(2021, 1, 1), 15],
        [DT(2021, 1, 1, 10, 10, 10), 16],
        [T(10, 10, 10), 17],
        [T(10, 10, 10, 123456), 18],
    ]


def test_calamine_iso_dates(corpus_dir: Path, sandbox: Sandbox) -> None:
    (sheet,) = read(sandbox, corpus_dir / "sheets" / "calamine" / "date_iso.xlsx").sheets
    assert [row[0] for row in sheet.rows[:3]] == [D(2021, 1, 1), DT(2021, 1, 1, 10, 10, 10), T(10, 10, 10)]


def test_calamine_merged_regions(corpus_dir: Path, sandbox: Sandbox) -> None:
    first, second = read(sandbox, corpus_dir / "sheets" / "calamine" / "merged_range.xlsx").sheets
    header_merges = [(0, column, 1, column) for column in (0, 1, 4, 5, 6, 7)]
    assert sorted(first.merged) == sorted([*header_merges, (0, 2, 1, 3), (2, 2, 2, 3), (3, 2, 3, 3)])
    assert sorted(second.merged) == [
        (0, 0, 3, 0),
        (0, 1, 1, 1),
        (0, 2, 1, 3),
        (0, 4, 1, 4),
        (0, 5, 3, 7),
        (2, 2, 3, 3),
    ]
    assert first.rows[0] == ["A1", "B1", "C1", None, "E1", "F1", "G1", "H1"]
    (xls,) = read(sandbox, corpus_dir / "sheets" / "calamine" / "merge_cells.xls").sheets
    assert sorted(xls.merged) == [(0, 0, 0, 1), (1, 0, 3, 0), (1, 1, 3, 3)]


def test_calamine_covered_ods_cells_are_merged_ranges(corpus_dir: Path, sandbox: Sandbox) -> None:
    (sheet,) = read(sandbox, corpus_dir / "sheets" / "calamine" / "covered.ods").sheets
    assert sheet.rows == [["a1"], ["a2"], ["a3"]]
    assert sheet.merged == [(1, 0, 2, 0)]


@pytest.mark.parametrize("name", ["any_sheets.xlsx", "any_sheets.xls", "any_sheets.ods"])
def test_hidden_sheets_are_read_and_chart_sheets_skipped(
    corpus_dir: Path, sandbox: Sandbox, name: str
) -> None:
    workbook = read(sandbox, corpus_dir / "sheets" / "calamine" / name)
    seen = [(sheet.name, sheet.hidden) for sheet in workbook.sheets]
    expected = [("Visible", False), ("Hidden", True), ("VeryHidden", True)]
    # ODS has no chart sheets: its "Chart" is an ordinary sheet holding a chart
    assert seen == ([*expected, ("Chart", False)] if name.endswith(".ods") else expected)
    assert workbook.sheets[0].rows[:3] == [[1, 2], [3, 4], [5, 6]]


def test_the_fuzzed_xls_calamine_reads_still_reads(corpus_dir: Path, sandbox: Sandbox) -> None:
    workbook = read(sandbox, corpus_dir / "sheets" / "calamine" / "OOM_alloc2.xls")
    assert [sheet.name for sheet in workbook.sheets] == ["Colsale (Aug"]


# Upstream's expected JSON has a placeholder where its CSV has 2095257564.
SPECTRUM_DISAGREES = {"location_coordinates.csv": ("Contact Phone Number",)}


def test_csv_spectrum_rows(corpus_dir: Path, sandbox: Sandbox) -> None:
    folder = corpus_dir / "csv" / "csv-spectrum"
    expectations = sorted(folder.glob("*.expected.json"))
    assert len(expectations) == 12
    for expectation in expectations:
        path = folder / expectation.name.replace(".expected.json", ".csv")
        (sheet,) = read(sandbox, path).sheets
        header, *rows = [[value or "" for value in row] for row in sheet.rows]
        records = [dict(zip(header, row, strict=True)) for row in rows]
        expected = json.loads(expectation.read_text(encoding="utf-8"))
        expected = expected if isinstance(expected, list) else [expected]
        for field in SPECTRUM_DISAGREES.get(path.name, ()):
            for record in (*records, *expected):
                del record[field]
        assert records == expected, path.name


@pytest.mark.parametrize("name", ["csv-comma.csv", "csv-pipe.csv", "csv-semicolon.csv", "csv-tab.csv"])
def test_docling_csv_delimiters(corpus_dir: Path, sandbox: Sandbox, name: str) -> None:
    path = corpus_dir / "csv" / "docling" / name
    table = (path.parent / f"{name}.groundtruth.md").read_text(encoding="utf-8").splitlines()
    cells = [line.strip().strip("|").split(" | ") for line in table if line]
    expected = [
        [html.unescape(value.strip()) for value in row] for row in cells
    ]  # docling writes | as &#124;
    (sheet,) = read(sandbox, path).sheets
    assert [[value or "" for value in row] for row in sheet.rows] == [expected[0], *expected[2:]]


def test_unstructured_utf16_reads_as_its_utf8_twin(corpus_dir: Path, sandbox: Sandbox) -> None:
    folder = corpus_dir / "csv" / "unstructured"
    (utf16,) = read(sandbox, folder / "stanley-cups-utf-16.csv").sheets
    (utf8,) = read(sandbox, folder / "stanley-cups.csv").sheets
    assert utf16.rows == utf8.rows
    assert len(utf8.rows) == 5


def test_csvlint_invalid_byte_sequence_read_as_declared_utf8(corpus_dir: Path, sandbox: Sandbox) -> None:
    path = corpus_dir / "csv" / "csvlint" / "invalid-byte-sequence.csv"
    with pytest.raises(
        InputError, match=r"^invalid-byte-sequence\.csv: not valid UTF-8 at byte 33 \(0xf3\)$"
    ):
        read(sandbox, path, encoding="utf-8", delimiter=",")
    # as sniffed (windows-1252, which decodes every one of its bytes) it reads
    assert read(sandbox, path).media_type == CSV
