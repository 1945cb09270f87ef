"""Spreadsheets generated in code for the tests and benchmarks: the same grid of values written as
xlsx (xlsxwriter), xlsm, xls (xlwt), ods (written here) and csv.

A grid is a list of rows; a value is None (no cell), str, bool, int, float, Decimal, date, time,
datetime, timedelta (a duration) or a ``Formula`` with its cached result. Dates and times are
written as real spreadsheet dates and times with a number format, as an office suite saves them.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import xlsxwriter
import xlwt

Grid = Sequence[Sequence[object]]
Range = tuple[int, int, int, int]  # first_row, first_col, last_row, last_col

DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "hh:mm:ss"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DURATION_FORMAT = "[h]:mm:ss"


@dataclass(frozen=True)
class Formula:
    """A formula (``=B2*2``, written as given) and the result saved with it, as Excel caches it."""

    text: str
    result: object


def number_format(value: object) -> str | None:
    """The number format a value is written with, so that readers see a date, time or duration."""
    if isinstance(value, Formula):
        return number_format(value.result)
    if isinstance(value, datetime.datetime):
        return DATETIME_FORMAT
    if isinstance(value, datetime.date):
        return DATE_FORMAT
    if isinstance(value, datetime.time):
        return TIME_FORMAT
    if isinstance(value, datetime.timedelta):
        return DURATION_FORMAT
    return None


def _covered(merged: Sequence[Range]) -> set[tuple[int, int]]:
    """Cells inside a merged range other than its first."""
    return {
        (row, column)
        for first_row, first_col, last_row, last_col in merged
        for row in range(first_row, last_row + 1)
        for column in range(first_col, last_col + 1)
        if (row, column) != (first_row, first_col)
    }


# --- xlsx and xlsm ----------------------------------------------------------------------------------


def xlsx_bytes(
    sheets: Mapping[str, Grid],
    *,
    merged: Mapping[str, Sequence[Range]] | None = None,
    formats: Mapping[str, Mapping[tuple[int, int], str]] | None = None,
    hidden: Collection[str] = (),
    date_1904: bool = False,
) -> bytes:
    """``formats`` gives a cell a number format of its own (a serial number shown as a date, say)."""
    buffer = io.BytesIO()
    write_xlsx(buffer, sheets, merged=merged, formats=formats, hidden=hidden, date_1904=date_1904)
    return buffer.getvalue()


def write_xlsx(
    target: io.BytesIO | Path,
    sheets: Mapping[str, Grid],
    *,
    merged: Mapping[str, Sequence[Range]] | None = None,
    formats: Mapping[str, Mapping[tuple[int, int], str]] | None = None,
    hidden: Collection[str] = (),
    date_1904: bool = False,
) -> None:
    """Into a file or a buffer; a file is written row by row in constant memory (for benchmarks)."""
    options: dict[str, Any] = {"date_1904": date_1904, "constant_memory": isinstance(target, Path)}
    if isinstance(target, io.BytesIO):
        options["in_memory"] = True
    book = xlsxwriter.Workbook(target if isinstance(target, io.BytesIO) else str(target), options)
    styles: dict[str, Any] = {}

    def style(code: str | None) -> Any:
        if code is None:
            return None
        if code not in styles:
            styles[code] = book.add_format({"num_format": code})
        return styles[code]

    for name, grid in sheets.items():
        sheet = book.add_worksheet(name)
        _fill_xlsx_sheet(sheet, grid, (merged or {}).get(name, ()), (formats or {}).get(name, {}), style)
        if name in hidden:
            sheet.hide()
    visible = [name for name in sheets if name not in hidden]
    if visible and next(iter(sheets)) in hidden:
        book.get_worksheet_by_name(visible[0]).activate()
    book.close()


def _fill_xlsx_sheet(
    sheet: Any,
    grid: Grid,
    ranges: Sequence[Range],
    own_formats: Mapping[tuple[int, int], str],
    style: Callable[[str | None], Any],
) -> None:
    covered = _covered(ranges)
    for row, values in enumerate(grid):
        for column, value in enumerate(values):
            if value is None or (row, column) in covered:
                continue
            _write_xlsx_cell(
                sheet, row, column, value, style(own_formats.get((row, column)) or number_format(value))
            )
    for first_row, first_col, last_row, last_col in ranges:
        first = grid[first_row][first_col] if first_row < len(grid) else None
        first_style = style(number_format(first))
        sheet.merge_range(first_row, first_col, last_row, last_col, "", first_style)
        if first is not None:  # merge_range writes the first cell as text; write the value over it
            _write_xlsx_cell(sheet, first_row, first_col, first, first_style)


def _write_xlsx_cell(sheet: Any, row: int, column: int, value: object, cell_style: Any) -> None:
    if isinstance(value, Formula):
        result = value.result
        if isinstance(result, datetime.date | datetime.time | datetime.timedelta):
            result = _serial(result)
        sheet.write_formula(row, column, value.text, cell_style, result)
    elif isinstance(value, bool):
        sheet.write_boolean(row, column, value, cell_style)
    elif isinstance(value, int | float | Decimal):
        sheet.write_number(row, column, float(value), cell_style)
    elif isinstance(value, str):
        sheet.write_string(row, column, value, cell_style)
    elif isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        sheet.write_datetime(row, column, value, cell_style)
    else:
        raise TypeError(f"cannot write {value!r} to a spreadsheet")


def _serial(value: datetime.date | datetime.time | datetime.timedelta) -> float:
    """An Excel serial number in the 1900 date system (from 1900-03-01 on)."""
    if isinstance(value, datetime.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, datetime.time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    moment = (
        value if isinstance(value, datetime.datetime) else datetime.datetime.combine(value, datetime.time())
    )
    return (moment - datetime.datetime(1899, 12, 30)).total_seconds() / 86400


_XLSX_MAIN = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_XLSM_MAIN = b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def xlsm_bytes(sheets: Mapping[str, Grid], **options: Any) -> bytes:
    """An xlsx whose workbook part has the macro-enabled content type (and no VBA project), which is
    what tells an xlsm apart; xlsxwriter writes a real one only around an existing vbaProject.bin."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes(sheets, **options)))
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(_XLSX_MAIN, _XLSM_MAIN)
            target.writestr(info, data)
    return buffer.getvalue()


