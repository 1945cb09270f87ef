"""The target list: codes read from one column of a spreadsheet (xlsx, xls, ods, csv, ...), the
column found by its header or named by the caller, and the set they are matched against.

``read_targets`` parses the uploaded file in the process that calls it: call it in the parser
sandbox (``Sandbox.run(read_targets, ...)``), as for any untrusted file. It is module-level and
returns plain strings, so it runs there as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from conveyor.content import Limits
from conveyor.errors import InputError
from conveyor.extractors.spreadsheet import (
    CellValue,
    Sheet,
    cell_text,
    column_letters,
    read_workbook,
)
from conveyor.pipelines.codescan.codes import normalise_code, skeleton

# A header is looked for in the first rows of each sheet (a title or a note may come first).
HEADER_ROWS: Final = 20
MAX_TARGET_CHARS: Final = 200
# Header texts of a column of codes, best first: when a sheet has both "ID" and "Hole code", the
# codes are under "Hole code". Compared after ``_header_key``.
_HEADER_RANKS: Final = (
    ("hole code", "hole codes", "hole id", "hole no", "hole number", "hole ref", "hole reference"),
    ("code", "codes", "target code", "target codes", "tag code", "item code"),
    ("hole", "holes", "tag", "tags", "tag no", "tag number", "tag id"),
    ("target", "targets"),
    ("id", "number", "no", "ref", "reference"),
)
_HEADERS: Final = {name: rank for rank, names in enumerate(_HEADER_RANKS) for name in names}
_HEADER_PUNCTUATION = re.compile(r"[\s_\-.:#()/]+")
_COLUMN_LETTERS = re.compile(r"[A-Za-z]{1,3}")
_SHOWN_HEADER_CHARS = 600


@dataclass(frozen=True, slots=True)
class _Column:
    sheet: Sheet
    column: int
    first_row: int  # the first row of values (the row after the header)


def read_targets(
    path: str, media_type: str, filename: str, limits: Limits, *, column: str | None = None
) -> list[str]:
    """The normalised target codes in the file at ``path`` (content ``media_type``, sniffed), in
    the order written, blanks and repeats dropped.

    The column is the one whose header (in the first ``HEADER_ROWS`` rows of any sheet) reads like a
    code column ("Hole code", "Code", "Tag", "Target", "ID", ...; the most specific wins), or
    ``column``: a header text first, else a column letter ("B") of the first sheet that has values
    there. Raises InputError naming the file when no column is found (with the headers seen), or
    the column holds no code.
    """
    workbook = read_workbook(path, media_type, filename, limits)
    sheets = _in_reading_order(workbook.sheets)
    found = _named_column(sheets, column, filename) if column is not None else _code_column(sheets)
    if found is None:
        raise InputError(
            f"{filename}: no column of codes found (a header such as 'Hole code', 'Code', 'Tag' or"
            f" 'Target'); name it with the param 'column' (its header or letter). {_headers_seen(sheets)}"
        )
    rows = found.sheet.rows[found.first_row :]
    try:
        codes = normalised_targets(cell_text(_at(row, found.column)) for row in rows)
    except InputError as error:
        raise InputError(f"{filename}: {error}") from None
    if not codes:
        where = f"column {column_letters(found.column)} of sheet {found.sheet.name!r}"
        raise InputError(f"{filename}: {where} holds no codes")
    return codes


def normalised_targets(values: Iterable[str]) -> list[str]:
    """Each value's normal form, blanks and repeats dropped, the first occurrence's place kept."""
    codes: dict[str, None] = {}
    for value in values:
        code = normalise_code(value)
        if code:
            if len(code) > MAX_TARGET_CHARS:
                raise InputError(f"target {code[:40]!r}... is over {MAX_TARGET_CHARS} characters")
            codes.setdefault(code)
    return list(codes)


@dataclass(frozen=True, slots=True)
class TargetSet:
    """Targets as matching needs them: the codes, and each skeleton with the first target that has
    it (two targets that OCR cannot tell apart are an ambiguity no reading resolves)."""

    codes: frozenset[str]
    by_skeleton: dict[str, str]

    def exact(self, code: str) -> str | None:
        return code if code in self.codes else None

    def fuzzy(self, code: str) -> str | None:
        """The target ``code`` equals only after OCR's confusions, if one does."""
        target = self.by_skeleton.get(skeleton(code))
        return None if target is None or target == code else target


