"""The target list read from a spreadsheet column: by header, by header text, by letter, in every
spreadsheet format, and the errors that name the file."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.content import Limits
from conveyor.errors import InputError
from conveyor.extractors.isolation import Deadline, sandbox_for
from conveyor.extractors.spooling import local_document
from conveyor.pipelines.codescan import read_targets
from tests.drawings import targets_csv, targets_xlsx
from tests.sheets import Grid, csv_bytes, ods_bytes, xls_bytes, xlsx_bytes

TARGETS = ["HOLE-123", "hole 7", "HOLE\u20130042", "", "HOLE-123", "Hole-9"]
NORMAL = ["HOLE-123", "HOLE-7", "HOLE-0042", "HOLE-9"]
LIMITS = Limits(parse_workers=1)


def targets_from(path: Path, column: str | None = None) -> list[str]:
    document = local_document(path)
    return read_targets(str(path), document.media_type, document.filename, LIMITS, column=column)


def test_read_targets_runs_in_the_parser_sandbox(tmp_path: Path) -> None:
    path = write(tmp_path, "targets.xlsx", targets_xlsx(TARGETS))
    document = local_document(path)
    found: list[str] = sandbox_for(LIMITS).run(
        functools.partial(read_targets, column="B"),
        str(path),
        document.media_type,
        document.filename,
        LIMITS,
        deadline=Deadline.start(60),
        subject=document.filename,
    )
    assert found == NORMAL


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "make"),
    [("targets.xlsx", targets_xlsx), ("targets.csv", targets_csv)],
)
def test_targets_by_header_normalised_in_order_without_blanks_or_repeats(
    tmp_path: Path, name: str, make: Callable[..., bytes]
) -> None:
    assert targets_from(write(tmp_path, name, make(TARGETS))) == NORMAL


WITH_A_TITLE: Grid = [
    ["Drilling schedule, unit four"],
    [],
    ["ID", "Description", "Hole code", "Notes"],
    [1, "flange", "HOLE-123", None],
    [2, "nozzle", "hole 7", "check"],
    [3, None, None, None],
    [4, "vent", 4711, None],
]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("list.xlsx", xlsx_bytes({"Schedule": WITH_A_TITLE})),
        ("list.xls", xls_bytes({"Schedule": WITH_A_TITLE})),
        ("list.ods", ods_bytes({"Schedule": WITH_A_TITLE})),
        ("list.csv", csv_bytes(WITH_A_TITLE)),
    ],
)
def test_the_most_specific_header_wins_below_a_title_in_every_format(
    tmp_path: Path, name: str, data: bytes
) -> None:
    # "Hole code" beats "ID"; a number is a code as the sheet shows it (4711, not 4711.0).
    assert targets_from(write(tmp_path, name, data)) == ["HOLE-123", "HOLE-7", "4711"]


def test_targets_by_header_text_given(tmp_path: Path) -> None:
    grid: Grid = [["Drilling ref", "Hole code"], ["HOLE-1", "OTHER-1"], ["HOLE-2", "OTHER-2"]]
    path = write(tmp_path, "refs.xlsx", xlsx_bytes({"Sheet1": grid}))
    assert targets_from(path, column="drilling  REF") == ["HOLE-1", "HOLE-2"]


def test_targets_by_column_letter(tmp_path: Path) -> None:
    path = write(tmp_path, "targets.xlsx", targets_xlsx(TARGETS))
    assert targets_from(path, column="B") == NORMAL
    assert targets_from(path, column="b") == NORMAL


def test_a_column_letter_without_a_known_header_skips_a_header_with_no_digit(tmp_path: Path) -> None:
    grid: Grid = [["Item", "Drilling ref"], ["one", "HOLE-1"], ["two", "HOLE-2"]]
    path = write(tmp_path, "refs.csv", csv_bytes(grid))
    assert targets_from(path, column="B") == ["HOLE-1", "HOLE-2"]
    headless: Grid = [["HOLE-1"], ["HOLE-2"]]
    assert targets_from(write(tmp_path, "bare.csv", csv_bytes(headless)), column="A") == ["HOLE-1", "HOLE-2"]


def test_no_code_header_names_the_file_and_the_headers_seen(tmp_path: Path) -> None:
    grid: Grid = [["Drilling ref", "Depth"], ["HOLE-1", 40]]
    path = write(tmp_path, "schedule.xlsx", xlsx_bytes({"Holes": grid}))
    with pytest.raises(InputError) as raised:
        targets_from(path)
    message = str(raised.value)
    assert message.startswith("schedule.xlsx: no column of codes found")
    assert "'Drilling ref'" in message
    assert "'Depth'" in message
    assert "'column'" in message


def test_a_header_given_that_is_not_there_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "targets.xlsx", targets_xlsx(TARGETS))
    with pytest.raises(InputError, match=r"^targets\.xlsx: no column of codes found.*'Hole code'"):
        targets_from(path, column="Tag number")


def test_an_empty_column_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "targets.xlsx", targets_xlsx(TARGETS))
    with pytest.raises(InputError, match=r"^targets\.xlsx: column D is empty"):
        targets_from(path, column="D")
    with pytest.raises(InputError, match=r"^empty\.csv: column B of sheet .* holds no codes"):
        targets_from(write(tmp_path, "empty.csv", targets_csv([])))


def test_a_file_that_is_not_a_spreadsheet_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "targets.xlsx", b"%PDF-1.7\nnot a workbook\n")
    with pytest.raises(InputError, match=r"^targets\.xlsx: not a spreadsheet; the content is a PDF"):
        targets_from(path)