# --- xls ------------------------------------------------------------------------------------------


def xls_bytes(
    sheets: Mapping[str, Grid],
    *,
    merged: Mapping[str, Sequence[Range]] | None = None,
    formats: Mapping[str, Mapping[tuple[int, int], str]] | None = None,
    hidden: Collection[str] = (),
) -> bytes:
    """An Excel 97-2003 workbook. xlwt saves no results with formulas, so a ``Formula`` is written as
    its result alone."""
    book = xlwt.Workbook()
    styles: dict[str | None, Any] = {None: xlwt.Style.default_style}

    def style(code: str | None) -> Any:
        if code not in styles:
            styles[code] = xlwt.easyxf(num_format_str=code)
        return styles[code]

    for name, grid in sheets.items():
        sheet = book.add_sheet(name)
        own_formats = (formats or {}).get(name, {})
        ranges = (merged or {}).get(name, ())
        firsts = {
            (first_row, first_col): (last_row, last_col)
            for first_row, first_col, last_row, last_col in ranges
        }
        covered = _covered(ranges)
        for row, values in enumerate(grid):
            for column, value in enumerate(values):
                if (row, column) in covered or (value is None and (row, column) not in firsts):
                    continue
                if isinstance(value, Formula):
                    value = value.result
                cell_style = style(own_formats.get((row, column)) or number_format(value))
                written = _xls_value(value)
                if (row, column) in firsts:
                    last_row, last_col = firsts[row, column]
                    sheet.write_merge(row, last_row, column, last_col, written, cell_style)
                else:
                    sheet.write(row, column, written, cell_style)
        if name in hidden:
            sheet.visibility = 1
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xls_value(value: object) -> object:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds() / 86400
    if isinstance(value, Decimal):
        return float(value)
    return "" if value is None else value


# --- ods ------------------------------------------------------------------------------------------

ODS_MEDIA_TYPE = "application/vnd.oasis.opendocument.spreadsheet"
_NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" '
    'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
)
_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<manifest:manifest {_NAMESPACES} manifest:version="1.2">'
    f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODS_MEDIA_TYPE}"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>"
)
# Hidden sheets are a table style with table:display="false", as LibreOffice writes them.
_STYLES = (
    "<office:automatic-styles>"
    '<style:style style:name="ta1" style:family="table"><style:table-properties table:display="true"/>'
    "</style:style>"
    '<style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/>'
    "</style:style>"
    "</office:automatic-styles>"
)


def ods_bytes(
    sheets: Mapping[str, Grid],
    *,
    merged: Mapping[str, Sequence[Range]] | None = None,
    hidden: Collection[str] = (),
) -> bytes:
    """An OpenDocument spreadsheet: ``mimetype`` first and stored, then the manifest and content.xml
    (without whitespace between elements, as office suites write it and as calamine needs)."""
    tables = "".join(
        _ods_table(name, grid, (merged or {}).get(name, ()), name in hidden) for name, grid in sheets.items()
    )
    return ods_package(
        f"{_STYLES}<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>"
    )


