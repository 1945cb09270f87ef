"""The weekly grid layouts of test_timecard_grid read from every format a timecard arrives in: each
grid is written as xlsx, xls, ods and csv and must give the same entries, cell for cell.

The only difference allowed is the sheet in each source reference: a workbook's sheet keeps its
name, while a CSV has one sheet, named after the file (``card.csv`` gives ``card!B3``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from conveyor.extractors.spreadsheet import sheet_prefix
from conveyor.pipelines.timecards.model import Entry
from tests.unit.test_timecard_extraction import Grid, entries_of, read
from tests.unit.test_timecard_grid import DAYS, MONDAY, PUNCH_GRID, at, day

SUFFIXES = [".xlsx", ".xls", ".ods", ".csv"]
WORKBOOK_SHEET = "Hours"  # the sheet entries_of writes into a workbook
FILE_STEM = "card"  # the file name entries_of writes


def in_format(suffix: str, expected: list[Entry]) -> list[Entry]:
    """``expected`` (sources written as bare cells, ``B3:B5``) with the sheet prefix of ``suffix``."""
    sheet = FILE_STEM if suffix == ".csv" else WORKBOOK_SHEET
    return [dataclasses.replace(entry, source=sheet_prefix(sheet) + entry.source) for entry in expected]


def check_sheet_name(tmp_path: Path, suffix: str) -> None:
    """The rule ``in_format`` relies on, read back from the file written: one sheet, named as said."""
    [sheet] = read(tmp_path / f"{FILE_STEM}{suffix}")
    assert sheet.name == (FILE_STEM if suffix == ".csv" else WORKBOOK_SHEET)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_weekly_punch_grid(tmp_path: Path, suffix: str) -> None:
    entries = entries_of(tmp_path, PUNCH_GRID, suffix, year=2024)
    check_sheet_name(tmp_path, suffix)
    half = Decimal("0.5")
    assert entries == in_format(
        suffix,
        [
            Entry("Ada Lovelace", day(0), at(0, 8), at(0, 17), Decimal("8.5"), None, "B3:B5", 1.0, half),
            Entry("Ada Lovelace", day(1), at(1, 8), at(1, 16, 30), Decimal(8), None, "C3:C5", 1.0, half),
            # Thursday's night shift ends on Friday morning
            Entry("Ada Lovelace", day(3), at(3, 22), at(4, 6, 30), Decimal(8), None, "E3:E5", 1.0, half),
            Entry("Ada Lovelace", day(4), at(4, 9), at(4, 13), Decimal(4), None, "F3:F5", 1.0),
        ],
    )


HOURS_GRID: Grid = [
    ["Week of March 4, 2024"],
    ["Name", *DAYS, "Total", "Rate"],
    ["Ada", 8, 8, 7.5, None, "off", 0, None, 23.5, 15],
    ["Grace", None, None, None, None, None, "4:30", 3, 7.5, "$12.50"],
    ["Total", 8, 8, 7.5, None, None, 4.5, 3, 31],
]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_hours_grid_with_a_week_label_and_a_totals_row_and_column(tmp_path: Path, suffix: str) -> None:
    entries = entries_of(tmp_path, HOURS_GRID, suffix)
    check_sheet_name(tmp_path, suffix)
    ada, grace = Decimal(15), Decimal("12.50")
    # "off", 0 and the totals row and column give no entries; weekdays are placed in the labelled week
    assert entries == in_format(
        suffix,
        [
            Entry("Ada", day(0), None, None, Decimal(8), ada, "B3", 0.8),
            Entry("Ada", day(1), None, None, Decimal(8), ada, "C3", 0.8),
            Entry("Ada", day(2), None, None, Decimal("7.5"), ada, "D3", 0.8),
            Entry("Grace", day(5), None, None, Decimal("4.5"), grace, "G4", 0.8),
            Entry("Grace", day(6), None, None, Decimal(3), grace, "H4", 0.8),
        ],
    )


BLOCKS_WITH_EXCEL_TIMES: Grid = [
    ["Employee", "Ada"],
    ["Week of", MONDAY],
    ["", *DAYS, "Total"],
    ["Time In", dt.time(8), None, None, None, None, None, None, 8],
    ["Lunch Out", dt.time(12), None, None, None, None, None, None, None],
    ["Lunch In", dt.time(12, 45), None, None, None, None, None, None, None],
    ["Time Out", dt.time(17), None, None, None, None, None, None, None],
    [],
    ["Employee: Grace"],
    ["Week ending 3/10/2024"],
    ["", *DAYS],
    ["In", None, None, None, None, None, None, "23:00"],
    ["Out", None, None, None, None, None, None, "7:00"],
]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_block_per_employee_with_excel_time_values(tmp_path: Path, suffix: str) -> None:
    entries = entries_of(tmp_path, BLOCKS_WITH_EXCEL_TIMES, suffix)
    check_sheet_name(tmp_path, suffix)
    assert entries == in_format(
        suffix,
        [
            Entry("Ada", MONDAY, at(0, 8), at(0, 17), Decimal("8.25"), None, "B4:B7", 0.8, Decimal("0.75")),
            # "3/10/2024" reads both ways (10 March, 3 October): the label's doubt is carried over
            Entry("Grace", day(6), at(6, 23), at(7, 7), Decimal(8), None, "H12:H13", 0.6),
        ],
    )


DATES_IN_HEADER: Grid = [["Employee", *(day(offset) for offset in range(7))], ["Ada", None, None, 7]]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_header_cells_that_are_dates(tmp_path: Path, suffix: str) -> None:
    entries = entries_of(tmp_path, DATES_IN_HEADER, suffix)
    check_sheet_name(tmp_path, suffix)
    assert entries == in_format(suffix, [Entry("Ada", day(2), None, None, Decimal(7), None, "D2", 1.0)])


def test_a_csv_header_of_dates_as_excel_writes_them(tmp_path: Path) -> None:
    """Excel saves a date cell to CSV as it shows it (``3/4/2024``), not as ISO."""
    grid: Grid = [["Employee", *(f"3/{4 + offset}/2024" for offset in range(7))], ["Ada", None, None, 7]]
    [entry] = entries_of(tmp_path, grid, ".csv")
    assert (entry.employee, entry.date, entry.hours, entry.source) == ("Ada", day(2), Decimal(7), "card!D2")
    assert entry.confidence < 1.0, "3/6/2024 also reads as 3 June"


def test_the_formats_are_compared_on_sheets_that_differ_in_type(tmp_path: Path) -> None:
    """The comparison above means something only if the formats really differ: the workbook holds
    times and dates as values, the CSV the same cells as text."""
    entries_of(tmp_path, BLOCKS_WITH_EXCEL_TIMES, ".xlsx")
    entries_of(tmp_path, BLOCKS_WITH_EXCEL_TIMES, ".csv")
    [workbook] = read(tmp_path / f"{FILE_STEM}.xlsx")
    [text] = read(tmp_path / f"{FILE_STEM}.csv")
    assert (workbook.value(1, 1), workbook.value(3, 1)) == (MONDAY, dt.time(8))
    assert (text.value(1, 1), text.value(3, 1)) == ("2024-03-04", "08:00")
