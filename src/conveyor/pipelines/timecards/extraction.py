"""Entries from the tables ``layout`` found: one worked interval per data row, every value traced
back to its cell, doubtful rows marked with a lower confidence.

Blank or merged employee and date cells carry the value from the row above (clock exports print
a name once per block); totals rows and blank rows are skipped; a row whose punches and hours column
disagree keeps the punches and loses confidence.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from conveyor.extractors.cells import sheet_prefix
from conveyor.extractors.spreadsheet import Sheet, column_letters
from conveyor.pipelines.timecards import values
from conveyor.pipelines.timecards.grid import find_grids, grid_entries, outside_grids
from conveyor.pipelines.timecards.layout import TOTALS, UNKNOWN_EMPLOYEE, Role, Table, find_tables
from conveyor.pipelines.timecards.model import Entry
from conveyor.pipelines.timecards.punches import at, read_breaks, read_duration, read_time
from conveyor.pipelines.timecards.reading import CACHED_CELLS

# Punches and an hours column may differ by rounding to the quarter hour; beyond this they disagree.
HOURS_TOLERANCE: Final = Decimal("0.26")
YEAR_SAMPLE: Final = 5_000


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
    """The most common year among the full dates on the sheets (for dates written without one).

    The first YEAR_SAMPLE dates decide: a sheet's dates span a pay period or a few, and counting a
    hundred thousand more would only confirm it.
    """
    years: Counter[int] = Counter()
    counted = 0
    for sheet in sheets:
        for row in sheet.rows:
            for value in row:
                if value is None:
                    continue
                if isinstance(value, dt.date):
                    years[value.year] += 1
                elif isinstance(value, str) and (
                    parsed := values.parse_date(value, year=None, dayfirst=None)
                ):
                    years[parsed[0].year] += 1
                else:
                    continue
                counted += 1
                if counted >= YEAR_SAMPLE:
                    return years.most_common(1)[0][0]
    return years.most_common(1)[0][0] if years else None


def _table_entries(sheet: Sheet, table: Table, year: int | None) -> Iterator[Entry]:
    carried = _Carried(employee=table.employee)
    positions = tuple(table.columns.items())
    labels = sorted(table.columns.values())[:2]
    first, last = min(table.columns.values()), max(table.columns.values())
    prefix, first_letters, last_letters = (
        sheet_prefix(sheet.name),
        column_letters(first),
        column_letters(last),
    )
    for index in range(table.first_row, table.last_row + 1):
        row = sheet.rows[index]
        cells = _cells(row, positions)
        if not cells or _is_totals(row, cells, labels):
            continue
        entry = _entry(cells, carried, year, f"{prefix}{first_letters}{index + 1}:{last_letters}{index + 1}")
        if entry is not None:
            yield entry


def _cells(row: Sequence[object], positions: tuple[tuple[Role, int], ...]) -> dict[Role, object]:
    """The row's value of each role the table has; blank cells (None, spaces) left out."""
    width = len(row)
    cells: dict[Role, object] = {}
    for role, column in positions:
        if column < width:
            value = row[column]
            if value is not None and not (value.__class__ is str and not value.strip()):
                cells[role] = value
    return cells


def _is_totals(row: Sequence[object], cells: dict[Role, object], labels: list[int]) -> bool:
    width = len(row)
    for column in labels:
        if column < width and isinstance(value := row[column], str) and TOTALS.match(value):
            return True
    return not ("start" in cells or "end" in cells or "date" in cells or "start_date" in cells)


_NO_BREAK: Final = Decimal(0)
_WORKING: Final[tuple[Role, ...]] = ("date", "start_date", "start", "end", "hours")
_PUNCHED: Final[tuple[Role, ...]] = ("start", "end", "hours")


def _entry(cells: dict[Role, object], carried: _Carried, year: int | None, source: str) -> Entry | None:
    if cells.keys().isdisjoint(_WORKING):
        return None  # a label or note between tables ("Employee: Grace Hopper")
    confidences: list[float] = []
    employee = _text(cells.get("employee")) or _text(cells.get("employee_id"))
    if employee:
        carried.employee = employee
    else:
        confidences.append(0.9 if carried.employee else 0.3)
    date = _date(cells, year, confidences)
    if date is None and cells.keys().isdisjoint(_PUNCHED):
        return None  # text in the date column and nothing else: a label, not a day worked
    if date is not None:
        carried.date = date
    elif carried.date is not None:
        date = carried.date
        confidences.append(0.8)
    else:
        return None
    start, end = _punches(cells, date, confidences)
    has_breaks = "break_start" in cells or "break_end" in cells or "break" in cells
    breaks = read_breaks(cells, start, confidences) if has_breaks else _NO_BREAK
    sheet_hours = read_duration(cells.get("hours"), confidences)
    if start is not None and end is not None:
        hours = values.worked_hours(start, end, breaks)
        if sheet_hours is not None and abs(sheet_hours - hours) > HOURS_TOLERANCE:
            confidences.append(0.5)
    else:
        hours = sheet_hours if sheet_hours is not None else Decimal(0)
    rate_cell = values.parse_money(cells.get("rate"))
    if rate_cell is not None:
        confidences.append(rate_cell[1])
    return Entry(
        employee=carried.employee or UNKNOWN_EMPLOYEE,
        date=date,
        start=start,
        end=end,
        hours=hours,
        rate=rate_cell[0] if rate_cell else None,
        source=source,
        confidence=min(confidences, default=1.0),
        break_hours=breaks
        if isinstance(breaks, Decimal)
        else sum((values.worked_hours(b_start, b_end, Decimal(0)) for b_start, b_end in breaks), Decimal(0)),
    )


@functools.lru_cache(maxsize=CACHED_CELLS, typed=True)
def _text(value: object) -> str | None:
    """Cached: a name repeats on every row of its employee."""
    if value is None:
        return None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return text.strip() or None


def _date(cells: dict[Role, object], year: int | None, confidences: list[float]) -> dt.date | None:
    roles: tuple[Role, ...] = ("date", "start_date")
    for role in roles:
        value = cells.get(role)
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
    cells: dict[Role, object], date: dt.date, confidences: list[float]
) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = read_time(cells.get("start"), confidences)
    end = read_time(cells.get("end"), confidences)
    end_date = cells.get("end_date")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return start, end
    if start is None or end is None:
        return at(date, start), at(date, end)
    start_time = start.time() if isinstance(start, dt.datetime) else start
    end_time = end.time() if isinstance(end, dt.datetime) else end
    if end_date is not None and (parsed := values.parse_date(end_date, year=date.year, dayfirst=None)):
        return dt.datetime.combine(date, start_time), dt.datetime.combine(parsed[0], end_time)
    return values.combine(date, start_time, end_time)
