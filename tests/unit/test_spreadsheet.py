"""The spreadsheet extractor on files generated in code: one logical sheet in every format, exact
dates and times, references, formulas' cached values, CSV encodings and delimiters, and files that are
damaged, disguised, encrypted or too big."""

from __future__ import annotations

import datetime
import io
import pickle
import random
import time
import zipfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import xlsxwriter

from conveyor.content import Limits
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors import spreadsheet
from conveyor.extractors.isolation import Deadline, ParserCrashed, Sandbox
from conveyor.extractors.sniff import (
    CSV,
    HEAD_BYTES,
    ODS,
    OOXML_ENCRYPTED,
    TEXT,
    TSV,
    UNKNOWN,
    XLS,
    XLSM,
    XLSX,
    ZIP,
    sniff,
)
from conveyor.extractors.spreadsheet import (
    Cell,
    CellValue,
    Sheet,
    Workbook,
    cell_text,
    column_letters,
    read_workbook,
)
from tests.sheets import (
    Formula,
    csv_bytes,
    ods_bytes,
    ods_package,
    text_of,
    xls_bytes,
    xlsm_bytes,
    xlsx_bytes,
)

D, T, DT, TD = datetime.date, datetime.time, datetime.datetime, datetime.timedelta
LIMITS = Limits()

# One timecard-like sheet holding every kind of value; durations are over a day because an ODS
# duration under a day is indistinguishable from a time of day (see test_ods_short_durations...).
TIMECARD: list[list[object]] = [
    ["Employee", "Date", "In", "Out", "Week total", "Hours", "Rate", "Approved", "Note"],
    [
        "Zoë Ødegaard",
        D(2024, 2, 29),
        T(7, 45),
        DT(2024, 3, 1, 6, 15),
        TD(hours=40, minutes=30),
        8.5,
        7.25,
        True,
        None,
    ],
    [
        "O'Brien, Pat",
        D(1999, 12, 31),
        T(23, 59, 59),
        DT(2000, 1, 1, 0, 0, 1),
        TD(days=2, seconds=1),
        0.1,
        1234.5678,
        False,
        "night shift",
    ],
    [None, None, None, None, None, None, None, None, "two  spaces\nand a second line"],
    ["Merged label", None, D(1900, 3, 1), None, None, 40, -12.75, None, None],
    [None, None, None, None, None, Decimal("0.25"), None, None, "last"],
]
MERGED = [(4, 0, 5, 1)]
SECOND_SHEET = "My Sheet"
SECOND: list[list[object]] = [[None, "x"], [1.5, None]]


def expected_rows(grid: list[list[object]]) -> list[list[CellValue]]:
    """What a workbook reader gives back: the same values, Decimals as floats."""
    return [[float(value) if isinstance(value, Decimal) else value for value in row] for row in grid]  # type: ignore[misc]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(path: Path, media_type: str | None = None, **options: str) -> Workbook:
    """Sniffed as the pipelines sniff, unless the test says what the caller claims."""
    if media_type is None:
        head = path.read_bytes()[:HEAD_BYTES]
        media_type = sniff(head, path.name, lambda: path.open("rb")).media_type
    return read_workbook(str(path), media_type, path.name, LIMITS, **options)


WRITERS: dict[str, tuple[Callable[..., bytes], str]] = {
    "xlsx": (xlsx_bytes, XLSX),
    "xlsm": (xlsm_bytes, XLSM),
    "xls": (xls_bytes, XLS),
    "ods": (ods_bytes, ODS),
}


@pytest.mark.parametrize("extension", list(WRITERS))
def test_the_same_sheet_reads_back_alike_in_every_workbook_format(tmp_path: Path, extension: str) -> None:
    writer, media_type = WRITERS[extension]
    data = writer({"Hours": TIMECARD, SECOND_SHEET: SECOND}, merged={"Hours": MERGED}, hidden={SECOND_SHEET})
    # Named without an extension, as blobs are: the reader must go by the sniffed type alone.
    workbook = read(write(tmp_path, "upload", data))
    assert workbook.media_type == media_type
    hours, second = workbook.sheets
    assert (hours.name, hours.hidden, second.name, second.hidden) == ("Hours", False, SECOND_SHEET, True)
    assert hours.rows == expected_rows(TIMECARD)
    assert second.rows == expected_rows(SECOND)
    assert hours.merged == MERGED
    assert hours.cell(1, 4) == Cell(1, 4, TD(hours=40, minutes=30), "Hours!E2")
    assert second.cell(1, 0).ref == "'My Sheet'!A2"


