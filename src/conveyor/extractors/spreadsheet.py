"""Spreadsheets (xlsx, xlsm, xltx, xlsb, xls, ods; csv, tsv and plain-text lists) read into sheets of
typed cell values.

Workbooks are read by python-calamine, which converts Excel serial numbers itself, from each cell's
number format and the workbook's date system (1900 or 1904): dates come back as ``date``, times of
day as ``time``, date-times as ``datetime`` (one at exactly midnight as a ``date``), ``[h]:mm``
durations as ``timedelta`` and formulas as their cached results, all exact to the second. What it
leaves undone is done here: an ODS duration of a day or more arrives as its ISO 8601 text and becomes
a ``timedelta`` (a shorter one is a ``time``: ODS does not tell the two apart), and ODS merged ranges,
which calamine does not report, are read from ``content.xml`` (xlsb ones are not read at all).
Calamine reports Excel error values (``#DIV/0!``) as empty cells, and a formula saved without a
cached result is empty too: nothing here evaluates formulas.

Hidden and very hidden sheets are read too (``Sheet.hidden`` says which); chart, dialog and macro
sheets are skipped. Text files are read by ``conveyor.extractors.delimited``; the nouns live in
``conveyor.extractors.cells`` and are re-exported here, so callers need only this module. This runs
in a parser process (``conveyor.extractors.isolation``), so the functions are module-level and the
results picklable.
"""

from __future__ import annotations

import datetime
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from xml.parsers import expat

from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from conveyor.content import Limits
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors import sniff as media
from conveyor.extractors.cells import (
    Cell,
    CellValue,
    MergedRange,
    Sheet,
    Workbook,
    cell_text,
    column_letters,
    gc_paused,
    sheet_prefix,
)
from conveyor.extractors.delimited import read_text
from conveyor.extractors.limits import check_file_size, check_zip, iter_zip_member

__all__ = [
    "MAX_CELLS",
    "MAX_MERGED_RANGES",
    "Cell",
    "CellValue",
    "MergedRange",
    "Sheet",
    "Workbook",
    "cell_text",
    "column_letters",
    "read_workbook",
    "sheet_prefix",
]


# Cells held in memory for one file, counted as each sheet's rectangle from A1 to its last used cell
# (a CSV: the fields read). Not a ``Limits`` field: at worst (no value repeated) about 1.5 GB of
# Python objects.
MAX_CELLS = 20_000_000
MAX_MERGED_RANGES = 1_000_000

