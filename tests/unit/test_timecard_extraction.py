"""Entries extracted from timecard sheets in the layouts clock systems and people write, read from
real xlsx/xls/ods/csv files generated here, every value traced to its cell."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conveyor.content import Limits
from conveyor.extractors.spooling import local_document
from conveyor.extractors.spreadsheet import Sheet, read_workbook
from conveyor.pipelines.timecards.extraction import extract_entries
from conveyor.pipelines.timecards.model import Entry
from tests.documents import write
from tests.sheets import csv_bytes, ods_bytes, xls_bytes, xlsx_bytes

Grid = list[list[Any]]
MONDAY = dt.date(2024, 3, 4)


def read(path: Path) -> list[Sheet]:
    document = local_document(path)
    return read_workbook(str(path), document.media_type, path.name, Limits()).sheets


def entries_of(tmp_path: Path, grid: Grid, suffix: str = ".xlsx", **kwargs: Any) -> list[Entry]:
    writers: dict[str, Callable[[], bytes]] = {
        ".xlsx": lambda: xlsx_bytes({"Hours": grid}),
        ".xls": lambda: xls_bytes({"Hours": grid}),
        ".ods": lambda: ods_bytes({"Hours": grid}),
        ".csv": lambda: csv_bytes([[_text(value) for value in row] for row in grid]),
    }
    path = write(tmp_path / f"card{suffix}", writers[suffix]())
    return extract_entries(read(path), **kwargs)


def _text(value: object) -> object:
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


ROW_PER_DAY: Grid = [
    ["ACME Corp - timesheet"],
    [],
    ["Employee", "Date", "Time In", "Lunch Out", "Lunch In", "Time Out", "Hours", "Rate"],
    ["Ada Lovelace", MONDAY, dt.time(8), dt.time(12), dt.time(12, 30), dt.time(17), 8.5, 12],
    [None, MONDAY + dt.timedelta(days=1), dt.time(8), None, None, dt.time(16, 30), 8.5, 12],
    ["Total", None, None, None, None, None, 17, None],
]


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods", ".csv"])
def test_one_row_per_day_with_lunch_carry_forward_and_totals(tmp_path: Path, suffix: str) -> None:
    first, second = entries_of(tmp_path, ROW_PER_DAY, suffix)
    assert (first.employee, first.date) == ("Ada Lovelace", MONDAY)
    assert (first.start, first.end) == (dt.datetime(2024, 3, 4, 8), dt.datetime(2024, 3, 4, 17))
    assert first.hours == Decimal("8.5") and first.break_hours == Decimal("0.5")
    assert first.rate == Decimal(12)
    sheet = "card" if suffix == ".csv" else "Hours"  # a CSV's one sheet is named after the file
    assert first.source == f"{sheet}!A4:H4"
    assert second.employee == "Ada Lovelace", "carried from the row above"
    assert second.hours == Decimal("8.5")
    assert second.source == f"{sheet}!A5:H5"


def test_a_night_shift_ends_the_next_day(tmp_path: Path) -> None:
    grid: Grid = [["Name", "Date", "In", "Out"], ["Grace", MONDAY, "10:00 PM", "6:30 AM"]]
    [entry] = entries_of(tmp_path, grid)
    assert entry.start == dt.datetime(2024, 3, 4, 22)
    assert entry.end == dt.datetime(2024, 3, 5, 6, 30)
    assert entry.hours == Decimal("8.5")


def test_blocks_per_employee_with_the_name_above(tmp_path: Path) -> None:
    grid: Grid = [
        ["Employee: Ada Lovelace"],
        ["Date", "In", "Out"],
        [MONDAY, "8a", "4:30p"],
        [],
        ["Employee: Grace Hopper"],
        ["Date", "In", "Out"],
        [MONDAY, "0900", "1730"],
    ]
    ada, grace = entries_of(tmp_path, grid)
    assert (ada.employee, ada.hours) == ("Ada Lovelace", Decimal("8.5"))
    assert (grace.employee, grace.hours) == ("Grace Hopper", Decimal("8.5"))


def test_a_time_tracker_export(tmp_path: Path) -> None:
    grid: Grid = [
        ["User", "Email", "Start date", "Start time", "End date", "End time", "Duration (h)"],
        ["Ada", "ada@example.com", "2024-03-04", "23:00:00", "2024-03-05", "01:30:00", "02:30:00"],
    ]
    [entry] = entries_of(tmp_path, grid, ".csv")
    assert (entry.start, entry.end) == (dt.datetime(2024, 3, 4, 23), dt.datetime(2024, 3, 5, 1, 30))
    assert entry.hours == Decimal("2.5")
    assert entry.confidence > 0.8


def test_hours_only_with_decimal_commas_and_dates_without_a_year(tmp_path: Path) -> None:
    grid: Grid = [["Worker", "Day", "Hours"], ["Ada", "3/4", "7,5"], ["Ada", "3/5", "8"]]
    first, second = entries_of(tmp_path, grid, ".csv", year=2024)
    assert (first.date, first.hours, first.start) == (MONDAY, Decimal("7.5"), None)
    assert second.date == MONDAY + dt.timedelta(days=1)


def test_punches_that_disagree_with_the_hours_column_lower_the_confidence(tmp_path: Path) -> None:
    grid: Grid = [["Employee", "Date", "In", "Out", "Hours"], ["Ada", MONDAY, "8:00", "17:00", 4]]
    [entry] = entries_of(tmp_path, grid)
    assert entry.hours == Decimal(9), "the punches win"
    assert entry.confidence <= 0.5


def test_a_missing_punch_gives_an_entry_without_hours(tmp_path: Path) -> None:
    grid: Grid = [["Employee", "Date", "In", "Out"], ["Ada", MONDAY, "8:00", None]]
    [entry] = entries_of(tmp_path, grid)
    assert entry.start == dt.datetime(2024, 3, 4, 8) and entry.end is None
    assert entry.hours == 0
