"""Weekly grids: one column per day of the week, read into the same entries as row-per-day tables.

Two shapes are read. In a punch grid the rows are labelled ``In``, ``Out``, ``Lunch`` (the same
synonyms ``layout`` knows for columns) under a header of days (``Mon 3/4`` ... ``Sun 3/10``), one
grid per employee, named above it. In an hours grid each row is an employee (``Name | Mon | Tue ...
| Total``) and each cell the hours worked that day. A header row is a grid's when at least three of
its cells name distinct weekdays (or are calendar days); ``find_tables`` may also take such a row for
a header (``Name`` and ``Total`` name columns), so ``outside_grids`` drops those tables.

A day written as a weekday alone gets its date from a week label (``Week of 3/4/2024``, ``Week ending
3/10/2024``) or from another day of the same header that has one, at a lower confidence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

from conveyor.extractors.spreadsheet import Sheet, column_letters
from conveyor.pipelines.timecards import values
from conveyor.pipelines.timecards.dates import WEEKDAY_NUMBERS, parse_date
from conveyor.pipelines.timecards.layout import (
    EMPLOYEE_LABEL,
    TOTALS,
    UNKNOWN_EMPLOYEE,
    Role,
    Table,
    column_role,
    employee_named_in,
)
from conveyor.pipelines.timecards.model import Entry
from conveyor.pipelines.timecards.punches import read_breaks, read_duration, read_punches
from conveyor.pipelines.timecards.reading import CACHED_CELLS, PLAUSIBLE, normalise_text

MIN_DAYS: Final = 3
# How far above a grid's header its employee and week labels are looked for.
LABEL_ROWS: Final = 5
_NEVER_DAYS: Final = frozenset({int, float, bool, dt.time, dt.timedelta})
_MAYBE_DAYS: Final = frozenset({str, dt.date, dt.datetime})
INFERRED_DATE: Final = PLAUSIBLE  # a weekday placed in a week: right unless the label is wrong
WEEK_LABEL: Final = re.compile(
    r"^\s*(?:for\s+)?(?:the\s+)?(?:work\s*)?week\s*(?P<kind>of|beginning|starting|commencing|"
    r"ending|ended|end|ends)\s*[:\-]?\s*(?P<date>.*?)\s*$",
    re.I,
)
DAY_OFF: Final = frozenset({"off", "-", "--", "x", "n/a", "na", "day off", "rest", "absent"})
PUNCH_ROLES: Final[frozenset[Role]] = frozenset(
    {"start", "end", "break", "break_start", "break_end", "hours", "rate"}
)
_ZERO: Final = Decimal(0)

Kind = Literal["punches", "hours"]


@dataclass(frozen=True, slots=True)
class DayColumn:
    """A day's column; ``date`` is None when neither the header nor a week label gives one."""

    column: int
    weekday: int
    date: dt.date | None
    confidence: float


@dataclass(frozen=True, slots=True)
class Grid:
    """A weekly grid: its header row, the rows under it (``first_row`` to ``last_row`` inclusive,
    0-based) and the column holding the row labels (punch roles, or employee names)."""

    header_row: int
    first_row: int
    last_row: int
    kind: Kind
    label_column: int | None
    days: tuple[DayColumn, ...]
    employee: str | None = None
    columns: dict[Role, int] = field(default_factory=dict)

    def covers(self, row: int) -> bool:
        return self.header_row <= row <= self.last_row


def grid_entries(sheet: Sheet, *, year: int | None, grids: Sequence[Grid] | None = None) -> list[Entry]:
    """Every entry of every weekly grid on the sheet, grid by grid, day by day."""
    found = find_grids(sheet.rows, year=year) if grids is None else grids
    entries: list[Entry] = []
    for grid in found:
        reader = _punch_entries if grid.kind == "punches" else _hours_entries
        entries.extend(reader(sheet, grid))
    return entries


def outside_grids(tables: Sequence[Table], grids: Sequence[Grid]) -> list[Table]:
    """The tables whose header is not a grid's, each cut short where a grid below it starts."""
    kept: list[Table] = []
    for table in tables:
        if any(grid.covers(table.header_row) for grid in grids):
            continue
        below = [grid.header_row for grid in grids if table.header_row < grid.header_row <= table.last_row]
        kept.append(dataclasses.replace(table, last_row=min(below) - 1) if below else table)
    return kept


def find_grids(rows: Sequence[Sequence[object]], *, year: int | None) -> list[Grid]:
    """Every weekly grid on the sheet, top to bottom."""
    grids: list[Grid] = []
    index = 0
    while index < len(rows):
        row = rows[index]
        # Most rows hold fewer than MIN_DAYS cells that could name a day at all: skip them unread.
        if sum(map(_MAYBE_DAYS.__contains__, map(type, row))) < MIN_DAYS:  # counted in C
            index += 1
            continue
        day_cells = _day_cells(row)
        if len(day_cells) < MIN_DAYS:
            index += 1
            continue
        grid = _grid(rows, index, day_cells, year, grids[-1].last_row if grids else -1)
        grids.append(grid)
        index = grid.last_row + 1
    return grids


