"""Sniffing: every media type from bytes built here, text encodings and delimiters, mismatches."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Callable
from typing import IO

import pytest
from fpdf import FPDF
from PIL import Image

from conveyor.extractors import sniff as sniffing
from conveyor.extractors.sniff import (
    HEAD_BYTES,
    Sniffed,
    extension_mismatch,
    sniff,
    sniff_media_type,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLS = "application/vnd.ms-excel"


def _sniff_whole(data: bytes, filename: str = "upload") -> Sniffed:
    """Sniff as the intake does: the head, and a way to reopen the whole file."""
    return sniff(data[:HEAD_BYTES], filename, reopen=lambda: io.BytesIO(data))


# --- images and PDF -------------------------------------------------------------------------------


def _image(format_: str, mode: str = "RGB", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (16, 12), 0).save(buffer, format_, **options)
    return buffer.getvalue()


def _pdf() -> bytes:
    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text="Hello sniffing")
    return bytes(document.output())


@pytest.mark.parametrize(
    ("build", "media_type"),
    [
        (lambda: _image("PNG"), "image/png"),
        (lambda: _image("JPEG"), "image/jpeg"),
        (lambda: _image("TIFF", "L"), "image/tiff"),
        (lambda: _image("TIFF", "I;16B"), "image/tiff"),
        (lambda: _image("TIFF", "L", big_tiff=True), "image/tiff"),
        (lambda: _image("WEBP"), "image/webp"),
        (lambda: _image("BMP"), "image/bmp"),
        (lambda: _image("GIF", "P"), "image/gif"),
        (_pdf, "application/pdf"),
    ],
    ids=["png", "jpeg", "tiff-le", "tiff-be", "bigtiff", "webp", "bmp", "gif", "pdf"],
)
def test_images_and_pdf_are_known_by_their_bytes(build: Callable[[], bytes], media_type: str) -> None:
    data = build()
    # A misleading name changes nothing: the content decides.
    assert _sniff_whole(data, "misleading.txt").media_type == media_type
    assert sniff_media_type(data[:HEAD_BYTES], "") == media_type


def test_tiff_fixtures_cover_both_byte_orders_and_bigtiff() -> None:
    assert _image("TIFF", "L")[:4] == b"II*\x00"
    assert _image("TIFF", "I;16B")[:4] == b"MM\x00*"
    assert _image("TIFF", "L", big_tiff=True)[:4] == b"II+\x00"
    assert sniff(b"MM\x00+\x00\x08\x00\x00" + bytes(16), "x").media_type == "image/tiff"


def test_pdf_after_up_to_a_kilobyte_of_junk_but_not_further() -> None:
    pdf = _pdf()
    assert sniff(b"leading junk\n" * 70 + pdf, "x").media_type == "application/pdf"  # 910 bytes
    assert sniff(b"leading junk\n" * 90 + pdf, "x").media_type != "application/pdf"  # 1170 bytes


def test_bm_at_the_start_of_text_is_not_a_bitmap() -> None:
    sniffed = sniff(b"BMW,Audi,Volvo\n1,2,3\n4,5,6\n", "cars")
    assert sniffed.media_type == "text/csv"


# --- zip-based formats ----------------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            # OpenDocument wants its mimetype member first and stored.
            compression = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=compression)
    return buffer.getvalue()


def _content_types(main: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{main}"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ).encode()


def _workbook(main: str) -> bytes:
    return _zip(
        {
            "[Content_Types].xml": _content_types(main),
            "_rels/.rels": b"<Relationships/>",
            "xl/workbook.xml": b"<workbook><sheets><sheet name='A' sheetId='1'/></sheets></workbook>",
            "xl/worksheets/sheet1.xml": b"<worksheet><sheetData/></worksheet>",
        }
    )


def _xlsx() -> bytes:
    return _workbook("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")


def _xlsm() -> bytes:
    return _workbook("application/vnd.ms-excel.sheet.macroEnabled.main+xml")


def _ods() -> bytes:
    return _zip(
        {
            "mimetype": ODS.encode(),
            "content.xml": b"<office:document-content/>",
            "META-INF/manifest.xml": b"<manifest:manifest/>",
        }
    )


def _docx() -> bytes:
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    types = _content_types(main).replace(b"/xl/workbook.xml", b"/word/document.xml")
    return _zip({"[Content_Types].xml": types, "word/document.xml": b"<w:document/>"})


class _Unseekable(io.RawIOBase):
    """A stream that can only be read forward, like an S3 response body."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize(
    ("build", "media_type"),
    [
        (_xlsx, XLSX),
        (_xlsm, XLSM),
        (_ods, ODS),
        (_docx, DOCX),
        (lambda: _zip({"notes.txt": b"hello", "data/report.pdf": _pdf()}), "application/zip"),
        (lambda: _zip({}), "application/zip"),
    ],
    ids=["xlsx", "xlsm", "ods", "docx", "zip", "empty-zip"],
)
def test_zip_based_formats_from_their_members(build: Callable[[], bytes], media_type: str) -> None:
    data = build()
    assert _sniff_whole(data, "upload.bin").media_type == media_type