@functools.lru_cache(maxsize=8)
def target_set(targets: tuple[str, ...]) -> TargetSet:
    """Cached by the list itself: a batch passes the same thousands of targets for every file, and
    normalising them again for each one would cost more than reading a page."""
    codes = normalised_targets(targets)
    by_skeleton: dict[str, str] = {}
    for code in codes:
        by_skeleton.setdefault(skeleton(code), code)
    return TargetSet(frozenset(codes), by_skeleton)


def _in_reading_order(sheets: Sequence[Sheet]) -> list[Sheet]:
    return [sheet for sheet in sheets if not sheet.hidden] + [sheet for sheet in sheets if sheet.hidden]


def _header_key(value: CellValue) -> str:
    return _HEADER_PUNCTUATION.sub(" ", cell_text(value).casefold()).strip()


def _headers(sheet: Sheet) -> Iterable[tuple[int, int, str]]:
    for row, values in enumerate(sheet.rows[:HEADER_ROWS]):
        for column, value in enumerate(values):
            if isinstance(value, str):
                yield row, column, _header_key(value)


def _code_column(sheets: Sequence[Sheet]) -> _Column | None:
    best: tuple[int, int, int, int] | None = None
    for index, sheet in enumerate(sheets):
        for row, column, key in _headers(sheet):
            rank = _HEADERS.get(key)
            if rank is not None and (best is None or (rank, index, row, column) < best):
                best = (rank, index, row, column)
    if best is None:
        return None
    _, index, row, column = best
    return _Column(sheets[index], column, row + 1)


def _named_column(sheets: Sequence[Sheet], name: str, filename: str) -> _Column | None:
    wanted = _header_key(name)
    if not wanted:
        raise InputError(f"{filename}: the param 'column' is empty")
    for sheet in sheets:
        for row, column, key in _headers(sheet):
            if key == wanted:
                return _Column(sheet, column, row + 1)
    letters = name.strip()
    if not _COLUMN_LETTERS.fullmatch(letters):
        return None
    column = _column_index(letters)
    for sheet in sheets:
        if any(_at(row, column) is not None for row in sheet.rows):
            return _Column(sheet, column, _first_value_row(sheet, column))
    raise InputError(f"{filename}: column {letters.upper()} is empty in every sheet")


def _first_value_row(sheet: Sheet, column: int) -> int:
    """Below the sheet's code header when it has one; else from the top, skipping a first cell
    with no digit in it (a header no synonym knows, such as "Drilling ref")."""
    found = _code_column([sheet])
    if found is not None:
        return found.first_row
    for row, values in enumerate(sheet.rows):
        value = _at(values, column)
        if value is not None:
            text = cell_text(value)
            return row + 1 if isinstance(value, str) and not any(c.isdigit() for c in text) else row
    return 0


def _at(values: Sequence[CellValue], column: int) -> CellValue:
    return values[column] if column < len(values) else None


def _column_index(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number - 1


def _headers_seen(sheets: Sequence[Sheet]) -> str:
    """The first non-empty row of each sheet, which is where a reader looks for headers."""
    seen: list[str] = []
    for sheet in sheets:
        first = next((values for values in sheet.rows if any(v is not None for v in values)), None)
        if first is not None:
            names = [repr(cell_text(value)) for value in first if value is not None]
            seen.append(f"{sheet.name!r}: {', '.join(names)}")
    if not seen:
        return "The file has no values."
    shown = "; ".join(seen)
    if len(shown) > _SHOWN_HEADER_CHARS:
        shown = shown[:_SHOWN_HEADER_CHARS] + "..."
    return f"Headers seen: {shown}"
