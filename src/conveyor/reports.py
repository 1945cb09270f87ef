"""Exports of one job's results as xlsx, csv and json, safe to open in a spreadsheet.

A spreadsheet evaluates a cell that starts with ``=`` (and, in most of them, ``+ - @``, a tab or a
carriage return) as a formula, so a value such as ``=cmd|' /C calc'!A0`` in an uploaded file would
run when someone opens the export. Following OWASP's CSV-injection guidance, every text cell of the
xlsx and csv exports that starts with one of those characters gets a leading apostrophe, which
spreadsheets read as "this is text". The xlsx writer also writes every string with ``write_string``,
so nothing becomes a formula even if neutralising missed a case. JSON is for programs, which do not
evaluate cells: it carries the values unchanged, since altering them would corrupt the data.

The writers read the job's rows twice, each time in pages (once to learn the columns, once to write),
rather than holding a big job in memory; xlsxwriter's ``constant_memory`` mode keeps only the current
row of each sheet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Final, TypeVar

import orjson
import xlsxwriter
from sqlalchemy import select
from sqlalchemy.orm import Session
from xlsxwriter.worksheet import Worksheet

from conveyor.content import Finding, Record
from conveyor.errors import Conflict, NotFound
from conveyor.store.tables import FindingRow, Job, RecordRow

FORMATS: Final = ("xlsx", "csv", "json")
MEDIA_TYPES: Final = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
# OWASP's list, plus the full-width forms, which some spreadsheets fold to the ASCII ones.
FORMULA_TRIGGERS: Final = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
PAGE_ROWS: Final = 1000
FINDINGS_SHEET: Final = "Findings"
FINDING_COLUMNS: Final = ("rule", "severity", "message", "ref")
# Sheet names for kinds whose plural is not just an added "s".
SHEET_NAMES: Final = {"entry": "Entries", "week": "Weeks"}
# Pipelines whose CSV export is one kind of record only (the one a payroll clerk opens).
CSV_KINDS: Final = {"timecard": "entry"}
MAX_COLUMN_WIDTH: Final = 60
MIN_COLUMN_WIDTH: Final = 6
MAX_CELL_CHARS: Final = 32_767  # Excel's limit for one cell
MAX_EXACT_INTEGER: Final = 2**53  # larger integers would lose digits as Excel numbers: text instead
SHEET_NAME_CHARS: Final = 31
_BAD_SHEET_CHARS: Final = re.compile(r"[\[\]:*?/\\]")
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_NAIVE_DATETIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")

T = TypeVar("T")
ResultRow = TypeVar("ResultRow", RecordRow, FindingRow)


def neutralise(value: T) -> T:
    """The value, with a leading apostrophe if it is text a spreadsheet would take for a formula.

    Only text is touched: the number -2 stays a number, while the text ``"-2+3"`` (or ``"-2"``,
    which was text in the source too) becomes ``"'-2+3"``.
    """
    if isinstance(value, str) and value[:1] in FORMULA_TRIGGERS:
        return "'" + value  # type: ignore[return-value]  # T is str here
    return value


@dataclass(frozen=True)
class JobReport:
    """What the writers export: a job and two ways to read its rows from the start, in order.

    ``records`` and ``findings`` are called once per pass, so each must start over when called.
    """

    job_id: int
    pipeline: str
    records: Callable[[], Iterable[Record]]
    findings: Callable[[], Iterable[Finding]]


def load_report(session: Session, *, job_id: int) -> JobReport:
    """The report of a succeeded job, reading its rows (a duplicate job's: the earlier job's) from
    ``session`` in pages of ``PAGE_ROWS``; the session must stay open while a writer runs."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status != "succeeded":
        raise Conflict(f"job {job_id} is {job.status}; only a succeeded job has a report")
    results_job = job.duplicate_of if job.duplicate_of is not None else job.id

    def records() -> Iterator[Record]:
        for row in _pages(session, RecordRow, results_job):
            yield Record(row.kind, row.data, row.key)

    def findings() -> Iterator[Finding]:
        for row in _pages(session, FindingRow, results_job):
            yield Finding(row.rule, row.severity, row.message, row.ref)  # type: ignore[arg-type]  # the column holds Severity values

    return JobReport(job_id=job.id, pipeline=job.pipeline, records=records, findings=findings)


