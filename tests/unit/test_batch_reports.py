"""Batch reports: each format written to memory and read back with real readers (python-calamine,
the xlsx package's XML, csv, orjson), hostile names included; a big batch within bounded memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Generic, TypeVar

import orjson
import pytest
from python_calamine import CalamineWorkbook

from conveyor.batch_reports import (
    FILE_COLUMNS,
    MATCH_COLUMNS,
    BatchReport,
    BatchSummary,
    FileRow,
    Link,
    MatchRow,
    write_batch_csv,
    write_batch_json,
    write_batch_xlsx,
)
from conveyor.errors import LimitExceeded
from conveyor.reports import MAX_COLUMN_WIDTH, MAX_SHEET_LINKS, MAX_SHEET_ROWS, XlsxBook

T = TypeVar("T")
SHEETS = ["Summary", "Matches", "Files", "Unmatched targets"]
EVIL_FILE = "=cmd|' /C calc'!A0.pdf"
EVIL_CODE = "+HOLE-1"
EVIL_ERROR = "@SUM(1+1) is not a PDF"
CREATED = dt.datetime(2025, 3, 4, 9, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
FINISHED = dt.datetime(2025, 3, 4, 7, 20, 0, tzinfo=dt.UTC)
NS = {
    "main": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
Writer = Callable[[BatchReport, IO[bytes], Link], None]


def link(file_id: int) -> str:
    return f"https://conveyor.example.com/api/batches/9/files/{file_id}?expires=1767225600&signature={file_id:064x}"


def summary(**changes: object) -> BatchSummary:
    values: dict[str, object] = {
        "batch_id": 9,
        "status": "succeeded",
        "source": "/srv/drawings",
        "pattern": r"HOLE-\d+",
        "total": 4,
        "processed": 3,
        "failed": 1,
        "matches": 4,
        "targets": 5,
        "created_at": CREATED,
        "finished_at": FINISHED,
    } | changes
    return BatchSummary(**values)  # type: ignore[arg-type]


FILES = [
    FileRow(1, "area-1/DWG-001.pdf", "2 codes", ("HOLE-1", "HOLE-22"), None),
    FileRow(2, EVIL_FILE, "1 code", (EVIL_CODE,), None),
    FileRow(3, "2024-03-01", "no code", (), None),  # a date-like name must stay text
    FileRow(4, "broken.pdf", "failed", (), EVIL_ERROR),
]
MATCHES = [
    MatchRow("HOLE-1", "HOLE-1", "exact", 1, "area-1/DWG-001.pdf", 1, 1.0),
    MatchRow("HOLE-22", "HOLE-22", "exact", 1, "area-1/DWG-001.pdf", 2, 1.0),
    MatchRow(EVIL_CODE, "HOLE-1", "fuzzy", 2, EVIL_FILE, 3, 0.6),
    MatchRow("HOLE-8O", "HOLE-80", "fuzzy", 2, EVIL_FILE, 3, 0.75),
]
UNMATCHED = ["HOLE-404", "-HOLE-5"]


class Once(Generic[T]):
    """A row source that counts its calls, as the database-backed ones the caller passes."""

    def __init__(self, rows: Iterable[T]) -> None:
        self.rows = list(rows)
        self.calls = 0

    def __call__(self) -> Iterator[T]:
        self.calls += 1
        return iter(self.rows)


def sample(files: list[FileRow] = FILES, matches: list[MatchRow] = MATCHES) -> BatchReport:
    return BatchReport(summary(), Once(files), Once(matches), Once(UNMATCHED))


def written(writer: Writer, report: BatchReport, to: Link = link) -> bytes:
    """The bytes ``writer`` makes of ``report``, checking it read each row source at most once."""
    sources = [
        source
        for source in (report.files, report.matches, report.unmatched_targets)
        if isinstance(source, Once)
    ]
    for source in sources:
        source.calls = 0
    stream = io.BytesIO()
    writer(report, stream, to)
    assert all(source.calls <= 1 for source in sources)
    return stream.getvalue()


def sheet_xml(data: bytes) -> dict[str, str]:
    """Each sheet's XML by its name, through the workbook's relationships."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        book = ET.fromstring(archive.read("xl/workbook.xml"))
        rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        targets = {rel.get("Id"): rel.get("Target") for rel in rels.findall("rel:Relationship", NS)}
        return {
            str(sheet.get("name")): archive.read(f"xl/{targets[sheet.get(R_ID)]}").decode()
            for sheet in book.findall("main:sheets/main:sheet", NS)
        }