def ods_package(body: str) -> bytes:
    """An ODS file around ``body``, the content of ``office:document-content`` (for hand-made ones)."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<office:document-content {_NAMESPACES} office:version="1.2">{body}</office:document-content>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ODS_MEDIA_TYPE)  # stored, no extra field
        archive.writestr("META-INF/manifest.xml", _MANIFEST, zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _ods_table(name: str, grid: Grid, ranges: Sequence[Range], is_hidden: bool) -> str:
    spans = {
        (first_row, first_col): (last_row, last_col) for first_row, first_col, last_row, last_col in ranges
    }
    covered = _covered(ranges)
    width = max((len(values) for values in grid), default=0)
    rows = []
    for row, values in enumerate(grid):
        cells = []
        for column in range(width):
            value = values[column] if column < len(values) else None
            if (row, column) in covered:
                cells.append("<table:covered-table-cell/>")
                continue
            span = ""
            if (row, column) in spans:
                last_row, last_col = spans[row, column]
                span = (
                    f' table:number-columns-spanned="{last_col - column + 1}"'
                    f' table:number-rows-spanned="{last_row - row + 1}"'
                )
            cells.append(_ods_cell(value, span))
        rows.append(f"<table:table-row>{''.join(cells)}</table:table-row>")
    style = "ta2" if is_hidden else "ta1"
    return (
        f'<table:table table:name={quoteattr(name)} table:style-name="{style}">{"".join(rows)}</table:table>'
    )


def _ods_cell(value: object, span: str) -> str:
    formula = ""
    if isinstance(value, Formula):
        formula = f" table:formula={quoteattr('of:' + value.text)}"
        value = value.result
    attributes = span + formula
    if value is None:
        return f"<table:table-cell{attributes}/>"
    if isinstance(value, bool):
        typed = f'office:value-type="boolean" office:boolean-value="{str(value).lower()}"'
    elif isinstance(value, int | float | Decimal):
        typed = f'office:value-type="float" office:value="{value}"'
    elif isinstance(value, datetime.date):  # a datetime too
        typed = f'office:value-type="date" office:date-value="{value.isoformat()}"'
    elif isinstance(value, datetime.time):
        of_day = datetime.datetime.combine(datetime.date.min, value) - datetime.datetime.min
        typed = f'office:value-type="time" office:time-value="{_iso_duration(of_day)}"'
    elif isinstance(value, datetime.timedelta):
        typed = f'office:value-type="time" office:time-value="{_iso_duration(value)}"'
    elif isinstance(value, str):
        return (
            f'<table:table-cell{attributes} office:value-type="string">{_ods_text(value)}</table:table-cell>'
        )
    else:
        raise TypeError(f"cannot write {value!r} to a spreadsheet")
    return f"<table:table-cell{attributes} {typed}><text:p>{escape(str(value))}</text:p></table:table-cell>"


def _iso_duration(value: datetime.timedelta) -> str:
    """``PT25H30M00S`` as LibreOffice writes durations and times of day (hours past 24 allowed)."""
    sign = "-" if value < datetime.timedelta(0) else ""
    whole = abs(value)
    seconds = whole.days * 86400 + whole.seconds
    fraction = f".{whole.microseconds:06d}" if whole.microseconds else ""
    return f"{sign}PT{seconds // 3600:02d}H{seconds // 60 % 60:02d}M{seconds % 60:02d}{fraction}S"


def _ods_text(value: str) -> str:
    """Lines become paragraphs, and spaces past the first of a run (or leading) ``text:s``, since
    XML whitespace in OpenDocument text is collapsed."""
    paragraphs = []
    for line in value.split("\n"):
        text = re.sub(r"  +", lambda run: f' <text:s text:c="{len(run.group()) - 1}"/>', escape(line))
        if text.startswith(" "):
            text = "<text:s/>" + text[1:]
        paragraphs.append(f"<text:p>{text}</text:p>")
    return "".join(paragraphs)


# --- csv ------------------------------------------------------------------------------------------


def csv_bytes(rows: Grid, *, encoding: str = "utf-8", delimiter: str = ",", line_end: str = "\r\n") -> bytes:
    """Values as a spreadsheet exports them to CSV (``text_of``); ``utf-16`` and ``utf-8-sig`` write
    a byte order mark, as Python's codecs of those names do."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    for values in rows:
        writer.writerow([text_of(value) for value in values])
    return buffer.getvalue().encode(encoding)


def text_of(value: object) -> str:
    """How a value of a grid is written to CSV: ISO dates and times, durations as hours
    (``25:30:00``), whole numbers without a decimal point."""
    if isinstance(value, Formula):
        return text_of(value.result)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)


# --- larger sheets --------------------------------------------------------------------------------

TIMECARD_HEADER = ("Employee", "Date", "In", "Out", "Hours", "Rate", "Note", "Id")


def timecard_rows(count: int) -> list[list[object]]:
    """A header and ``count`` rows of one punch a day each, 8 columns, for benchmarks."""
    rows: list[list[object]] = [list(TIMECARD_HEADER)]
    start = datetime.date(2024, 1, 1)
    for number in range(1, count + 1):
        rows.append(
            [
                f"Worker {number % 50:02d}",
                start + datetime.timedelta(days=number % 300),
                datetime.time(8, number % 60),
                datetime.time(16, (number * 7) % 60),
                8.0,
                12.5,
                "ok" if number % 3 else None,
                number,
            ]
        )
    return rows