def _pages(session: Session, model: type[ResultRow], job_id: int) -> Iterator[ResultRow]:
    """Keyset pages by id, expunged as they go so the session does not keep every row."""
    cursor = 0
    while True:
        query = select(model).where(model.job_id == job_id, model.id > cursor).order_by(model.id)
        rows = list(session.scalars(query.limit(PAGE_ROWS)))
        for row in rows:
            session.expunge(row)
        yield from rows
        if len(rows) < PAGE_ROWS:
            return
        cursor = rows[-1].id


def _fields(record: Record) -> dict[str, Any]:
    """A record's data as columns; data that is not an object goes in one ``value`` column."""
    return record.data if isinstance(record.data, dict) else {"value": record.data}


def _as_text(value: Any) -> str:
    """A cell's text for values a cell cannot hold as they are: lists and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


# --- xlsx ----------------------------------------------------------------------------------------


@dataclass
class _Sheet:
    """One worksheet being written: its columns, next row and the widest text per column."""

    worksheet: Worksheet
    columns: list[str]
    row: int = 1
    widths: list[int] | None = None

    def __post_init__(self) -> None:
        self.widths = [len(name) for name in self.columns]


def write_xlsx(report: JobReport, stream: IO[bytes]) -> None:
    """One sheet per record kind (in order of first appearance) and a ``Findings`` sheet: a frozen
    header row, an autofilter, column widths from the content (capped), strings as text only,
    JSON numbers and booleans as such, ISO dates and naive date-times as Excel dates."""
    columns = _columns_by_kind(report.records())
    workbook = xlsxwriter.Workbook(
        stream, {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False}
    )
    formats = {
        "header": workbook.add_format({"bold": True}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
    }
    taken = {FINDINGS_SHEET.lower()}
    sheets: dict[str, _Sheet] = {}
    for kind, names in columns.items():
        name = _sheet_name(kind, taken)
        sheets[kind] = _Sheet(workbook.add_worksheet(name), ["key", *names])
    findings = _Sheet(workbook.add_worksheet(FINDINGS_SHEET), list(FINDING_COLUMNS))
    for sheet in [*sheets.values(), findings]:
        for column, title in enumerate(sheet.columns):
            _write_cell(sheet, 0, column, title, formats, header=True)
    for record in report.records():
        sheet = sheets[record.kind]
        data = _fields(record)
        _write_cell(sheet, sheet.row, 0, record.key, formats)
        for column, name in enumerate(sheet.columns[1:], start=1):
            _write_cell(sheet, sheet.row, column, data.get(name), formats)
        sheet.row += 1
    for finding in report.findings():
        values = (finding.rule, finding.severity, finding.message, finding.ref)
        for column, value in enumerate(values):
            _write_cell(findings, findings.row, column, value, formats)
        findings.row += 1
    for sheet in [*sheets.values(), findings]:
        _finish(sheet)
    workbook.close()


def _columns_by_kind(records: Iterable[Record]) -> dict[str, list[str]]:
    """The data fields of each kind, in order of first appearance (the first pass)."""
    columns: dict[str, dict[str, None]] = {}
    for record in records:
        seen = columns.setdefault(record.kind, {})
        for name in _fields(record):
            seen.setdefault(name, None)
    return {kind: list(names) for kind, names in columns.items()}


def _sheet_name(kind: str, taken: set[str]) -> str:
    """A valid, unique sheet name (Excel: at most 31 characters, none of ``[]:*?/\\``, unique
    ignoring case)."""
    base = SHEET_NAMES.get(kind) or _BAD_SHEET_CHARS.sub("_", kind).strip("'") or "Records"
    base = base[:SHEET_NAME_CHARS]
    name, number = base, 1
    while name.lower() in taken:
        number += 1
        suffix = f" ({number})"
        name = base[: SHEET_NAME_CHARS - len(suffix)] + suffix
    taken.add(name.lower())
    return name


def _write_cell(
    sheet: _Sheet, row: int, column: int, value: Any, formats: dict[str, Any], *, header: bool = False
) -> None:
    worksheet = sheet.worksheet
    width = 0
    if value is None:
        return
    if isinstance(value, bool):
        worksheet.write_boolean(row, column, value)
        width = 5
    elif isinstance(value, int | float | Decimal) and _is_exact_number(value):
        worksheet.write_number(row, column, value)
        width = len(str(value))
    elif isinstance(value, str) and not header and (moment := _iso_moment(value)) is not None:
        is_date = not isinstance(moment, dt.datetime)
        worksheet.write_datetime(row, column, moment, formats["date" if is_date else "datetime"])
        width = 10 if is_date else 19
    else:
        text = neutralise(_as_text(value))[:MAX_CELL_CHARS]
        worksheet.write_string(row, column, text, formats["header"] if header else None)
        width = max((len(line) for line in text.splitlines()), default=0)
    assert sheet.widths is not None
    sheet.widths[column] = max(sheet.widths[column], width)


def _is_exact_number(value: float | Decimal) -> bool:
    """Finite and, for integers, small enough that Excel's doubles keep every digit."""
    if isinstance(value, int):
        return abs(value) <= MAX_EXACT_INTEGER
    if isinstance(value, Decimal):
        return value.is_finite()
    return value == value and abs(value) != float("inf")


