"""The nouns a spreadsheet is read into (cells, sheets, workbooks) and how Excel names and shows them."""

from __future__ import annotations

import datetime
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeAlias

CellValue: TypeAlias = (
    str | int | float | bool | datetime.datetime | datetime.date | datetime.time | datetime.timedelta | None
)
MergedRange: TypeAlias = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell; ``row`` and ``column`` count from 0, ``ref`` is how Excel names it (``Sheet1!C12``)."""

    row: int
    column: int
    value: CellValue
    ref: str


@dataclass(frozen=True, slots=True)
class Sheet:
    """``rows[r][c]`` is the value at row ``r``, column ``c`` (A1 is ``rows[0][0]``); None is empty.

    A workbook sheet's rows all run from column A to the sheet's last used column; a CSV's rows keep
    the lengths they have in the file. ``merged`` holds (first_row, first_col, last_row, last_col);
    a merged range shows its first cell's value (the others are normally empty, but need not be).
    """

    name: str
    rows: list[list[CellValue]]
    merged: list[MergedRange] = field(default_factory=list)
    hidden: bool = False

    def ref(self, row: int, column: int) -> str:
        return f"{sheet_prefix(self.name)}{column_letters(column)}{row + 1}"

    def value(self, row: int, column: int) -> CellValue:
        """The value at a position, None beyond the cells read."""
        if 0 <= row < len(self.rows):
            values = self.rows[row]
            if 0 <= column < len(values):
                return values[column]
        return None

    def cell(self, row: int, column: int) -> Cell:
        return Cell(row, column, self.value(row, column), self.ref(row, column))

    def cells(self) -> Iterator[Cell]:
        """The cells that are not empty, row by row."""
        for row, values in enumerate(self.rows):
            for column, value in enumerate(values):
                if value is not None:
                    yield Cell(row, column, value, self.ref(row, column))


@dataclass(frozen=True, slots=True)
class Workbook:
    sheets: list[Sheet]
    media_type: str


@contextmanager
def gc_paused() -> Iterator[None]:
    """Building a million lists sets off garbage collections that find nothing (the values are
    immutable); pausing them makes the conversion about twice as fast."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- references and text --------------------------------------------------------------------------

_PLAIN_SHEET_NAME = re.compile(r"[^\W\d]\w*")
_LOOKS_LIKE_A_REFERENCE = re.compile(r"[A-Za-z]{1,3}\d+|[Rr]\d*[Cc]\d*|[RrCc]\d*|true|false", re.IGNORECASE)


@lru_cache(maxsize=1024)
def sheet_prefix(name: str) -> str:
    """``Sheet1!`` or, where Excel quotes the name, ``'My Sheet'!`` (quotes inside doubled)."""
    if _PLAIN_SHEET_NAME.fullmatch(name) and not _LOOKS_LIKE_A_REFERENCE.fullmatch(name):
        return f"{name}!"
    return "'" + name.replace("'", "''") + "'!"


def column_letters(column: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 16383 -> XFD."""
    letters = ""
    number = column + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def cell_text(value: CellValue) -> str:
    """A value as a person reads it in the sheet: ``12345`` not ``12345.0``, ISO dates and times,
    durations as hours (``25:30:00``), TRUE/FALSE; empty for None. For matching text in cells."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        sign = "-" if value < datetime.timedelta(0) else ""
        duration = abs(value)
        seconds = duration.days * 86400 + duration.seconds
        fraction = f".{duration.microseconds:06d}".rstrip("0") if duration.microseconds else ""
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{fraction}"
    return str(value)