def test_xlsx_needs_the_whole_file_else_it_is_a_zip() -> None:
    data = _xlsx()
    assert sniff(data[:HEAD_BYTES], "book.xlsx").media_type == "application/zip"


def test_a_stream_that_cannot_seek_is_spooled() -> None:
    data = _xlsm()
    reopen: Callable[[], IO[bytes]] = lambda: io.BufferedReader(_Unseekable(data))  # noqa: E731
    assert not reopen().seekable()
    assert sniff(data[:HEAD_BYTES], "book", reopen=reopen).media_type == XLSM


def test_workbook_without_a_main_content_type_is_known_by_its_workbook_part() -> None:
    data = _zip(
        {
            "[Content_Types].xml": b'<Types><Default Extension="xml" ContentType="application/xml"/></Types>',
            "xl/workbook.xml": b"<workbook/>",
        }
    )
    assert _sniff_whole(data).media_type == XLSX


def test_a_damaged_zip_is_still_a_zip() -> None:
    data = _xlsx()
    assert _sniff_whole(data[: len(data) // 2]).media_type == "application/zip"


# --- OLE2 compound files --------------------------------------------------------------------------

_FREE, _END, _FAT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD


def _directory_entry(name: str, kind: int, right_sibling: int = _FREE, child: int = _FREE) -> bytes:
    encoded = (name + "\0").encode("utf-16-le")
    entry = bytearray(128)
    entry[: len(encoded)] = encoded
    struct.pack_into("<HBBIII", entry, 0x40, len(encoded), kind, 1, _FREE, right_sibling, child)
    struct.pack_into("<IQ", entry, 0x74, _END, 0)  # an empty stream: no sectors
    return bytes(entry)


def _compound_file(*names: str) -> bytes:
    """A minimal MS-CFB version 3 file (512-byte sectors): the header, sector 0 holding the FAT,
    then the directory (the root entry and one empty stream per name, four entries a sector,
    chained through the FAT)."""
    entries = [_directory_entry("Root Entry", 5, child=1 if names else _FREE)]
    entries += [
        _directory_entry(name, 2, right_sibling=index + 2 if index + 1 < len(names) else _FREE)
        for index, name in enumerate(names)
    ]
    entries += [bytes(128)] * (-len(entries) % 4)
    directory_sectors = len(entries) // 4
    chain = [sector + 1 for sector in range(1, directory_sectors)] + [_END]
    fat = [_FAT, *chain] + [_FREE] * (128 - 1 - len(chain))
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 0x28, 0, 1, 1, 0, 4096, _END, 0, _END, 0)
    struct.pack_into("<109I", header, 0x4C, 0, *([_FREE] * 108))
    return bytes(header) + struct.pack("<128I", *fat) + b"".join(entries)


@pytest.mark.parametrize(
    ("names", "media_type"),
    [
        (("Workbook",), XLS),
        (("Book",), XLS),  # BIFF5
        (("\x05SummaryInformation", "\x05DocumentSummaryInformation", "CompObj", "Workbook"), XLS),
        (("EncryptionInfo", "EncryptedPackage"), "application/x-ooxml-encrypted"),
        (("WordDocument", "1Table"), "application/msword"),
        (("Contents", "Workbooks"), "application/x-ole-storage"),
        ((), "application/x-ole-storage"),
    ],
    ids=["biff8", "biff5", "second-directory-sector", "encrypted-ooxml", "doc", "other", "empty"],
)
def test_ole_compound_files_by_their_directory(names: tuple[str, ...], media_type: str) -> None:
    data = _compound_file(*names)
    assert _sniff_whole(data, "upload.xls").media_type == media_type
    # The directory lies within the head here, so the head alone is enough.
    assert sniff(data, "upload.xls").media_type == media_type


def test_workbook_name_past_the_first_directory_sector_is_found_through_the_fat() -> None:
    data = _compound_file("\x05SummaryInformation", "\x05DocumentSummaryInformation", "CompObj", "Workbook")
    assert len(data) == 512 * 4  # header, FAT, two directory sectors
    assert "Workbook".encode("utf-16-le") in data[512 * 3 :]
    assert _sniff_whole(data).media_type == XLS


def test_a_truncated_compound_file_is_ole_storage() -> None:
    data = _compound_file("Workbook")
    assert _sniff_whole(data[:600]).media_type == "application/x-ole-storage"


# --- text -----------------------------------------------------------------------------------------

TABLE = [
    ["Name", "Ort", "Betrag", "Notiz"],
    ["Müller", "Zürich", "3,50 €", "Café crème"],
    ["Zoë", "Besançon", "12,00 €", "Größe L"],
    ["José", "Málaga", "7,25 €", "Señal"],
]


def _table(delimiter: str) -> str:
    # Amounts contain commas, so a comma-delimited table quotes them.
    def cell(value: str) -> str:
        return f'"{value}"' if delimiter in value else value

    return "".join(delimiter.join(cell(value) for value in row) + "\r\n" for row in TABLE)


@pytest.mark.parametrize(
    ("encoding", "delimiter", "media_type"),
    [
        ("utf-8", ";", "text/csv"),
        ("utf-8", "\t", "text/tab-separated-values"),
        ("utf-8", ",", "text/csv"),
        ("utf-8-sig", ";", "text/csv"),
        ("utf-8-sig", "\t", "text/tab-separated-values"),
        ("cp1252", ";", "text/csv"),
        ("cp1252", "\t", "text/tab-separated-values"),
        ("utf-16", ";", "text/csv"),
        ("utf-16", "\t", "text/tab-separated-values"),
        ("utf-16-le", ";", "text/csv"),
        ("utf-8", "|", "text/csv"),
    ],
)
def test_csv_encoding_and_delimiter_from_content(encoding: str, delimiter: str, media_type: str) -> None:
    text = _table(delimiter)
    data = text.encode(encoding)
    sniffed = sniff(data, "upload")  # no extension to lean on
    assert (sniffed.media_type, sniffed.delimiter) == (media_type, delimiter)
    assert sniffed.encoding is not None
    assert data.decode(sniffed.encoding) == text


def test_expected_encoding_names() -> None:
    text = _table(";")
    names = {encoding: sniff(text.encode(encoding), "x").encoding for encoding in ("utf-8", "utf-8-sig")}
    names["cp1252"] = sniff(text.encode("cp1252"), "x").encoding
    names["utf-16"] = sniff(text.encode("utf-16"), "x").encoding
    assert names == {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "cp1252": "cp1252", "utf-16": "utf-16"}


def test_a_large_csv_cut_by_the_head_still_sniffs() -> None:
    text = _table(";") + "".join(f"Zeile {n};Köln;{n},00 €;ä\r\n" for n in range(20_000))
    data = text.encode("cp1252")
    assert len(data) > HEAD_BYTES
    sniffed = _sniff_whole(data)
    assert (sniffed.media_type, sniffed.encoding, sniffed.delimiter) == ("text/csv", "cp1252", ";")


def test_cyrillic_is_not_taken_for_cp1252() -> None:
    text = "Имя;Город\r\nИван;Москва\r\nПётр;Санкт-Петербург\r\nАнна;Казань\r\n"  # noqa: RUF001
    sniffed = sniff(text.encode("cp1251"), "x")
    assert sniffed.encoding is not None
    assert text.encode("cp1251").decode(sniffed.encoding) == text


def test_a_ragged_csv_that_the_sniffer_misses_is_found_by_its_rows() -> None:
    sniffed = sniff(b"a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n", "x")
    assert (sniffed.media_type, sniffed.delimiter) == ("text/csv", ",")


def test_one_column_is_text_unless_the_name_says_csv() -> None:
    data = b"Industry\nFinance\nHealthcare\nRetail\n"
    assert sniff(data, "industries").media_type == "text/plain"
    assert sniff(data, "industries.csv") == Sniffed("text/csv", "utf-8", ",")
    assert sniff(data, "industries.tsv") == Sniffed("text/tab-separated-values", "utf-8", "\t")


def test_plain_text() -> None:
    data = b"The quick brown fox\njumps over the lazy dog.\nNo delimiters here\n"
    assert sniff(data, "notes") == Sniffed("text/plain", "utf-8")


def test_a_utf8_character_cut_at_the_end_of_the_head_is_still_utf8() -> None:
    data = ("é" * HEAD_BYTES).encode()[: HEAD_BYTES - 1]
    assert sniff(data, "x").encoding == "utf-8"


@pytest.mark.parametrize(
    ("data", "filename", "media_type"),
    [
        (b'[{"a": 1}, {"a": 2}]', "x", "application/json"),
        (b'\xef\xbb\xbf  {"a": 1}', "x", "application/json"),
        (b'{\n  "a": 1,\n  "b": [1, 2]\n}\n', "x", "application/json"),
        (b'{"a": 1}\n{"a": 2}\n', "x", "application/x-ndjson"),
        (b'{"a": 1}\n', "x.jsonl", "application/x-ndjson"),
        (b'{"a": 1}\n', "x", "application/json"),
        (b'"a lone string"', "x", "application/json"),
        (b"-0.1", "x", "application/json"),
        (b"[tool.ruff]\nline-length = 110\n", "pyproject.toml", "text/plain"),
        ('["é"]'.encode("utf-16"), "x", "application/json"),
    ],
    ids=[
        "array",
        "bom-object",
        "pretty",
        "ndjson",
        "ndjson-by-name",
        "one-object",
        "scalar",
        "number",
        "toml",
        "utf16",
    ],
)
def test_json_and_ndjson(data: bytes, filename: str, media_type: str) -> None:
    assert sniff(data, filename).media_type == media_type


def test_empty_and_binary() -> None:
    assert sniff(b"", "x.pdf") == Sniffed("application/x-empty")
    assert sniff(os.urandom(4096), "x").media_type == "application/octet-stream"
    assert sniff(b"abc\x00def\x00" * 100, "x").media_type == "application/octet-stream"
    # A few control characters (a barcode payload saved as text) do not make text binary.
    assert sniff(b"\x01\x10AD:SUB:1;;\x1d01234", "x").media_type == "text/plain"


def test_head_is_large_enough_for_csv_sniffing() -> None:
    assert HEAD_BYTES >= 64 * 1024
    assert sniffing.HEAD_BYTES == HEAD_BYTES


# --- extension mismatches -------------------------------------------------------------------------


def test_mismatch_message_names_file_and_both_types() -> None:
    message = extension_mismatch("report.pdf", "image/png")
    assert message == "report.pdf: the name says PDF but the content is a PNG image"


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [
        ("book.xls", XLSX),
        ("book.xlsx", XLSM),
        ("book.xlsx", "application/zip"),
        ("book.xlsx", XLS),
        ("scan.JPG", "image/png"),
        ("C:\\Users\\x\\data.csv", "application/pdf"),
        ("data.json", "text/plain"),
        ("photo.png", "application/octet-stream"),
        ("empty.pdf", "application/x-empty"),
    ],
)
def test_mismatches(filename: str, media_type: str) -> None:
    message = extension_mismatch(filename, media_type)
    assert message is not None
    assert message.startswith(f"{filename}: the name says ")