def weekday_of(value: object) -> int | None:
    """The weekday (Monday 0) a header cell names: ``Mon``, ``Tuesday 3/5``, ``3/5 (Tue)``, a date,
    or a date as text with its year (a CSV's header cells are all text)."""
    if isinstance(value, dt.datetime):
        return value.weekday() if value.time() == dt.time(0) and value.year > 1900 else None
    if isinstance(value, dt.date):
        return value.weekday()
    return _weekday_of_text(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=CACHED_CELLS)
def _weekday_of_text(value: str) -> int | None:
    """Cached: every row of every sheet is looked at for day names, and rows repeat their text."""
    if not (text := normalise_text(value)):
        return None
    words = text.replace(",", " ").split()
    for word in (words[0], words[-1]) if words else ():
        if (name := word.strip("().:")) in WEEKDAY_NUMBERS:
            return WEEKDAY_NUMBERS[name]
    if text[0].isdigit() and (parsed := parse_date(text, year=None, dayfirst=None)) is not None:
        return parsed[0].weekday()
    return None


def _day_cells(row: Sequence[object]) -> dict[int, int]:
    """Column to weekday for the row's day cells; empty unless they name distinct weekdays."""
    cells = {
        column: day
        for column, value in enumerate(row)
        if value is not None and value.__class__ not in _NEVER_DAYS and (day := weekday_of(value)) is not None
    }
    return cells if len(set(cells.values())) == len(cells) else {}


def _grid(
    rows: Sequence[Sequence[object]], header: int, day_cells: dict[int, int], year: int | None, previous: int
) -> Grid:
    first_day = min(day_cells)
    above = range(header - 1, max(previous, header - LABEL_ROWS - 1), -1)
    week = _week_label(rows, [header, *above], day_cells, year)
    days = _day_columns(rows[header], day_cells, week, year)
    header_roles = {
        role: column
        for column, value in enumerate(rows[header])
        if column not in day_cells and (role := column_role(value)) is not None
    }
    below = rows[header + 1] if header + 1 < len(rows) else []
    punch_column = next(
        (column for column in range(first_day) if _row_role(below, column) in PUNCH_ROLES), None
    )
    if punch_column is not None:
        last = header
        while last + 1 < len(rows) and _is_punch_row(rows[last + 1], punch_column):
            last += 1
        employee = _employee_label(rows, [*above], header, first_day)
        return Grid(header, header + 1, last, "punches", punch_column, days, employee)
    label = header_roles.get("employee", header_roles.get("employee_id"))
    if label is None and first_day > 0:
        label = first_day - 1
    last = header
    while (
        last + 1 < len(rows) and not _is_blank(rows[last + 1]) and len(_day_cells(rows[last + 1])) < MIN_DAYS
    ):
        last += 1
    columns: dict[Role, int] = {
        role: column for role, column in header_roles.items() if role in ("rate", "employee_id")
    }
    return Grid(header, header + 1, last, "hours", label, days, None, columns)


def _row_role(row: Sequence[object], column: int) -> Role | None:
    value = row[column] if column < len(row) else None
    if isinstance(value, str) and TOTALS.match(value):
        return None
    return column_role(value)


def _is_punch_row(row: Sequence[object], column: int) -> bool:
    """A row of a punch grid: labelled with a punch role, or a totals row (read past, not used)."""
    value = row[column] if column < len(row) else None
    return _row_role(row, column) in PUNCH_ROLES or (
        isinstance(value, str) and TOTALS.match(value) is not None
    )


def _is_blank(row: Sequence[object]) -> bool:
    return all(value is None or (isinstance(value, str) and not value.strip()) for value in row)


def _week_label(
    rows: Sequence[Sequence[object]], searched: Sequence[int], day_cells: dict[int, int], year: int | None
) -> tuple[dt.date, float] | None:
    """The first day of the week a label names (nearest label first), with the label's confidence."""
    for index in searched:
        cells = [
            value
            for column, value in enumerate(rows[index])
            if value not in (None, "") and not (index == searched[0] and column in day_cells)
        ]
        for position, value in enumerate(cells):
            match = WEEK_LABEL.match(value) if isinstance(value, str) else None
            if match is None:
                continue
            written: object = match["date"] or (cells[position + 1] if position + 1 < len(cells) else None)
            parsed = values.parse_date(written, year=year, dayfirst=None)
            if parsed is None:
                continue
            day, confidence = parsed
            if match["kind"].lower().startswith("end"):
                day -= dt.timedelta(days=6)
            return day, confidence
    return None


def _employee_label(
    rows: Sequence[Sequence[object]], above: Sequence[int], header: int, first_day: int
) -> str | None:
    """``Employee: Ada`` in the header's label cells or above; ``Employee | Ada`` above."""
    for label in rows[header][:first_day]:
        if isinstance(label, str) and (match := EMPLOYEE_LABEL.match(label)):
            return match["name"].strip()
    for index in above:
        name = employee_named_in(rows[index])
        if name is not None:
            return name
    return None