# calamine picks its reader by the file name's extension, so a file is shown to it under this one.
_CALAMINE_SUFFIXES = {
    **dict.fromkeys((media.XLSX, media.XLTX), ".xlsx"),
    **dict.fromkeys((media.XLSM, media.XLTM), ".xlsm"),
    media.XLSB: ".xlsb",
    media.XLS: ".xls",
    media.ODS: ".ods",
}
_DELIMITED = (media.CSV, media.TSV, media.TEXT)
# What ``read_workbook`` reads: callers check a file against this before sending it to a parser.
SPREADSHEET_TYPES = frozenset({*_CALAMINE_SUFFIXES, *_DELIMITED})
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_workbook(
    path: str,
    media_type: str,
    subject: str,
    limits: Limits,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Workbook:
    """Every worksheet of the file at ``path``, whose content is ``media_type`` (sniffed, not taken
    from its name); ``subject`` names the file in errors. ``encoding`` and ``delimiter`` are the
    sniffer's findings for CSV/TSV/plain text, sniffed here when not given.

    Raises InputError naming the file for an empty, damaged, password-protected or non-spreadsheet
    file, text not valid in its encoding, and LimitExceeded past ``limits`` or ``MAX_CELLS``.
    """
    size = Path(path).stat().st_size
    if size == 0 or media_type == media.EMPTY:
        raise InputError(f"{subject}: the file is empty")
    check_file_size(size, limits, subject)
    if media_type in _DELIMITED:
        # MAX_CELLS is passed, not imported by delimited: one bound, read at each call, for both readers
        return read_text(
            path, media_type, subject, encoding=encoding, delimiter=delimiter, max_cells=MAX_CELLS
        )
    if media_type == media.OOXML_ENCRYPTED:
        raise _password_protected(subject)
    suffix = _CALAMINE_SUFFIXES.get(media_type)
    if suffix is None:
        if media_type == media.ZIP:
            check_zip(Path(path), limits, subject)  # a damaged zip (a truncated xlsx) says so here
        raise InputError(
            f"{subject}: not a spreadsheet; the content is {media.describe_media_type(media_type)}"
        )
    if media_type != media.XLS:
        with Path(path).open("rb") as stream:
            if stream.read(len(_OLE_MAGIC)) == _OLE_MAGIC:
                raise _password_protected(subject)  # Office wraps an encrypted package in OLE
        check_zip(Path(path), limits, subject)
    sheets = _read_with_calamine(path, media_type, suffix, subject)
    if media_type == media.ODS:
        _add_ods_merged_ranges(sheets, path, limits, subject)
    return Workbook(sheets, media_type)


def _password_protected(subject: str) -> InputError:
    return InputError(
        f"{subject}: the workbook is password-protected; remove the password and submit it again"
    )


# --- workbooks ------------------------------------------------------------------------------------


def _read_with_calamine(path: str, media_type: str, suffix: str, subject: str) -> list[Sheet]:
    try:
        with _named_for_calamine(path, suffix) as named, CalamineWorkbook.from_path(named) as book:
            return _read_sheets(book, media_type, subject)
    except PasswordError:
        raise _password_protected(subject) from None
    except CalamineError as error:
        raise InputError(
            f"{subject}: cannot be read as {media.describe_media_type(media_type)}: {error}"
        ) from None
    except BaseException as error:
        # A panic in calamine's Rust code arrives as pyo3's PanicException, a BaseException.
        if type(error).__name__ != "PanicException":
            raise
        raise InputError(f"{subject}: the spreadsheet reader failed on this file: {error}") from None


def _read_sheets(book: CalamineWorkbook, media_type: str, subject: str) -> list[Sheet]:
    sheets: list[Sheet] = []
    cells = 0
    shared: dict[CellValue, CellValue] = {"": None}
    for metadata in book.sheets_metadata:
        if metadata.typ != SheetTypeEnum.WorkSheet:
            continue
        sheet = book.get_sheet_by_name(metadata.name)
        end = sheet.end
        # calamine has made its own rectangle by now (32 bytes a cell, bounded by the parser
        # process's memory limit); ours, from A1 and of Python objects, costs several times more.
        cells += 0 if end is None else (end[0] + 1) * (end[1] + 1)
        if cells > MAX_CELLS:
            raise LimitExceeded("cells", cells, MAX_CELLS, subject)
        rows: list[list[CellValue]] = []
        if end is not None:
            with gc_paused():
                rows = _rows_from_a1(sheet, end, shared)
            if media_type == media.ODS:
                _convert_ods_durations(rows)
        merged = [(first[0], first[1], last[0], last[1]) for first, last in sheet.merged_cell_ranges or ()]
        hidden = metadata.visible != SheetVisibleEnum.Visible
        sheets.append(Sheet(metadata.name, rows, merged, hidden))
    return sheets


def _rows_from_a1(
    sheet: CalamineSheet, end: tuple[int, int], shared: dict[CellValue, CellValue]
) -> list[list[CellValue]]:
    """``iter_rows`` does not hold the whole sheet twice as ``to_python`` does, but starts at row 1
    and at the first used column (python-calamine 0.9): what it leaves out is filled in."""
    rows = _shared_values(sheet.iter_rows(), shared)
    height, width = end[0] + 1, end[1] + 1
    if len(rows) < height:
        rows[:0] = [[None] * width for _ in range(height - len(rows))]
    for values in rows:
        if len(values) < width:
            values[:0] = [None] * (width - len(values))
    return rows


_SHARED_TYPES = frozenset({str, datetime.date, datetime.time, datetime.datetime, datetime.timedelta})


def _shared_values(
    rows: Iterable[Sequence[CellValue]], shared: dict[CellValue, CellValue]
) -> list[list[CellValue]]:
    """The rows with equal strings, dates and times made one object, and empty strings None.

    A timecard repeats a few hundred names, dates and times over a hundred thousand rows: shared, they
    take half the memory, and the workbook pickles across the parser process's pipe ten times faster
    (a date is pickled once, then referred to). Numbers are left alone, since True == 1 == 1.0.
    ``shared`` maps "" to None.
    """
    keep = shared.setdefault
    return [
        [keep(value, value) if value.__class__ in _SHARED_TYPES else value for value in row] for row in rows
    ]


@contextmanager
def _named_for_calamine(path: str, suffix: str) -> Iterator[str]:
    """The file under a name ending in ``suffix``: blobs and spooled copies have none, and a name
    can lie. A symbolic link costs nothing, whatever the file's size."""
    if path.lower().endswith(suffix):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="conveyor-sheet-") as folder:
        link = Path(folder) / f"workbook{suffix}"
        link.symlink_to(Path(path).resolve())
        yield str(link)