def test_mismatch_wording_for_workbooks_and_empty_files() -> None:
    assert extension_mismatch("book.xls", XLSX) == (
        "book.xls: the name says Excel 97-2003 workbook (xls) but the content is an Excel workbook (xlsx)"
    )
    assert (
        extension_mismatch("empty.pdf", "application/x-empty")
        == "empty.pdf: the name says PDF but the file is empty"
    )


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [
        ("notes.txt", "text/csv"),
        ("notes.txt", "application/json"),
        ("README", "application/pdf"),
        ("archive.tar.gz", "application/octet-stream"),
        ("book.xlsx", XLSX),
        ("book.XLSX", "application/x-ooxml-encrypted"),
        ("data.csv", "text/tab-separated-values"),
        ("data.csv", "application/x-empty"),
        ("rows.json", "application/x-ndjson"),
        ("bundle.zip", XLSX),
        (".pdf", "image/png"),  # a hidden file named ".pdf" has no extension
    ],
)
def test_agreements(filename: str, media_type: str) -> None:
    assert extension_mismatch(filename, media_type) is None


def test_sniffed_fixtures_agree_with_their_own_extensions() -> None:
    fixtures = {
        "a.png": _image("PNG"),
        "a.jpeg": _image("JPEG"),
        "a.tif": _image("TIFF", "L"),
        "a.webp": _image("WEBP"),
        "a.bmp": _image("BMP"),
        "a.gif": _image("GIF", "P"),
        "a.pdf": _pdf(),
        "a.xlsx": _xlsx(),
        "a.xlsm": _xlsm(),
        "a.ods": _ods(),
        "a.docx": _docx(),
        "a.xls": _compound_file("Workbook"),
        "a.csv": _table(";").encode("cp1252"),
        "a.tsv": _table("\t").encode("utf-16"),
        "a.json": b"[1]",
        "a.ndjson": b'{"a":1}\n{"a":2}\n',
    }
    disagreements = {
        name: extension_mismatch(name, _sniff_whole(data, name).media_type) for name, data in fixtures.items()
    }
    assert {name: message for name, message in disagreements.items() if message} == {}