def test_the_same_sheet_as_csv_reads_back_as_its_text(tmp_path: Path) -> None:
    workbook = read(write(tmp_path, "hours.csv", csv_bytes(TIMECARD)))
    assert workbook.media_type == CSV
    (sheet,) = workbook.sheets
    assert sheet.name == "hours"
    assert sheet.rows == [[text_of(value) or None for value in row] for row in TIMECARD]
    assert sheet.rows[1][4] == "40:30:00"
    assert sheet.cell(2, 0) == Cell(2, 0, "O'Brien, Pat", "hours!A3")


def test_a_workbook_crosses_the_process_boundary_intact(tmp_path: Path, sandbox: Sandbox) -> None:
    path = write(tmp_path, "hours.xlsx", xlsx_bytes({"Hours": TIMECARD}, merged={"Hours": MERGED}))
    here = read(path)
    there = sandbox.run(
        read_workbook, str(path), XLSX, path.name, LIMITS, deadline=Deadline.start(30), subject="x"
    )
    assert there == here == pickle.loads(pickle.dumps(here))


# --- dates and times ------------------------------------------------------------------------------

MINUTES = [T(minute // 60, minute % 60) for minute in range(24 * 60)]
SECONDS = [T(hour, (hour * 7) % 60, second) for hour in range(24) for second in range(0, 60, 7)]
DATES = [D(1900, 3, 1) + TD(days=days) for days in range(0, 2_958_000, 9_973)] + [D(9999, 12, 31)]
MOMENTS = [DT(2024, 2, 29, 0, 0, 1) + TD(seconds=seconds) for seconds in range(0, 86_400 * 3, 3_607)]


@pytest.mark.parametrize(
    ("extension", "options"),
    [("xlsx", {}), ("xlsx", {"date_1904": True}), ("xls", {}), ("ods", {})],
    ids=["xlsx-1900", "xlsx-1904", "xls", "ods"],
)
def test_dates_and_times_come_back_exact_to_the_second(
    tmp_path: Path, extension: str, options: dict[str, bool]
) -> None:
    dates = [date for date in DATES if date.year >= 1904] if options else DATES  # 1904: none before
    columns: list[list[object]] = [list(MINUTES), list(SECONDS), list(dates), list(MOMENTS)]
    height = max(len(column) for column in columns)
    grid = [[column[row] if row < len(column) else None for column in columns] for row in range(height)]
    writer = WRITERS[extension][0]
    (sheet,) = read(write(tmp_path, f"times.{extension}", writer({"Times": grid}, **options))).sheets
    assert [row[0] for row in sheet.rows] == MINUTES
    assert [row[1] for row in sheet.rows[: len(SECONDS)]] == SECONDS
    assert [row[2] for row in sheet.rows[: len(dates)]] == dates
    # a date-time at exactly midnight reads as a date; none of these is at midnight
    assert [row[3] for row in sheet.rows[: len(MOMENTS)]] == MOMENTS


def test_a_serial_number_formatted_as_a_date_reads_as_one(tmp_path: Path) -> None:
    grid: list[list[object]] = [[45351, 45351.75, 0.3125, 1.5, 45351]]
    formats = {"S": {(0, 0): "dd/mm/yyyy", (0, 1): "d mmm yy h:mm", (0, 2): "h:mm AM/PM", (0, 3): "[mm]:ss"}}
    (sheet,) = read(write(tmp_path, "serials.xlsx", xlsx_bytes({"S": grid}, formats=formats))).sheets
    assert sheet.rows == [[D(2024, 2, 29), DT(2024, 2, 29, 18), T(7, 30), TD(days=1, hours=12), 45351.0]]


def test_ods_short_durations_read_as_times_of_day_and_long_ones_as_durations(tmp_path: Path) -> None:
    grid: list[list[object]] = [[TD(hours=7, minutes=30), TD(hours=24), TD(hours=-1, minutes=-15)]]
    (sheet,) = read(write(tmp_path, "durations.ods", ods_bytes({"D": grid}))).sheets
    assert sheet.rows == [[T(7, 30), TD(days=1), TD(hours=-1, minutes=-15)]]


def test_formulas_read_as_their_cached_results(tmp_path: Path) -> None:
    grid: list[list[object]] = [
        [7.5, Formula("=A1*2", 15), Formula('="x"&"y"', "xy"), Formula("=DATE(2024,3,1)", D(2024, 3, 1))],
        [Formula("=A1>1", True), Formula("=B1-A1", 7.5), None, Formula("=TIME(8,30,0)", T(8, 30))],
    ]
    expected = [[7.5, 15, "xy", D(2024, 3, 1)], [True, 7.5, None, T(8, 30)]]
    for extension in ("xlsx", "ods"):
        data = WRITERS[extension][0]({"F": grid})
        (sheet,) = read(write(tmp_path, f"formulas.{extension}", data)).sheets
        assert sheet.rows == expected, extension


# --- sheets and references ------------------------------------------------------------------------


def test_hidden_sheets_are_read_and_chart_sheets_skipped(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.add_worksheet("Data").write_column(0, 0, [1, 2, 3])
    chart = book.add_chart({"type": "column"})
    chart.add_series({"values": "=Data!$A$1:$A$3"})
    book.add_chartsheet("Chart").set_chart(chart)
    secret = book.add_worksheet("Secret")
    secret.write(0, 0, "hidden value")
    secret.hide()
    book.close()
    workbook = read(write(tmp_path, "chart.xlsx", buffer.getvalue()))
    assert [(sheet.name, sheet.hidden) for sheet in workbook.sheets] == [("Data", False), ("Secret", True)]
    assert workbook.sheets[1].rows == [["hidden value"]]


def test_rows_start_at_a1_whatever_the_first_used_cell(tmp_path: Path) -> None:
    grid: list[list[object]] = [[], [], [None, None, "C3"], [None, None, None, "D4"]]
    for extension in ("xlsx", "xls", "ods"):
        (sheet,) = read(write(tmp_path, f"offset.{extension}", WRITERS[extension][0]({"S": grid}))).sheets
        assert sheet.rows == [[None] * 4, [None] * 4, [None, None, "C3", None], [None, None, None, "D4"]]
        assert sheet.cell(2, 2) == Cell(2, 2, "C3", "S!C3")
        assert [cell.ref for cell in sheet.cells()] == ["S!C3", "S!D4"]


def test_references_quote_sheet_names_the_way_excel_does() -> None:
    def ref(name: str) -> str:
        return Sheet(name, []).ref(11, 2)

    assert ref("Sheet1") == "Sheet1!C12"
    assert ref("Blätt_1") == "Blätt_1!C12"
    assert ref("My Sheet") == "'My Sheet'!C12"
    assert ref("O'Brien") == "'O''Brien'!C12"
    assert ref("2024") == "'2024'!C12"
    assert ref("A1") == "'A1'!C12"  # would read as a cell
    assert ref("R2C3") == "'R2C3'!C12"  # would read as an R1C1 cell
    assert ref("Q1-Q2") == "'Q1-Q2'!C12"
    assert [column_letters(n) for n in (0, 25, 26, 51, 701, 702, 16383)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "ZZ",
        "AAA",
        "XFD",
    ]


def test_a_cell_beyond_the_rows_read_is_empty() -> None:
    sheet = Sheet("S", [["a", "b"], ["c"]])
    assert sheet.cell(1, 1) == Cell(1, 1, None, "S!B2")
    assert sheet.value(5, 0) is None
    assert sheet.value(-1, 0) is None


def test_cell_text_reads_values_as_a_person_does() -> None:
    values: list[CellValue] = [
        None,
        True,
        12345.0,
        7.25,
        -3,
        D(2024, 3, 1),
        T(8, 30),
        DT(2024, 3, 1, 17, 45, 5),
        TD(hours=25, minutes=30),
        TD(hours=-1, seconds=-0.5),
        "A-100",
    ]
    assert [cell_text(value) for value in values] == [
        "",
        "TRUE",
        "12345",
        "7.25",
        "-3",
        "2024-03-01",
        "08:30:00",
        "2024-03-01 17:45:05",
        "25:30:00",
        "-1:00:00.5",
        "A-100",
    ]


# --- CSV and text ---------------------------------------------------------------------------------


def _worker_row(number: int) -> list[object]:
    return [f"Worker {number}", f"2024-03-{number:02d}", f"{number % 9}.5", "ok"]


CSV_ROWS: list[list[object]] = [
    ["Name", "Date", "Hours", "Note"],
    ["Zoë", "2024-03-01", "7,5", "a; b | c\tand tab"],
    ["Müller €", None, "8", 'says "hi"\nnext line'],
    *[_worker_row(number) for number in range(1, 25)],
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_csv_in_each_encoding_and_delimiter(tmp_path: Path, encoding: str, delimiter: str) -> None:
    path = write(tmp_path, "hours.csv", csv_bytes(CSV_ROWS, encoding=encoding, delimiter=delimiter))
    expected = [[value if isinstance(value, str) else None for value in row] for row in CSV_ROWS]
    given = read(path, CSV, encoding=encoding, delimiter=delimiter)
    assert given.sheets[0].rows == expected
    sniffed = read(path)  # the encoding and delimiter sniffed here
    assert sniffed.media_type == (TSV if delimiter == "\t" else CSV)
    assert sniffed.sheets[0].rows == expected


def test_csv_rows_keep_their_own_lengths_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "ragged.csv", b"a,b,c\n\nd\ne,,\n")
    assert read(path, CSV, encoding="utf-8", delimiter=",").sheets[0].rows == [
        ["a", "b", "c"],
        [],
        ["d"],
        ["e", None, None],
    ]


def test_a_bom_is_dropped_even_when_the_encoding_is_named_without_one(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", "\ufeffName,Hours\r\nAnn,8\r\n".encode())
    assert read(path, CSV, encoding="utf-8", delimiter=",").sheets[0].rows == [
        ["Name", "Hours"],
        ["Ann", "8"],
    ]


def test_plain_text_is_one_cell_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "targets.txt", b'A-100\nB,200\r\n\n"C" 300\n')
    workbook = read(path, TEXT, encoding="utf-8")
    assert workbook.sheets[0].rows == [["A-100"], ["B,200"], [None], ['"C" 300']]


@pytest.mark.parametrize(
    ("encoding", "data", "message"),
    [
        (
            "utf-8",
            b"Name,Note\n" + b"Ann,ok\n" * 12_000 + b"Bob,caf\xe9\n",
            "not valid UTF-8 at byte 84017 (0xe9)",
        ),
        ("cp1252", b"Name,Note\nAnn,caf\xe9\nBob,\x81\n", "not valid windows-1252 at byte 23 (0x81)"),
        ("utf-8-sig", b"\xef\xbb\xbfName\n\xff\n", "not valid UTF-8 at byte 8 (0xff)"),
        ("utf-16", "Name,Note\n".encode("utf-16") + b"A", "not valid UTF-16 at byte 22 (0x41)"),
    ],
    ids=["utf-8-past-the-sniffed-head", "windows-1252", "utf-8-sig", "utf-16-cut"],
)
def test_csv_not_valid_in_its_encoding_names_the_file_and_the_byte(
    tmp_path: Path, encoding: str, data: bytes, message: str
) -> None:
    path = write(tmp_path, "orders.csv", data)
    with pytest.raises(InputError) as raised:
        read(path, CSV, encoding=encoding, delimiter=",")
    assert str(raised.value) == f"orders.csv: {message}"


def test_csv_sniffed_as_utf8_from_its_head_and_broken_later(tmp_path: Path) -> None:
    data = b"Name,Note\n" + b"Ann,ok\n" * 12_000 + b"Bob,caf\xe9\n"
    assert len(data) > HEAD_BYTES
    with pytest.raises(InputError, match=r"^orders\.csv: not valid UTF-8 at byte 84017 \(0xe9\)$"):
        read(write(tmp_path, "orders.csv", data))


def test_binary_content_claimed_as_csv_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"^orders\.csv: not text"):
        read(path, CSV)


# --- bad files ------------------------------------------------------------------------------------


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    for name in ("empty.xlsx", "empty.csv"):
        with pytest.raises(InputError, match=rf"^{name}: the file is empty$"):
            read(write(tmp_path, name, b""))


def _bomb_xlsx() -> bytes:
    """A real workbook with a 64 MiB member of zeros (about 1000:1), whose compressed bytes are
    then damaged: inflating it would raise a zlib error, so a LimitExceeded proves none happened."""
    buffer = io.BytesIO(xlsx_bytes({"S": [["a"]]}))
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/image1.bin", bytes(64 * 1024 * 1024))
        info = archive.getinfo("xl/media/image1.bin")
    data = bytearray(buffer.getvalue())
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    middle = start + info.compress_size // 2
    data[middle : middle + 512] = random.Random(1).randbytes(512)
    return bytes(data)


def test_a_zip_bomb_named_xlsx_is_refused_without_inflating_it(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.xlsx", _bomb_xlsx())
    with pytest.raises(LimitExceeded) as raised:
        read(path)
    assert raised.value.limit == "zip_ratio"
    assert "bomb.xlsx:xl/media/image1.bin" in str(raised.value)


def test_a_truncated_workbook_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    data = xlsx_bytes({"Hours": TIMECARD})
    path = write(tmp_path, "hours.xlsx", data[: len(data) // 2])
    for claimed in (None, ZIP, XLSX, ODS):  # sniffed (a damaged zip), or what a caller took it for
        with pytest.raises(InputError, match=r"^hours\.xlsx: not a zip archive, or a damaged one"):
            read(path, claimed)
    xls = xls_bytes({"Hours": TIMECARD})
    with pytest.raises(InputError, match=r"^hours\.xls: cannot be read as an Excel 97-2003 workbook"):
        read(write(tmp_path, "hours.xls", xls[: len(xls) // 2]), XLS)


def test_random_bytes_named_xlsx_are_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "book.xlsx", random.Random(7).randbytes(20_000))
    with pytest.raises(InputError, match=r"^book\.xlsx: not a spreadsheet; the content is unrecognised"):
        read(path)
    assert sniff(path.read_bytes()[:HEAD_BYTES], path.name).media_type == UNKNOWN
    with pytest.raises(InputError, match=r"^book\.xlsx: not a zip archive"):
        read(path, XLSX)
    with pytest.raises(InputError, match=r"^book\.xlsx: cannot be read as an Excel 97-2003 workbook"):
        read(path, XLS)


def test_a_zip_that_is_no_workbook_is_named_for_what_it_is(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(InputError, match=r"^book\.xlsx: not a spreadsheet; the content is a ZIP archive$"):
        read(write(tmp_path, "book.xlsx", buffer.getvalue()))


def test_a_workbook_with_a_damaged_sheet_is_an_input_error(tmp_path: Path) -> None:
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes({"Hours": TIMECARD})))
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            broken = info.filename == "xl/worksheets/sheet1.xml"
            target.writestr(info, b"<worksheet><sheetData><row><c r=" if broken else source.read(info))
    with pytest.raises(InputError, match=r"^hours\.xlsx: cannot be read as an Excel workbook \(xlsx\)"):
        read(write(tmp_path, "hours.xlsx", buffer.getvalue()))


def test_a_password_protected_workbook_says_so(tmp_path: Path) -> None:
    # An encrypted xlsx is an OLE compound file; the corpus test reads real ones.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088)
    path = write(tmp_path, "pay.xlsx", ole)
    for claimed in (OOXML_ENCRYPTED, XLSX):
        with pytest.raises(InputError, match=r"^pay\.xlsx: the workbook is password-protected"):
            read(path, claimed)


def test_content_that_is_no_spreadsheet_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.xlsx", b"%PDF-1.7\n%\xe2\xe3\n")
    with pytest.raises(InputError, match=r"^scan\.xlsx: not a spreadsheet; the content is a PDF$"):
        read(path)


def test_cells_past_the_maximum_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spreadsheet, "MAX_CELLS", 99)
    grid: list[list[object]] = [["a"], *([] for _ in range(8)), [None] * 9 + ["J10"]]
    with pytest.raises(LimitExceeded) as raised:
        read(write(tmp_path, "wide.xlsx", xlsx_bytes({"S": grid})))
    assert (raised.value.limit, raised.value.value, raised.value.maximum) == ("cells", 100, 99)
    monkeypatch.setattr(spreadsheet, "MAX_CELLS", 100)
    assert read(tmp_path / "wide.xlsx").sheets[0].rows[9][9] == "J10"
    monkeypatch.setattr(spreadsheet, "MAX_CELLS", 20)
    with pytest.raises(LimitExceeded, match=r"^long\.csv: cells is 21, over the limit of 20$"):
        read(write(tmp_path, "long.csv", b"a,b,c\n" * 7), CSV, encoding="utf-8", delimiter=",")


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "hours.csv", b"a,b\n" * 100)
    with pytest.raises(LimitExceeded, match=r"^hours\.csv: file_bytes is 400"):
        read_workbook(str(path), CSV, path.name, Limits(file_bytes=399))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    pool = Sandbox(workers=1, memory_bytes=2 * 1024**3)
    yield pool
    pool.close()


def test_a_tiny_workbook_spanning_the_whole_grid_is_contained(tmp_path: Path, sandbox: Sandbox) -> None:
    """Two cells, A1 and XFD1048576: calamine allocates the 17-billion-cell rectangle before anything
    can count it, so the parser process's memory limit is what stops it."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("S")
    sheet.write(0, 0, "a")
    sheet.write(1_048_575, 16_383, "z")
    book.close()
    path = write(tmp_path, "corners.xlsx", buffer.getvalue())
    started = time.monotonic()
    with pytest.raises(ParserCrashed, match=r"^corners\.xlsx: the parser was killed by signal 6"):
        sandbox.run(
            read_workbook, str(path), XLSX, path.name, LIMITS, deadline=Deadline.start(30), subject=path.name
        )
    assert time.monotonic() - started < 30


def _repeated_ods(rows: int, columns: int, cell_attributes: str = "") -> bytes:
    """One cell repeated ``columns`` times in a row repeated ``rows`` times: a few hundred bytes."""
    cell = (
        f'<table:table-cell table:number-columns-repeated="{columns}"{cell_attributes}'
        ' office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell>'
    )
    row = f'<table:table-row table:number-rows-repeated="{rows}">{cell}</table:table-row>'
    table = f'<table:table table:name="S">{row}</table:table>'
    return ods_package(f"<office:body><office:spreadsheet>{table}</office:spreadsheet></office:body>")


def test_an_ods_repeating_one_cell_over_the_whole_grid_is_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    path = write(tmp_path, "repeats.ods", _repeated_ods(1_048_576, 16_384))
    assert path.stat().st_size < 2000
    with pytest.raises(InputError, match=r"^repeats\.ods: "):
        sandbox.run(
            read_workbook, str(path), ODS, path.name, LIMITS, deadline=Deadline.start(30), subject=path.name
        )


def test_ods_merged_ranges_past_the_maximum_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spanned = ' table:number-columns-spanned="2"'
    path = write(tmp_path, "spans.ods", _repeated_ods(600, 2, spanned))
    monkeypatch.setattr(spreadsheet, "MAX_MERGED_RANGES", 1000)
    with pytest.raises(LimitExceeded, match=r"^spans\.ods: merged_ranges is 1200, over the limit of 1000$"):
        read(path)
    monkeypatch.setattr(spreadsheet, "MAX_MERGED_RANGES", 1200)
    (sheet,) = read(path).sheets
    assert len(sheet.merged) == 1200
    assert sheet.merged[:3] == [(0, 0, 0, 1), (0, 1, 0, 2), (1, 0, 1, 1)]