_ODS_DURATION = re.compile(r"(-?)P(?:(\d+)D)?T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?")


def _convert_ods_durations(rows: list[list[CellValue]]) -> None:
    for values in rows:
        for column, value in enumerate(values):
            if isinstance(value, str) and value.startswith(("P", "-P")):
                match = _ODS_DURATION.fullmatch(value)
                if match and any(match.groups()[2:]):
                    sign, days, hours, minutes, seconds = match.groups()
                    duration = datetime.timedelta(
                        days=int(days or 0),
                        hours=int(hours or 0),
                        minutes=int(minutes or 0),
                        seconds=float(seconds or 0),
                    )
                    values[column] = -duration if sign else duration


# --- ODS merged ranges ------------------------------------------------------------------------------

_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0 "
_ODS_CELLS = (_TABLE + "table-cell", _TABLE + "covered-table-cell")


def _add_ods_merged_ranges(sheets: list[Sheet], path: str, limits: Limits, subject: str) -> None:
    """Spans are attributes of a cell (``table:number-columns-spanned``); content.xml is parsed only
    when it has any, since the parse takes about as long as calamine's whole read."""
    with zipfile.ZipFile(path) as archive:
        if "content.xml" not in archive.namelist():
            return
        tail = b""
        for chunk in iter_zip_member(archive, "content.xml", limits, subject):
            if b"-spanned=" in tail + chunk[:16] or b"-spanned=" in chunk:
                break
            tail = chunk[-16:]
        else:
            return
        reader = _OdsSpans(subject)
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = reader.start
        parser.EndElementHandler = reader.end
        try:
            for chunk in iter_zip_member(archive, "content.xml", limits, subject):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except expat.ExpatError as error:
            raise InputError(f"{subject}: content.xml is not well-formed XML ({error})") from None
    for sheet in sheets:
        sheet.merged.extend(reader.merged.get(sheet.name, ()))


class _OdsSpans:
    """Counts rows and columns as the OpenDocument table model lays them out (repeats included) and
    records each spanned cell; tables nested inside a cell are skipped."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.merged: dict[str, list[MergedRange]] = {}
        self.count = 0
        self.table = ""
        self.row = self.column = 0
        self.row_repeats = 1
        self.inside_cell = 0  # elements open inside the current cell, itself included

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if self.inside_cell:
            self.inside_cell += 1
        elif name in _ODS_CELLS:
            self.inside_cell = 1
            self._cell(name, attributes)
        elif name == _TABLE + "table-row":
            self.column = 0
            self.row_repeats = _count(attributes.get(_TABLE + "number-rows-repeated"))
        elif name == _TABLE + "table":
            self.table = attributes.get(_TABLE + "name", "")
            self.row = 0

    def end(self, name: str) -> None:
        if self.inside_cell:
            self.inside_cell -= 1
        elif name == _TABLE + "table-row":
            self.row += self.row_repeats

    def _cell(self, name: str, attributes: dict[str, str]) -> None:
        repeats = _count(attributes.get(_TABLE + "number-columns-repeated"))
        columns = _count(attributes.get(_TABLE + "number-columns-spanned"))
        rows = _count(attributes.get(_TABLE + "number-rows-spanned"))
        if name == _ODS_CELLS[0] and (columns > 1 or rows > 1):
            self.count += repeats * self.row_repeats
            if self.count > MAX_MERGED_RANGES:
                raise LimitExceeded("merged_ranges", self.count, MAX_MERGED_RANGES, self.subject)
            ranges = self.merged.setdefault(self.table, [])
            for row in range(self.row, self.row + self.row_repeats):
                for column in range(self.column, self.column + repeats):
                    ranges.append((row, column, row + rows - 1, column + columns - 1))
        self.column += repeats


def _count(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() and 0 < int(value) <= 2**31 else 1