def _iso_moment(text: str) -> dt.date | dt.datetime | None:
    """An ISO date or a date-time without a time zone (Excel has no zones: an aware one stays text)."""
    try:
        if _ISO_DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
        if _ISO_NAIVE_DATETIME.fullmatch(text):
            return dt.datetime.fromisoformat(text)
    except ValueError:  # 2024-02-30 and the like: text
        return None
    return None


def _finish(sheet: _Sheet) -> None:
    worksheet = sheet.worksheet
    assert sheet.widths is not None
    for column, width in enumerate(sheet.widths):
        worksheet.set_column(column, column, min(max(width + 2, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH))
    worksheet.freeze_panes(1, 0)
    worksheet.autofilter(0, 0, max(sheet.row - 1, 0), len(sheet.columns) - 1)


# --- csv -----------------------------------------------------------------------------------------


def write_csv(report: JobReport, stream: IO[bytes]) -> None:
    """One table, one row per record: ``kind``, ``key``, then the union of the data fields in order
    of first appearance. For a timecard job only the entries (see ``CSV_KINDS``). Findings are not
    in it (they have other columns); the xlsx and json exports carry them.

    UTF-8 with a byte-order mark, which Excel needs to read UTF-8, CRLF line ends as RFC 4180 says,
    text neutralised. Lists and objects are JSON text; a missing field and null are empty.
    """
    only = CSV_KINDS.get(report.pipeline)

    def records() -> Iterator[Record]:
        return (record for record in report.records() if only is None or record.kind == only)

    fields: dict[str, None] = {}
    for record in records():
        for name in _fields(record):
            fields.setdefault(name, None)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([neutralise(name) for name in ("kind", "key", *fields)])
        for record in records():
            data = _fields(record)
            cells = [_csv_cell(data.get(name)) for name in fields]
            writer.writerow([_csv_cell(record.kind), _csv_cell(record.key), *cells])
    finally:
        text.detach()  # the caller owns the stream


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return neutralise(_as_text(value))


# --- json ----------------------------------------------------------------------------------------


def write_json(report: JobReport, stream: IO[bytes]) -> None:
    """``{"job_id", "pipeline", "records": [{"kind", "key", "data"}], "findings": [{"rule",
    "severity", "message", "ref"}]}``, written a row at a time; values as they are (not
    neutralised: JSON is read by programs, which evaluate nothing, and must get the data intact)."""
    stream.write(b'{"job_id":' + orjson.dumps(report.job_id))
    stream.write(b',"pipeline":' + orjson.dumps(report.pipeline) + b',"records":[')
    _write_array(stream, (record.as_json() for record in report.records()))
    stream.write(b'],"findings":[')
    _write_array(stream, (finding.as_json() for finding in report.findings()))
    stream.write(b"]}\n")


def _write_array(stream: IO[bytes], items: Iterable[dict[str, Any]]) -> None:
    for index, item in enumerate(items):
        if index:
            stream.write(b",")
        stream.write(orjson.dumps(item, default=str))


WRITERS: Final[dict[str, Callable[[JobReport, IO[bytes]], None]]] = {
    "xlsx": write_xlsx,
    "csv": write_csv,
    "json": write_json,
}


def write_report(report: JobReport, stream: IO[bytes], *, format: str) -> None:
    """Write ``report`` in ``format`` (one of ``FORMATS``)."""
    WRITERS[format](report, stream)
