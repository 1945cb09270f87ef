"""Weekly grids (a column per day) read into entries from real xlsx files generated here: punch grids
with In/Out/Lunch rows, hours grids with a row per employee, dates from the header or a week label."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from conveyor.content import Limits
from conveyor.extractors.spooling import local_document
from conveyor.extractors.spreadsheet import Sheet, read_workbook
from conveyor.pipelines.timecards.extraction import extract_entries
from conveyor.pipelines.timecards.grid import find_grids, grid_entries, outside_grids, weekday_of
from conveyor.pipelines.timecards.layout import find_tables
from conveyor.pipelines.timecards.model import Entry
from tests.documents import write
from tests.sheets import xlsx_bytes

Grid = list[list[Any]]
MONDAY = dt.date(2024, 3, 4)
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def sheet_of(tmp_path: Path, grid: Grid) -> Sheet:
    path = write(tmp_path / "week.xlsx", xlsx_bytes({"Sheet1": grid}))
    document = local_document(path)
    [sheet] = read_workbook(str(path), document.media_type, path.name, Limits()).sheets
    return sheet


def day(offset: int) -> dt.date:
    return MONDAY + dt.timedelta(days=offset)


def at(offset: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day(offset), dt.time(hour, minute))


PUNCH_GRID: Grid = [
    ["Employee: Ada Lovelace"],
    ["", *(f"{name} {3}/{4 + offset}" for offset, name in enumerate(DAYS))],
    ["In", "8:00", "8:00", None, "22:00", "9:00", None, None],
    ["Out", "17:00", "16:30", None, "6:30", "13:00", None, None],
    ["Lunch", "0:30", "0:30", None, "0:30", None, None, None],
    ["Total", 8.5, 8, None, 8, 4, None, None],
]


def test_a_punch_grid_gives_one_entry_per_worked_day(tmp_path: Path) -> None:
    entries = grid_entries(sheet_of(tmp_path, PUNCH_GRID), year=2024)
    assert entries == [
        Entry(
            "Ada Lovelace",
            day(0),
            at(0, 8),
            at(0, 17),
            Decimal("8.5"),
            None,
            "Sheet1!B3:B5",
            1.0,
            Decimal("0.5"),
        ),
        Entry(
            "Ada Lovelace",
            day(1),
            at(1, 8),
            at(1, 16, 30),
            Decimal(8),
            None,
            "Sheet1!C3:C5",
            1.0,
            Decimal("0.5"),
        ),
        Entry(
            "Ada Lovelace",
            day(3),
            at(3, 22),
            at(4, 6, 30),
            Decimal(8),
            None,
            "Sheet1!E3:E5",
            1.0,
            Decimal("0.5"),
        ),
        Entry("Ada Lovelace", day(4), at(4, 9), at(4, 13), Decimal(4), None, "Sheet1!F3:F5", 1.0),
    ]


def test_extract_entries_reads_grids_once_beside_row_per_day_tables(tmp_path: Path) -> None:
    sheet = sheet_of(tmp_path, PUNCH_GRID)
    assert extract_entries([sheet], year=2024) == grid_entries(sheet, year=2024)
    assert len(extract_entries([sheet], year=2024)) == 4


def test_blocks_per_employee_with_times_as_excel_values(tmp_path: Path) -> None:
    grid: Grid = [
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
    ada, grace = grid_entries(sheet_of(tmp_path, grid), year=None)
    assert ada == Entry(
        "Ada", MONDAY, at(0, 8), at(0, 17), Decimal("8.25"), None, "Sheet1!B4:B7", 0.8, Decimal("0.75")
    )
    # 3/10/2024 reads both ways (10 March, 3 October): the label's own doubt is carried over
    assert grace == Entry("Grace", day(6), at(6, 23), at(7, 7), Decimal(8), None, "Sheet1!H12:H13", 0.6)


def test_an_hours_grid_with_a_week_label_and_a_totals_row_and_column(tmp_path: Path) -> None:
    grid: Grid = [
        ["Week of March 4, 2024"],
        ["Name", *DAYS, "Total", "Rate"],
        ["Ada", 8, 8, 7.5, None, "off", 0, None, 23.5, 15],
        ["Grace", None, None, None, None, None, "4:30", 3, 7.5, "$12.50"],
        ["Total", 8, 8, 7.5, None, None, 4.5, 3, 31],
    ]
    sheet = sheet_of(tmp_path, grid)
    entries = grid_entries(sheet, year=None)
    rate_ada, rate_grace = Decimal(15), Decimal("12.50")
    assert entries == [
        Entry("Ada", day(0), None, None, Decimal(8), rate_ada, "Sheet1!B3", 0.8),
        Entry("Ada", day(1), None, None, Decimal(8), rate_ada, "Sheet1!C3", 0.8),
        Entry("Ada", day(2), None, None, Decimal("7.5"), rate_ada, "Sheet1!D3", 0.8),
        Entry("Grace", day(5), None, None, Decimal("4.5"), rate_grace, "Sheet1!G4", 0.8),
        Entry("Grace", day(6), None, None, Decimal(3), rate_grace, "Sheet1!H4", 0.8),
    ]
    # "Name" and "Total" make a find_tables header; extraction must not read those rows again.
    assert [table.header_row for table in find_tables(sheet.rows)] == [1]
    assert outside_grids(find_tables(sheet.rows), find_grids(sheet.rows, year=None)) == []
    assert extract_entries([sheet]) == entries


def test_dates_in_the_header_need_no_label_and_anchor_bare_weekdays(tmp_path: Path) -> None:
    grid: Grid = [
        ["Name", "Mon 3/4/2024", "Tue", "Wed", "Thu", "Fri"],
        ["Ada", 8, None, None, None, 6],
    ]
    monday, friday = grid_entries(sheet_of(tmp_path, grid), year=None)
    assert (monday.date, monday.confidence) == (MONDAY, 1.0)
    assert (friday.date, friday.confidence, friday.hours) == (day(4), 0.8, Decimal(6))


def test_header_cells_that_are_dates(tmp_path: Path) -> None:
    grid: Grid = [["Employee", *(day(offset) for offset in range(7))], ["Ada", None, None, 7]]
    [entry] = grid_entries(sheet_of(tmp_path, grid), year=None)
    assert (entry.employee, entry.date, entry.hours, entry.confidence) == ("Ada", day(2), Decimal(7), 1.0)


def test_days_without_a_date_anywhere_give_no_entries(tmp_path: Path) -> None:
    grid: Grid = [["Name", *DAYS], ["Ada", 8, 8, 8, 8, 8, None, None]]
    sheet = sheet_of(tmp_path, grid)
    [found] = find_grids(sheet.rows, year=None)
    assert [column.date for column in found.days] == [None] * 7
    assert grid_entries(sheet, year=None) == []


def test_unreadable_hours_and_a_missing_employee_lower_the_confidence(tmp_path: Path) -> None:
    grid: Grid = [["Week of 3/4/2024"], ["", *DAYS], ["", 8, "eight"]]
    first, second = grid_entries(sheet_of(tmp_path, grid), year=None)
    assert (first.employee, first.hours, first.confidence) == ("(unknown)", Decimal(8), 0.3)
    assert (second.hours, second.confidence) == (Decimal(0), 0.3)


def test_punches_disagreeing_with_an_hours_row_lower_the_confidence(tmp_path: Path) -> None:
    grid: Grid = [
        ["Name: Ada"],
        ["", "Mon 3/4/2024", "Tue 3/5/2024", "Wed 3/6/2024"],
        ["Clock In", "8:00", "8:00", None],
        ["Clock Out", "17:00", None, None],
        ["Hours", 4, None, 6],
    ]
    punched, missing, hours_only = grid_entries(sheet_of(tmp_path, grid), year=None)
    assert (punched.hours, punched.confidence) == (Decimal(9), 0.5)
    assert (missing.start, missing.end, missing.hours) == (at(1, 8), None, Decimal(0))
    assert (hours_only.start, hours_only.hours, hours_only.source) == (None, Decimal(6), "Sheet1!D3:D5")


def test_a_row_per_day_sheet_is_not_a_grid(tmp_path: Path) -> None:
    grid: Grid = [
        ["Employee", "Date", "Day", "In", "Out"],
        ["Ada", MONDAY, "Mon", "8:00", "16:00"],
        ["Ada", day(1), "Tue", "8:00", "16:00"],
        ["Ada", day(2), "Wed", "8:00", "16:00"],
    ]
    sheet = sheet_of(tmp_path, grid)
    assert find_grids(sheet.rows, year=None) == []
    assert [entry.source for entry in extract_entries([sheet])] == [
        "Sheet1!A2:E2",
        "Sheet1!A3:E3",
        "Sheet1!A4:E4",
    ]


def test_a_table_above_a_grid_stops_where_the_grid_starts(tmp_path: Path) -> None:
    grid: Grid = [
        ["Employee", "Date", "In", "Out"],
        ["Ada", MONDAY, "8:00", "16:00"],
        [],
        ["Week of 3/4/2024"],
        ["Name", *DAYS],
        ["Grace", 5],
    ]
    table, grace = extract_entries([sheet_of(tmp_path, grid)])
    assert (table.employee, table.hours, table.source) == ("Ada", Decimal(8), "Sheet1!A2:D2")
    assert (grace.employee, grace.date, grace.hours, grace.source) == (
        "Grace",
        MONDAY,
        Decimal(5),
        "Sheet1!B6",
    )


def test_weekday_names() -> None:
    assert [weekday_of(text) for text in ("Mon", "Tuesday 3/5", "3/6 (Wed)", "Thurs.", "Total")] == [
        0,
        1,
        2,
        3,
        None,
    ]
    assert weekday_of(dt.datetime(2024, 3, 10)) == 6
    assert weekday_of(dt.datetime(2024, 3, 10, 8)) is None, "a punch, not a day"
