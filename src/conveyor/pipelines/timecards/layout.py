"""Finding the timecard tables on a sheet without being told where they are.

A header row is a row where at least two cells name known columns (``Employee``, ``Date``, ``Clock
In``, ``Time Out``, ``Hours``, ``Rate``, ``Lunch Start`` ...), matched through synonyms and a
fuzzy ratio for typos. A sheet may hold several tables (one block per employee, each under its
own header); a block's employee may be named above its header (``Employee: Ada Lovelace``) instead
of in a column. Rows below a header belong to it until the next header or the end of the sheet.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

Role = Literal[
    "employee",
    "employee_id",
    "date",
    "day",
    "start",
    "end",
    "start_date",
    "end_date",
    "hours",
    "rate",
    "break_start",
    "break_end",
    "break",
]

# Synonyms after normalising (lower case, punctuation and spaces collapsed). Order matters where one
# name is inside another: the longest matching synonym wins.
SYNONYMS: Final[dict[Role, tuple[str, ...]]] = {
    "employee": ("employee", "employee name", "name", "worker", "staff", "user", "person", "full name"),
    "employee_id": ("emp id", "employee id", "employee number", "emp no", "badge", "id", "user id"),
    "date": ("date", "work date", "shift date", "day date"),
    "day": ("day", "weekday", "day of week"),
    "start": (
        "in",
        "time in",
        "clock in",
        "start",
        "start time",
        "punch in",
        "clocked in",
        "from",
        "begin",
        "in time",
    ),
    "end": (
        "out",
        "time out",
        "clock out",
        "end",
        "end time",
        "punch out",
        "clocked out",
        "to",
        "finish",
        "out time",
    ),
    "start_date": ("start date", "begin date", "from date"),
    "end_date": ("end date", "finish date", "to date"),
    "hours": (
        "hours",
        "total",
        "total hours",
        "hours worked",
        "worked",
        "duration",
        "duration h",
        "duration decimal",
        "time",
        "hrs",
        "total time",
    ),
    "rate": ("rate", "wage", "pay rate", "hourly rate", "rate per hour", "hourly wage", "billable rate"),
    "break_start": ("break start", "lunch start", "lunch out", "break out", "meal start"),
    "break_end": ("break end", "lunch end", "lunch in", "break in", "meal end"),
    "break": ("break", "lunch", "breaks", "meal", "break duration", "lunch break", "unpaid break"),
}
FUZZY_RATIO: Final = 0.85
MIN_ROLES: Final = 2
# Roles that make a header a timecard header; a row naming only "name" and "rate" is not one.
TIME_ROLES: Final = frozenset({"start", "end", "hours", "date", "day", "start_date"})
TOTALS: Final = re.compile(r"^\s*(grand\s+)?(total|totals|sum|subtotal|week\s*total)\b", re.I)
UNKNOWN_EMPLOYEE: Final = "(unknown)"
EMPLOYEE_LABEL: Final = re.compile(
    r"^\s*(?:employee|name|worker|staff)(?:\s*name)?\s*[:#-]\s*(?P<name>\S.*)$", re.I
)

_NORMALISE = re.compile(r"[^a-z0-9]+")
_BY_SYNONYM: Final = {synonym: role for role, synonyms in SYNONYMS.items() for synonym in synonyms}


@dataclass(slots=True)
class Table:
    """One table on a sheet: its header row, which column plays which role, its data rows
    (``first_row`` to ``last_row`` inclusive, 0-based) and an employee named above it, if any."""

    header_row: int
    columns: dict[Role, int]
    first_row: int
    last_row: int
    employee: str | None = None
    unmatched: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    return _NORMALISE.sub(" ", text.lower()).strip()


def column_role(value: object) -> Role | None:
    """The role a header cell names, exactly (after normalising) or within FUZZY_RATIO of a synonym."""
    if not isinstance(value, str):
        return None
    return _text_role(value)


@functools.lru_cache(maxsize=65_536)
def _text_role(value: str) -> Role | None:
    """Cached: a sheet repeats the same names and labels on thousands of rows, and the fuzzy match
    is the costliest step of finding tables."""
    name = normalise(value)
    if not name or len(name) > 40:
        return None
    if name in _BY_SYNONYM:
        return _BY_SYNONYM[name]
    close = difflib.get_close_matches(name, _BY_SYNONYM, n=1, cutoff=FUZZY_RATIO)
    return _BY_SYNONYM[close[0]] if close else None


def header_roles(row: Sequence[object]) -> dict[Role, int]:
    """The roles a row names, each at its first column; empty unless the row looks like a header."""
    if list(map(type, row)).count(str) < MIN_ROLES:  # counted in C: this runs on every row
        return {}  # a header names its columns in text; most data rows are dates and numbers
    roles: dict[Role, int] = {}
    for column, value in enumerate(row):
        role = column_role(value)
        if role is not None and role not in roles:
            roles[role] = column
    if len(roles) < MIN_ROLES or not roles.keys() & TIME_ROLES:
        return {}
    return _disambiguate(roles)


def _disambiguate(roles: dict[Role, int]) -> dict[Role, int]:
    """A lone ``Time`` column is hours only when no start/end columns exist; ``Day`` next to a date
    column is just the weekday's name."""
    if "day" in roles and "date" not in roles:
        roles["date"] = roles.pop("day")
    return roles


def find_tables(rows: Sequence[Sequence[object]]) -> list[Table]:
    """Every table on the sheet, top to bottom."""
    headers = [(index, roles) for index, row in enumerate(rows) if (roles := header_roles(row))]
    tables: list[Table] = []
    for number, (index, roles) in enumerate(headers):
        last = headers[number + 1][0] - 1 if number + 1 < len(headers) else len(rows) - 1
        employee = (
            None
            if "employee" in roles
            else _label_above(rows, index, tables[-1].header_row if tables else -1)
        )
        header = rows[index]
        unmatched = [
            str(value)
            for column, value in enumerate(header)
            if value not in (None, "") and column not in roles.values()
        ]
        tables.append(Table(index, roles, index + 1, last, employee, unmatched))
    return tables


def _label_above(rows: Sequence[Sequence[object]], header_row: int, previous_header: int) -> str | None:
    """The employee named in the rows between the previous table's header and this one, nearest first."""
    for index in range(header_row - 1, max(previous_header, header_row - 6), -1):
        name = employee_named_in(rows[index])
        if name is not None:
            return name
    return None


def employee_named_in(row: Sequence[object]) -> str | None:
    """``Employee: Ada Lovelace`` in one cell, or a label cell followed by the name."""
    cells = [value for value in row if value not in (None, "")]
    for position, value in enumerate(cells):
        if not isinstance(value, str):
            continue
        match = EMPLOYEE_LABEL.match(value)
        if match:
            return match.group("name").strip()
        if column_role(value.rstrip(":")) == "employee" and position + 1 < len(cells):
            return str(cells[position + 1]).strip()
    return None
