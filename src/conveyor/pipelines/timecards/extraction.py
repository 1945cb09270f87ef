"""Entries from the tables ``layout`` found: one worked interval per data row, every value traced
back to its cell, doubtful rows marked with a lower confidence.

Blank or merged employee and date cells carry the value from the row above (clock exports print
a name once per block); totals rows and blank rows are skipped; a row whose punches and hours column
disagree keeps the punches and loses confidence.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from conveyor.extractors.spreadsheet import Sheet, column_letters
from conveyor.pipelines.timecards import values
from conveyor.pipelines.timecards.grid import find_grids, grid_entries, outside_grids
from conveyor.pipelines.timecards.layout import TOTALS, UNKNOWN_EMPLOYEE, Role, Table, find_tables
from conveyor.pipelines.timecards.model import Entry
from conveyor.pipelines.timecards.punches import at, read_breaks, read_duration, read_time

# Punches and an hours column may differ by rounding to the quarter hour; beyond this they disagree.
HOURS_TOLERANCE: Final = Decimal("0.26")


@dataclass(slots=True)
class _Carried:
    employee: str | None = None
    date: dt.date | None = None


def extract_entries(sheets: Sequence[Sheet], *, year: int | None = None) -> list[Entry]:
    """Every entry of every table of every sheet, in sheet and row order."""
    inferred = year or infer_year(sheets)
    entries: list[Entry] = []
    for sheet in sheets:
        grids = find_grids(sheet.rows, year=inferred)
        for table in outside_grids(find_tables(sheet.rows), grids):
            entries.extend(_table_entries(sheet, table, inferred))
        entries.extend(grid_entries(sheet, year=inferred, grids=grids))
    return entries


def infer_year(sheets: Sequence[Sheet]) -> int | None:
    """The most common year among the full dates on the sheets (for dates written without one)."""
    years: Counter[int] = Counter()
    for sheet in sheets:
        for row in sheet.rows:
            for value in row:
                if isinstance(value, dt.date):
                    years[value.year] += 1
                elif isinstance(value, str) and (
                    parsed := values.parse_date(value, year=None, dayfirst=None)
                ):
                    years[parsed[0].year] += 1
    return years.most_common(1)[0][0] if years else None


def _table_entries(sheet: Sheet, table: Table, year: int | None) -> Iterator[Entry]:
    carried = _Carried(employee=table.employee)
    for index in range(table.first_row, table.last_row + 1):
        row = sheet.rows[index]
        if _is_blank(row) or _is_totals(row, table):
            continue
        entry = _entry(sheet, table, index, row, carried, year)
        if entry is not None:
            yield entry


def _cell(row: Sequence[object], table: Table, role: Role) -> object:
    column = table.columns.get(role)
    if column is None or column >= len(row):
        return None
    value = row[column]
    return None if isinstance(value, str) and not value.strip() else value


def _cells(row: Sequence[object], table: Table, roles: tuple[Role, ...]) -> dict[Role, object]:
    return {role: _cell(row, table, role) for role in roles}


def _is_blank(row: Sequence[object]) -> bool:
    return all(value is None or (isinstance(value, str) and not value.strip()) for value in row)


def _is_totals(row: Sequence[object], table: Table) -> bool:
    first_columns = sorted(table.columns.values())[:2]
    labels = [row[column] for column in first_columns if column < len(row)]
    if any(isinstance(value, str) and TOTALS.match(value) for value in labels):
        return True
    return (
        _cell(row, table, "start") is None
        and _cell(row, table, "end") is None
        and (_cell(row, table, "date") is None and _cell(row, table, "start_date") is None)
    )


def _entry(
    sheet: Sheet, table: Table, index: int, row: Sequence[object], carried: _Carried, year: int | None
) -> Entry | None:
    working: tuple[Role, ...] = ("date", "start_date", "start", "end", "hours")
    if all(_cell(row, table, role) is None for role in working):
        return None  # a label or note between tables ("Employee: Grace Hopper")
    confidences: list[float] = []
    employee = _text(_cell(row, table, "employee")) or _text(_cell(row, table, "employee_id"))
    if employee:
        carried.employee = employee
    else:
        confidences.append(0.9 if carried.employee else 0.3)
    date = _date(row, table, year, confidences)
    punched: tuple[Role, ...] = ("start", "end", "hours")
    if date is None and all(_cell(row, table, role) is None for role in punched):
        return None  # text in the date column and nothing else: a label, not a day worked
    if date is not None:
        carried.date = date
    elif carried.date is not None:
        date = carried.date
        confidences.append(0.8)
    else:
        return None
    start, end = _punches(row, table, date, confidences)
    breaks = read_breaks(_cells(row, table, ("break_start", "break_end", "break")), start, confidences)
    sheet_hours = read_duration(_cell(row, table, "hours"), confidences)
    if start is not None and end is not None:
        hours = values.worked_hours(start, end, breaks)
        if sheet_hours is not None and abs(sheet_hours - hours) > HOURS_TOLERANCE:
            confidences.append(0.5)
    else:
        hours = sheet_hours if sheet_hours is not None else Decimal(0)
    rate_cell = values.parse_money(_cell(row, table, "rate"))
    if rate_cell is not None:
        confidences.append(rate_cell[1])
    first, last = min(table.columns.values()), max(table.columns.values())
    return Entry(
        employee=carried.employee or UNKNOWN_EMPLOYEE,
        date=date,
        start=start,
        end=end,
        hours=hours,
        rate=rate_cell[0] if rate_cell else None,
        source=f"{sheet.ref(index, first)}:{column_letters(last)}{index + 1}",
        confidence=min([1.0, *confidences]),
        break_hours=breaks
        if isinstance(breaks, Decimal)
        else sum((values.worked_hours(b_start, b_end, Decimal(0)) for b_start, b_end in breaks), Decimal(0)),
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return text.strip() or None


def _date(row: Sequence[object], table: Table, year: int | None, confidences: list[float]) -> dt.date | None:
    roles: tuple[Role, ...] = ("date", "start_date")
    for role in roles:
        value = _cell(row, table, role)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            return value.date()
        parsed = values.parse_date(value, year=year, dayfirst=None)
        if parsed is not None:
            confidences.append(parsed[1])
            return parsed[0]
    return None


def _punches(
    row: Sequence[object], table: Table, date: dt.date, confidences: list[float]
) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = read_time(_cell(row, table, "start"), confidences)
    end = read_time(_cell(row, table, "end"), confidences)
    end_date = _cell(row, table, "end_date")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return start, end
    if start is None or end is None:
        return at(date, start), at(date, end)
    start_time = start.time() if isinstance(start, dt.datetime) else start
    end_time = end.time() if isinstance(end, dt.datetime) else end
    if end_date is not None and (parsed := values.parse_date(end_date, year=date.year, dayfirst=None)):
        return dt.datetime.combine(date, start_time), dt.datetime.combine(parsed[0], end_time)
    return values.combine(date, start_time, end_time)