def _day_columns(
    header: Sequence[object], day_cells: dict[int, int], week: tuple[dt.date, float] | None, year: int | None
) -> tuple[DayColumn, ...]:
    """Dates written in the header first; a weekday alone placed in the labelled week, else in the
    week of the nearest written date."""
    label_year = week[0].year if week and year is None else year
    written: dict[int, tuple[dt.date, float]] = {}
    for column in day_cells:
        value = header[column]
        if isinstance(value, dt.date):
            written[column] = (value.date() if isinstance(value, dt.datetime) else value, 1.0)
        elif (parsed := values.parse_date(value, year=label_year, dayfirst=None)) is not None:
            written[column] = parsed
    days: list[DayColumn] = []
    for column, weekday in sorted(day_cells.items()):
        if column in written:
            days.append(DayColumn(column, weekday, *written[column]))
        elif week is not None:
            start, confidence = week
            day = start + dt.timedelta(days=(weekday - start.weekday()) % 7)
            days.append(DayColumn(column, weekday, day, min(confidence, INFERRED_DATE)))
        elif written:
            anchor_column = min(written, key=lambda known: abs(known - column))
            anchor = written[anchor_column][0]
            shift = (
                (weekday - anchor.weekday()) % 7
                if column > anchor_column
                else -((anchor.weekday() - weekday) % 7)
            )
            confidence = min(written[anchor_column][1], INFERRED_DATE)
            days.append(DayColumn(column, weekday, anchor + dt.timedelta(days=shift), confidence))
        else:
            days.append(DayColumn(column, weekday, None, 0.0))
    return tuple(days)


def _punch_entries(sheet: Sheet, grid: Grid) -> Iterator[Entry]:
    if grid.label_column is None:  # a punch grid always has one; for the type checker
        return
    role_rows: dict[Role, int] = {}
    for index in range(grid.first_row, grid.last_row + 1):
        role = _row_role(sheet.rows[index], grid.label_column)
        if role is not None and role not in role_rows:
            role_rows[role] = index
    if not role_rows:
        return
    first, last = min(role_rows.values()), max(role_rows.values())
    for day in grid.days:
        cells = {role: _value(sheet, index, day.column) for role, index in role_rows.items()}
        if day.date is None or all(value is None for value in cells.values()):
            continue
        confidences = [day.confidence] + ([] if grid.employee else [0.3])
        start, end = read_punches(cells, day.date, confidences)
        breaks = read_breaks(cells, start, confidences)
        sheet_hours = read_duration(cells.get("hours"), confidences)
        if start is not None and end is not None:
            hours = values.worked_hours(start, end, breaks)
            if sheet_hours is not None and abs(sheet_hours - hours) > Decimal("0.26"):
                confidences.append(0.5)
        else:
            hours = sheet_hours if sheet_hours is not None else _ZERO
        rate = values.parse_money(cells.get("rate"))
        if rate is not None:
            confidences.append(rate[1])
        letters = column_letters(day.column)
        yield Entry(
            employee=grid.employee or UNKNOWN_EMPLOYEE,
            date=day.date,
            start=start,
            end=end,
            hours=hours,
            rate=rate[0] if rate else None,
            source=f"{sheet.ref(first, day.column)}:{letters}{last + 1}",
            confidence=min([1.0, *confidences]),
            break_hours=breaks
            if isinstance(breaks, Decimal)
            else sum((values.worked_hours(b_start, b_end) for b_start, b_end in breaks), _ZERO),
        )


def _hours_entries(sheet: Sheet, grid: Grid) -> Iterator[Entry]:
    for index in range(grid.first_row, grid.last_row + 1):
        row = sheet.rows[index]
        label = _value(sheet, index, grid.label_column) if grid.label_column is not None else None
        if _is_blank(row) or (isinstance(label, str) and TOTALS.match(label)):
            continue
        employee = _text(label) or _text(_value(sheet, index, grid.columns.get("employee_id")))
        rate = values.parse_money(_value(sheet, index, grid.columns.get("rate")))
        for day in grid.days:
            value = _value(sheet, index, day.column)
            if (
                day.date is None
                or value is None
                or (isinstance(value, str) and value.strip().lower() in DAY_OFF)
            ):
                continue
            confidences = [day.confidence] + ([] if employee else [0.3]) + ([rate[1]] if rate else [])
            hours = read_duration(value, confidences)
            if hours == 0:
                continue  # a zero is a day off written as a number
            yield Entry(
                employee=employee or UNKNOWN_EMPLOYEE,
                date=day.date,
                start=None,
                end=None,
                hours=hours or _ZERO,
                rate=rate[0] if rate else None,
                source=sheet.ref(index, day.column),
                confidence=min([1.0, *confidences]),
            )


def _value(sheet: Sheet, row: int, column: int | None) -> object:
    value = None if column is None else sheet.value(row, column)
    return None if isinstance(value, str) and not value.strip() else value


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return text.strip() or None