def hyperlinks(data: bytes, sheet_file: str) -> dict[str, str]:
    """The cell reference and URL of every hyperlink in one sheet (``sheet2.xml`` and so on)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = ET.fromstring(archive.read(f"xl/worksheets/{sheet_file}"))
        try:
            rels = ET.fromstring(archive.read(f"xl/worksheets/_rels/{sheet_file}.rels"))
        except KeyError:
            return {}
    urls = {rel.get("Id"): rel.get("Target") for rel in rels.findall("rel:Relationship", NS)}
    return {
        str(link.get("ref")): str(urls[link.get(R_ID)])
        for link in sheet.findall("main:hyperlinks/main:hyperlink", NS)
    }


def column_widths(xml: str) -> list[float]:
    widths: list[float] = []
    for low, high, width in re.findall(r'<col min="(\d+)" max="(\d+)" width="([\d.]+)"', xml):
        widths += [float(width)] * (int(high) - int(low) + 1)
    return widths


def test_xlsx_sheets_hold_the_batch_with_hostile_text_neutralised() -> None:
    data = written(write_batch_xlsx, sample())
    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    assert book.sheet_names == SHEETS
    assert book.get_sheet_by_name("Summary").to_python() == [
        ["field", "value"],
        ["batch", 9],
        ["status", "succeeded"],
        ["source", "/srv/drawings"],
        ["pattern", r"HOLE-\d+"],
        ["files total", 4],
        ["files processed", 3],
        ["files failed", 1],
        ["matches", 4],
        ["targets", 5],
        ["unmatched targets", 2],
        ["started", dt.datetime(2025, 3, 4, 7, 15, 30)],  # in UTC
        ["finished", dt.datetime(2025, 3, 4, 7, 20, 0)],
    ]
    assert book.get_sheet_by_name("Matches").to_python() == [
        list(MATCH_COLUMNS),
        ["HOLE-1", "area-1/DWG-001.pdf", 1, "open", "HOLE-1", "exact", 1],
        ["HOLE-22", "area-1/DWG-001.pdf", 2, "open", "HOLE-22", "exact", 1],
        ["'" + EVIL_CODE, "'" + EVIL_FILE, 3, "open", "HOLE-1", "fuzzy", 0.6],
        ["HOLE-8O", "'" + EVIL_FILE, 3, "open", "HOLE-80", "fuzzy", 0.75],
    ]
    assert book.get_sheet_by_name("Files").to_python() == [
        list(FILE_COLUMNS),
        ["area-1/DWG-001.pdf", "2 codes", "HOLE-1, HOLE-22", ""],
        ["'" + EVIL_FILE, "1 code", "'" + EVIL_CODE, ""],
        ["2024-03-01", "no code", "", ""],
        ["broken.pdf", "failed", "", "'" + EVIL_ERROR],
    ]
    assert book.get_sheet_by_name("Unmatched targets").to_python() == [
        ["target"],
        ["HOLE-404"],
        ["'-HOLE-5"],
    ]


def test_xlsx_sheets_have_frozen_headers_filters_widths_and_no_formulas() -> None:
    data = written(write_batch_xlsx, sample())
    sheets = sheet_xml(data)
    assert list(sheets) == SHEETS
    filters = {"Summary": "A1:B13", "Matches": "A1:G5", "Files": "A1:D5", "Unmatched targets": "A1:A3"}
    columns = {"Summary": 2, "Matches": 7, "Files": 4, "Unmatched targets": 1}
    for name, xml in sheets.items():
        assert not re.search(r"<f[ >]", xml), name
        assert '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>' in xml, name
        assert f'<autoFilter ref="{filters[name]}"/>' in xml, name
        widths = column_widths(xml)
        assert len(widths) == columns[name], name
        assert max(widths) <= MAX_COLUMN_WIDTH + 1, name
    matches = column_widths(sheets["Matches"])
    assert matches[1] > matches[2]  # file names are wider than page numbers
    assert matches[1] >= len(EVIL_FILE) + 1


def test_xlsx_link_cells_are_hyperlinks_to_each_rows_file() -> None:
    data = written(write_batch_xlsx, sample())
    assert hyperlinks(data, "sheet2.xml") == {
        "D2": link(1),
        "D3": link(1),
        "D4": link(2),
        "D5": link(2),
    }
    for other in ("sheet1.xml", "sheet3.xml", "sheet4.xml"):
        assert hyperlinks(data, other) == {}


def test_xlsx_writes_a_link_it_cannot_make_a_hyperlink_as_text() -> None:
    relative = sample(matches=MATCHES[:1])
    data = written(write_batch_xlsx, relative, to=lambda file_id: f"/api/batches/9/files/{file_id}?x=1")
    assert hyperlinks(data, "sheet2.xml") == {}
    rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("Matches").to_python()
    assert rows[1][3] == "/api/batches/9/files/1?x=1"
    hostile = written(write_batch_xlsx, sample(matches=MATCHES[:1]), to=lambda file_id: "=1+1")
    rows = CalamineWorkbook.from_filelike(io.BytesIO(hostile)).get_sheet_by_name("Matches").to_python()
    assert rows[1][3] == "'=1+1"


def test_an_empty_batch_still_has_every_sheet_with_its_header() -> None:
    report = BatchReport(
        summary(total=0, processed=0, failed=0, matches=0, targets=0, finished_at=None),
        Once([]),
        Once([]),
        Once([]),
    )
    data = written(write_batch_xlsx, report)
    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    assert book.sheet_names == SHEETS
    assert book.get_sheet_by_name("Matches").to_python() == [list(MATCH_COLUMNS)]
    assert book.get_sheet_by_name("Files").to_python() == [list(FILE_COLUMNS)]
    assert book.get_sheet_by_name("Unmatched targets").to_python() == [["target"]]
    rows = book.get_sheet_by_name("Summary").to_python()
    assert rows[-3:] == [
        ["unmatched targets", 0],
        ["started", dt.datetime(2025, 3, 4, 7, 15, 30)],
        ["finished", ""],
    ]
    for name, xml in sheet_xml(data).items():
        assert "<autoFilter ref=" in xml and 'state="frozen"' in xml, name
    csv_text = written(write_batch_csv, report).decode("utf-8-sig")
    assert csv_text == ",".join(MATCH_COLUMNS) + "\r\n"
    document = orjson.loads(written(write_batch_json, report))
    assert (document["matches"], document["files"], document["unmatched_targets"]) == ([], [], [])
    assert document["summary"]["finished_at"] is None


def test_csv_is_the_matches_table_with_links_and_neutralised_text() -> None:
    raw = written(write_batch_csv, sample())
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows == [
        list(MATCH_COLUMNS),
        ["HOLE-1", "area-1/DWG-001.pdf", "1", link(1), "HOLE-1", "exact", "1.0"],
        ["HOLE-22", "area-1/DWG-001.pdf", "2", link(1), "HOLE-22", "exact", "1.0"],
        ["'" + EVIL_CODE, "'" + EVIL_FILE, "3", link(2), "HOLE-1", "fuzzy", "0.6"],
        ["HOLE-8O", "'" + EVIL_FILE, "3", link(2), "HOLE-80", "fuzzy", "0.75"],
    ]


def test_json_carries_every_table_with_values_intact() -> None:
    document = orjson.loads(written(write_batch_json, sample()))
    assert list(document) == ["summary", "matches", "files", "unmatched_targets"]
    assert document["summary"] == {
        "batch_id": 9,
        "status": "succeeded",
        "source": "/srv/drawings",
        "pattern": r"HOLE-\d+",
        "total": 4,
        "processed": 3,
        "failed": 1,
        "matches": 4,
        "targets": 5,
        "created_at": "2025-03-04T09:15:30+02:00",
        "finished_at": "2025-03-04T07:20:00+00:00",
    }
    assert document["matches"][2] == {
        "code": EVIL_CODE,
        "file": EVIL_FILE,
        "page": 3,
        "link": link(2),
        "target": "HOLE-1",
        "kind": "fuzzy",
        "confidence": 0.6,
        "file_id": 2,
    }
    assert [match["link"] for match in document["matches"]] == [link(1), link(1), link(2), link(2)]
    assert document["files"][1] == {
        "file_id": 2,
        "file": EVIL_FILE,
        "status": "1 code",
        "codes": [EVIL_CODE],
        "error": None,
    }
    assert document["files"][3]["error"] == EVIL_ERROR
    assert document["unmatched_targets"] == UNMATCHED


def big_batch(files: int, matches: int) -> BatchReport:
    """``matches`` matches spread over ``files`` drawings, made as they are read (as rows streamed
    from a database would be), never held as a list."""

    def file_rows() -> Iterator[FileRow]:
        per_file = matches // files
        for file_id in range(files):
            codes = tuple(f"HOLE-{file_id * per_file + n}" for n in range(per_file))
            yield FileRow(file_id, f"area-{file_id % 40}/DWG-{file_id:05d}-rev-B.pdf", "N codes", codes, None)

    def match_rows() -> Iterator[MatchRow]:
        for n in range(matches):
            file_id = n * files // matches
            name = f"area-{file_id % 40}/DWG-{file_id:05d}-rev-B.pdf"
            yield MatchRow(f"HOLE-{n}", f"HOLE-{n}", "exact", file_id, name, 1 + n % 3, 1.0)

    def targets() -> Iterator[str]:
        return (f"HOLE-X{n}" for n in range(2000))

    batch = summary(total=files, processed=files, failed=0, matches=matches, targets=matches + 2000)
    return BatchReport(batch, file_rows, match_rows, targets)


@pytest.mark.slow
def test_a_50000_match_report_is_written_in_bounded_memory(tmp_path: Path) -> None:
    report = big_batch(files=6600, matches=50_000)
    target = tmp_path / "batch.xlsx"
    tracemalloc.start()
    try:
        with target.open("wb") as stream:
            write_batch_xlsx(report, stream, link)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Measured 32.6 MB, nearly all xlsxwriter's hyperlink table (about 650 bytes a link), which it
    # keeps until the sheet is closed and which stops growing at Excel's 65,530 links a sheet.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    book = CalamineWorkbook.from_path(str(target))
    rows = book.get_sheet_by_name("Matches").to_python()
    assert len(rows) == 50_001
    assert rows[-1][:4] == ["HOLE-49999", "area-39/DWG-06599-rev-B.pdf", 2, "open"]
    assert len(book.get_sheet_by_name("Files").to_python()) == 6601
    assert book.get_sheet_by_name("Summary").to_python()[10] == ["unmatched targets", 2000]


@pytest.mark.parametrize("writer", [write_batch_csv, write_batch_json])
def test_csv_and_json_of_50000_matches_stream_in_under_a_megabyte(writer: Writer, tmp_path: Path) -> None:
    report = big_batch(files=6600, matches=50_000)
    target = tmp_path / "batch.out"
    tracemalloc.start()
    try:
        with target.open("wb") as stream:
            writer(report, stream, link)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"peak {peak / 1e6:.2f} MB"  # measured 0.16 (csv) and 0.22 (json)
    assert target.stat().st_size > 50_000 * 100  # every match went through


@pytest.mark.slow
def test_matches_past_excels_hyperlink_limit_keep_their_url_as_text() -> None:
    count = MAX_SHEET_LINKS + 2
    data = written(write_batch_xlsx, big_batch(files=10, matches=count))  # no xlsxwriter warning either
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("xl/worksheets/sheet2.xml").decode()
    assert xml.count("<hyperlink ") == MAX_SHEET_LINKS
    rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("Matches").to_python()
    assert [row[3] for row in rows[MAX_SHEET_LINKS - 1 : MAX_SHEET_LINKS + 1]] == ["open", "open"]
    assert rows[-1][3] == link(9)  # the last two rows: the URL itself
    assert rows[-2][3] == link(9)


def test_a_sheet_refuses_rows_past_excels_last_row() -> None:
    stream = io.BytesIO()
    book = XlsxBook(stream)
    sheet = book.add_sheet("Matches", MATCH_COLUMNS)
    sheet.row = MAX_SHEET_ROWS - 1  # as if 1,048,574 rows were written
    sheet.append(["last"])
    with pytest.raises(LimitExceeded, match="sheet Matches: rows is 1048577, over the limit of 1048576"):
        sheet.append(["one too many"])
    book.close()
    with zipfile.ZipFile(stream) as archive:
        assert '<row r="1048576"' in archive.read("xl/worksheets/sheet1.xml").decode()
