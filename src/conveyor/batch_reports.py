"""The report of a codescan batch as xlsx, csv and json, with a download link for every match.

The caller loads the batch and hands over ways to stream its rows (``BatchReport``) and a ``Link``
that turns a file id into a signed download URL (``signing``); nothing here touches the database.
The cell rules (formula neutralising, text never a formula, widths, frozen header, filters, CSV
dialect) are the job reports' own, from ``reports``.

Each writer calls each row source once and writes as it reads: xlsxwriter's ``constant_memory``
mode keeps one row per sheet, CSV and JSON go straight to the stream. The one thing that grows is
xlsxwriter's list of hyperlinks, which it must hold until the sheet is closed; Excel allows 65,530
per sheet, and the matches after that carry their URL as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, Final

import orjson

from conveyor.reports import Hyperlink, XlsxBook, csv_table, write_json_array

MATCH_COLUMNS: Final = ("code", "file", "page", "link", "target", "kind", "confidence")
FILE_COLUMNS: Final = ("file", "status", "codes", "error")
SUMMARY_COLUMNS: Final = ("field", "value")
UNMATCHED_COLUMNS: Final = ("target",)
LINK_TEXT: Final = "open"

Link = Callable[[int], str]
"""A file id's download URL, signed by the caller: absolute (``https://host/...``) for the xlsx
hyperlinks, which a spreadsheet opens without knowing the server; a root-relative one is written as
text there."""


@dataclass(frozen=True, slots=True)
class BatchSummary:
    batch_id: int
    status: str
    source: str
    pattern: str
    total: int
    processed: int
    failed: int
    matches: int
    targets: int
    created_at: dt.datetime
    finished_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class FileRow:
    file_id: int
    file: str
    status: str  # "no code" | "1 code" | "N codes" | "failed"
    codes: tuple[str, ...]
    error: str | None


@dataclass(frozen=True, slots=True)
class MatchRow:
    code: str
    target: str
    kind: str  # "exact" | "fuzzy"
    file_id: int
    file: str
    page: int
    confidence: float


@dataclass(frozen=True)
class BatchReport:
    """A batch and its rows; each callable is called once per writer and may stream from the
    database."""

    summary: BatchSummary
    files: Callable[[], Iterable[FileRow]]
    matches: Callable[[], Iterable[MatchRow]]
    unmatched_targets: Callable[[], Iterable[str]]


def write_batch_xlsx(report: BatchReport, stream: IO[bytes], link: Link) -> None:
    """Sheets ``Summary`` (field, value), ``Matches`` (code, file, page, link, target, kind,
    confidence; ``link`` a hyperlink "open" to ``link(file_id)``), ``Files`` (file, status, codes
    comma-joined, error) and ``Unmatched targets`` (target). Names, codes and errors are text, never
    dates or formulas."""
    book = XlsxBook(stream)
    summary = book.add_sheet("Summary", SUMMARY_COLUMNS)
    matches = book.add_sheet("Matches", MATCH_COLUMNS)
    files = book.add_sheet("Files", FILE_COLUMNS)
    unmatched = book.add_sheet("Unmatched targets", UNMATCHED_COLUMNS)
    for match in report.matches():
        matches.append(
            (
                match.code,
                match.file,
                match.page,
                Hyperlink(link(match.file_id), LINK_TEXT),
                match.target,
                match.kind,
                match.confidence,
            )
        )
    for row in report.files():
        files.append((row.file, row.status, ", ".join(row.codes), row.error))
    unmatched_count = 0
    for target in report.unmatched_targets():
        unmatched.append((target,))
        unmatched_count += 1
    # Filled last, though it is the first sheet, because it counts the unmatched targets.
    for field, value in _summary_fields(report.summary, unmatched_count):
        summary.append((field, value))
    book.close()


def _summary_fields(summary: BatchSummary, unmatched: int) -> list[tuple[str, Any]]:
    return [
        ("batch", summary.batch_id),
        ("status", summary.status),
        ("source", summary.source),
        ("pattern", summary.pattern),
        ("files total", summary.total),
        ("files processed", summary.processed),
        ("files failed", summary.failed),
        ("matches", summary.matches),
        ("targets", summary.targets),
        ("unmatched targets", unmatched),
        ("started", summary.created_at),
        ("finished", summary.finished_at),
    ]


def write_batch_csv(report: BatchReport, stream: IO[bytes], link: Link) -> None:
    """The matches as one table: code, file, page, link (the URL), target, kind, confidence."""
    with csv_table(stream) as write_row:
        write_row(MATCH_COLUMNS)
        for match in report.matches():
            write_row(
                (
                    match.code,
                    match.file,
                    match.page,
                    link(match.file_id),
                    match.target,
                    match.kind,
                    match.confidence,
                )
            )


def write_batch_json(report: BatchReport, stream: IO[bytes], link: Link) -> None:
    """``{"summary": {...}, "matches": [...], "files": [...], "unmatched_targets": [...]}``, one
    row at a time, values as they are (JSON is for programs; see ``reports``). Matches and files
    carry ``file_id`` too, and each match its ``link``."""
    stream.write(b'{"summary":' + orjson.dumps(report.summary) + b',"matches":[')
    write_json_array(stream, (_match_json(match, link) for match in report.matches()))
    stream.write(b'],"files":[')
    write_json_array(stream, (_file_json(row) for row in report.files()))
    stream.write(b'],"unmatched_targets":[')
    write_json_array(stream, report.unmatched_targets())
    stream.write(b"]}\n")


def _match_json(match: MatchRow, link: Link) -> dict[str, Any]:
    return {
        "code": match.code,
        "file": match.file,
        "page": match.page,
        "link": link(match.file_id),
        "target": match.target,
        "kind": match.kind,
        "confidence": match.confidence,
        "file_id": match.file_id,
    }


def _file_json(row: FileRow) -> dict[str, Any]:
    return {
        "file_id": row.file_id,
        "file": row.file,
        "status": row.status,
        "codes": list(row.codes),
        "error": row.error,
    }


BATCH_WRITERS: Final[dict[str, Callable[[BatchReport, IO[bytes], Link], None]]] = {
    "xlsx": write_batch_xlsx,
    "csv": write_batch_csv,
    "json": write_batch_json,
}
