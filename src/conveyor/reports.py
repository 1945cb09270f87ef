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
row of each sheet. ``XlsxBook``, ``csv_table`` and ``write_json_array`` are the cell rules every
report kind shares (the batch reports in ``batch_reports`` too).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Final, TypeVar

import orjson
import xlsxwriter
from sqlalchemy import select
from sqlalchemy.orm import Session
from xlsxwriter.url import Url
from xlsxwriter.worksheet import Worksheet

from conveyor.content import Finding, Record
from conveyor.errors import Conflict, LimitExceeded, NotFound
from conveyor.store.tables import FindingRow, Job, RecordRow

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
MAX_SHEET_ROWS: Final = 1_048_576  # Excel's rows per sheet, the header included
MAX_SHEET_LINKS: Final = 65_530  # Excel's hyperlinks per sheet
MAX_URL_CHARS: Final = 2079  # Excel's longest hyperlink address (UTF-16 units)
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


@dataclass(frozen=True, slots=True)
class Hyperlink:
    """A cell that opens ``url`` and shows ``text``."""

    url: str
    text: str


class XlsxBook:
    """An xlsx workbook written in constant memory, shared by every report kind.

    Sheets are added with their header row; rows are then appended in order (sheets may be filled
    in any order, each keeps its own row). ``close`` gives every sheet a frozen header row, an
    autofilter and widths fitted to the widest text (capped), and writes the file.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._workbook = xlsxwriter.Workbook(
            stream, {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False}
        )
        self._formats = {
            "header": self._workbook.add_format({"bold": True}),
            "date": self._workbook.add_format({"num_format": "yyyy-mm-dd"}),
            "datetime": self._workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            "utc": self._workbook.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"'}),
            "link": self._workbook.add_format({"font_color": "blue", "underline": 1}),
        }
        self._sheets: list[XlsxSheet] = []

    def add_sheet(self, name: str, columns: Sequence[str], *, dates_from_text: bool = False) -> XlsxSheet:
        """A new sheet with ``columns`` as its header. With ``dates_from_text``, ISO dates and naive
        date-times written as text become Excel dates (for data read from files, not for names)."""
        worksheet = self._workbook.add_worksheet(name)
        sheet = XlsxSheet(worksheet, list(columns), self._formats, dates_from_text=dates_from_text)
        self._sheets.append(sheet)
        return sheet

    def close(self) -> None:
        for sheet in self._sheets:
            sheet.finish()
        self._workbook.close()


class XlsxSheet:
    """One worksheet being written, row by row: its next row, the widest text per column and the
    number of hyperlinks so far.

    Strings are always written as strings (never formulas) after ``neutralise``; numbers that
    Excel holds exactly and booleans as such; dates and date-times as Excel dates (aware ones in
    UTC, since Excel has no time zones); a ``Hyperlink`` as a real link while Excel allows one
    (http or https, at most ``MAX_URL_CHARS``, at most ``MAX_SHEET_LINKS`` per sheet) and as its
    URL in text after that, so a big report keeps every address rather than silently losing some.
    """

    def __init__(
        self, worksheet: Worksheet, columns: list[str], formats: dict[str, Any], *, dates_from_text: bool
    ) -> None:
        self.worksheet = worksheet
        self.columns = columns
        self.row = 1
        self.links = 0
        self._last_link: tuple[Hyperlink, Url] | None = None
        self._formats = formats
        self._dates_from_text = dates_from_text
        header = formats["header"]
        self.widths = [self._write_text(0, column, title, header) for column, title in enumerate(columns)]

    def append(self, values: Iterable[Any]) -> None:
        """Write ``values`` as the next row; ``None`` leaves a cell empty."""
        if self.row >= MAX_SHEET_ROWS:
            raise LimitExceeded("rows", self.row + 1, MAX_SHEET_ROWS, f"sheet {self.worksheet.name}")
        for column, value in enumerate(values):
            self._write_cell(column, value)
        self.row += 1

    def _write_cell(self, column: int, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            self.worksheet.write_boolean(self.row, column, value)
            width = 5
        elif isinstance(value, int | float | Decimal) and _is_exact_number(value):
            self.worksheet.write_number(self.row, column, value)
            width = len(str(value))
        elif isinstance(value, Hyperlink):
            width = self._write_link(column, value)
        elif isinstance(value, dt.date):
            width = self._write_moment(column, value)
        elif self._dates_from_text and isinstance(value, str) and (moment := _iso_moment(value)):
            width = self._write_moment(column, moment)
        else:
            width = self._write_text(self.row, column, _as_text(value))
        self.widths[column] = max(self.widths[column], width)

    def _write_text(self, row: int, column: int, text: str, cell_format: Any = None) -> int:
        text = neutralise(text)[:MAX_CELL_CHARS]
        self.worksheet.write_string(row, column, text, cell_format)
        return max((len(line) for line in text.splitlines()), default=0)

    def _write_link(self, column: int, link: Hyperlink) -> int:
        if self.links >= MAX_SHEET_LINKS or not _is_linkable(link.url):
            return self._write_text(self.row, column, link.url)
        if self._last_link is None or self._last_link[0] != link:
            # One xlsxwriter Url for a run of cells with the same link (a file's matches): the
            # sheet holds every link it writes until it closes.
            url = Url(link.url)
            url.text = neutralise(link.text)
            self._last_link = (link, url)
        self.links += 1
        self.worksheet.write_url(self.row, column, self._last_link[1], self._formats["link"])
        return len(link.text)

    def _write_moment(self, column: int, moment: dt.date | dt.datetime) -> int:
        if isinstance(moment, dt.datetime):
            name = "datetime"
            if moment.tzinfo is not None:
                moment, name = moment.astimezone(dt.UTC).replace(tzinfo=None), "utc"
            self.worksheet.write_datetime(self.row, column, moment, self._formats[name])
            return 23 if name == "utc" else 19
        self.worksheet.write_datetime(self.row, column, moment, self._formats["date"])
        return 10

    def finish(self) -> None:
        worksheet = self.worksheet
        for column, width in enumerate(self.widths):
            worksheet.set_column(column, column, min(max(width + 2, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH))
        worksheet.freeze_panes(1, 0)
        worksheet.autofilter(0, 0, max(self.row - 1, 0), len(self.columns) - 1)


def _is_linkable(url: str) -> bool:
    """Whether Excel can hold ``url`` as a hyperlink: an absolute web address within its length."""
    return url.startswith(("https://", "http://")) and len(url.encode("utf-16-le")) // 2 <= MAX_URL_CHARS


def write_xlsx(report: JobReport, stream: IO[bytes]) -> None:
    """One sheet per record kind (in order of first appearance) and a ``Findings`` sheet: a frozen
    header row, an autofilter, column widths from the content (capped), strings as text only,
    JSON numbers and booleans as such, ISO dates and naive date-times as Excel dates."""
    columns = _columns_by_kind(report.records())
    book = XlsxBook(stream)
    taken = {FINDINGS_SHEET.lower()}
    sheets: dict[str, XlsxSheet] = {}
    for kind, names in columns.items():
        sheets[kind] = book.add_sheet(_sheet_name(kind, taken), ["key", *names], dates_from_text=True)
    findings = book.add_sheet(FINDINGS_SHEET, FINDING_COLUMNS, dates_from_text=True)
    for record in report.records():
        sheet = sheets[record.kind]
        data = _fields(record)
        sheet.append([record.key, *(data.get(name) for name in sheet.columns[1:])])
    for finding in report.findings():
        findings.append((finding.rule, finding.severity, finding.message, finding.ref))
    book.close()


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


# --- csv -----------------------------------------------------------------------------------------


def write_csv(report: JobReport, stream: IO[bytes]) -> None:
    """One table, one row per record: ``kind``, ``key``, then the union of the data fields in order
    of first appearance. For a timecard job only the entries (see ``CSV_KINDS``). Findings are not
    in it (they have other columns); the xlsx and json exports carry them. Cells as ``csv_table``
    writes them; a missing field is empty like null.
    """
    only = CSV_KINDS.get(report.pipeline)

    def records() -> Iterator[Record]:
        return (record for record in report.records() if only is None or record.kind == only)

    fields: dict[str, None] = {}
    for record in records():
        for name in _fields(record):
            fields.setdefault(name, None)
    with csv_table(stream) as write_row:
        write_row(("kind", "key", *fields))
        for record in records():
            data = _fields(record)
            write_row([record.kind, record.key, *(data.get(name) for name in fields)])


@contextmanager
def csv_table(stream: IO[bytes]) -> Iterator[Callable[[Iterable[Any]], None]]:
    """A function writing one row of values to ``stream`` as CSV: UTF-8 with a byte-order mark,
    which Excel needs to read UTF-8, CRLF line ends as RFC 4180 says, text neutralised, booleans as
    ``true``/``false``, lists and objects as JSON text, ``None`` empty. The stream stays open."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\r\n")

    def write_row(values: Iterable[Any]) -> None:
        writer.writerow([_csv_cell(value) for value in values])

    try:
        yield write_row
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
    write_json_array(stream, (record.as_json() for record in report.records()))
    stream.write(b'],"findings":[')
    write_json_array(stream, (finding.as_json() for finding in report.findings()))
    stream.write(b"]}\n")


def write_json_array(stream: IO[bytes], items: Iterable[Any]) -> None:
    """The items of a JSON array, comma-separated, one at a time (the brackets are the caller's)."""
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
    """Write ``report`` in ``format`` (a key of ``MEDIA_TYPES``)."""
    WRITERS[format](report, stream)
