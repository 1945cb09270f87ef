"""Media type from a file's content (magic numbers and structure), never from its name.

The name only breaks ties the content leaves open: JSON or NDJSON, plain text or a one-column CSV.
``extension_mismatch`` then says when the name promises something the content is not.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import orjson
from charset_normalizer import from_bytes

from conveyor.extractors.containers import (
    DOC,
    DOCX,
    ODS,
    OLE,
    OOXML_ENCRYPTED,
    XLS,
    XLSB,
    XLSM,
    XLSX,
    XLTM,
    XLTX,
    ZIP,
    container_type,
)

# Callers take every media type from here, the container ones (defined in containers) included.
__all__ = [
    "CSV",
    "DOC",
    "DOCX",
    "EMPTY",
    "HEAD_BYTES",
    "JSON",
    "NDJSON",
    "ODS",
    "OLE",
    "OOXML_ENCRYPTED",
    "TEXT",
    "TSV",
    "UNKNOWN",
    "XLS",
    "XLSB",
    "XLSM",
    "XLSX",
    "XLTM",
    "XLTX",
    "ZIP",
    "Sniffed",
    "describe_media_type",
    "extension_mismatch",
    "sniff",
    "sniff_media_type",
]

# Enough lines for the CSV sniffer and the charset detector; callers read this much.
HEAD_BYTES = 64 * 1024

CSV = "text/csv"
TSV = "text/tab-separated-values"
TEXT = "text/plain"
JSON = "application/json"
NDJSON = "application/x-ndjson"
EMPTY = "application/x-empty"
UNKNOWN = "application/octet-stream"


@dataclass(frozen=True)
class Sniffed:
    """What the content is; ``encoding`` (a Python codec name) for text, ``delimiter`` for CSV/TSV."""

    media_type: str
    encoding: str | None = None
    delimiter: str | None = None


def sniff_media_type(first_bytes: bytes, filename: str) -> str:
    """The media type alone, without a way to reopen the file (a zip stays ``application/zip``)."""
    return sniff(first_bytes, filename).media_type


def sniff(head: bytes, filename: str, reopen: Callable[[], IO[bytes]] | None = None) -> Sniffed:
    """Sniff the first ``HEAD_BYTES`` of a file; ``reopen`` gives the whole file, which zip-based
    formats (their directory is at the end) and OLE compound files need to be told apart."""
    if not head:
        return Sniffed(EMPTY)
    binary = _binary_type(head, reopen)
    if binary is not None:
        return Sniffed(binary)
    decoded = _decode(head)
    if decoded is None:
        return Sniffed(UNKNOWN)
    text, encoding = decoded
    is_whole = len(head) < HEAD_BYTES
    body = text.lstrip("\ufeff \t\r\n")
    if _JSON_ARRAY.match(body):
        return Sniffed(JSON, encoding)
    if body[:1] == "{":
        return Sniffed(NDJSON if _looks_like_ndjson(body, filename) else JSON, encoding)
    delimiter = _delimiter(text, is_whole)
    if delimiter is not None:
        return Sniffed(TSV if delimiter == "\t" else CSV, encoding, delimiter)
    if is_whole and body and _is_json(body):
        return Sniffed(JSON, encoding)  # a lone number, string, true, false or null
    # Text with no delimiter to find is also a one-column table: the name decides.
    extension = _extension(filename)
    if extension in {"csv", "tsv", "tab"}:
        delimiter = "," if extension == "csv" else "\t"
        return Sniffed(CSV if extension == "csv" else TSV, encoding, delimiter)
    return Sniffed(TEXT, encoding)


# --- binary formats -------------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00\x08\x00\x00\x00", "image/tiff"),  # BigTIFF
    (b"MM\x00+\x00\x08\x00\x00", "image/tiff"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
)
# BITMAPCOREHEADER, BITMAPINFOHEADER and its successors: "BM" alone starts too many text files.
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _binary_type(head: bytes, reopen: Callable[[], IO[bytes]] | None) -> str | None:
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack_from("<I", head, 14)[0] in _BMP_HEADER_SIZES:
        return "image/bmp"
    container = container_type(head, reopen)
    if container is not None:
        return container
    # Readers accept up to 1 KB of junk before the header, so the header is looked for there too.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    return None


# --- text -----------------------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Control characters that text does not contain: C0 but tab, line feeds, form feed, escape (colour
# codes in logs) and the ASCII separators (GS1 barcodes, EDI); DEL; C1. A few are forgiven, as in
# a barcode payload saved as text; NUL never is.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x7f-\x9f]")
_CONTROL_ALLOWANCE = 4
_MAX_CONTROL_RATIO = 0.01
# Below this charset-normalizer "chaos", cp1252 is taken over its own pick (see _detect_encoding).
_CP1252_MAX_CHAOS = 0.5


def _decode(head: bytes) -> tuple[str, str] | None:
    """The head as text and its encoding, or None when it is not text."""
    encoding = _detect_encoding(head)
    if encoding is None:
        return None
    # An incremental decoder leaves a character cut at the end of the head undecoded.
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(head, final=False)
    controls = len(_CONTROL.findall(text))
    if "\x00" in text or controls > max(_CONTROL_ALLOWANCE, _MAX_CONTROL_RATIO * len(text)):
        return None
    return text, encoding


def _detect_encoding(head: bytes) -> str | None:
    """BOM, else UTF-8 if the bytes are valid UTF-8, else cp1252 or charset-normalizer's choice.

    charset-normalizer ranks single-byte code pages poorly on samples as short as a CSV head (it
    names hp_roman8 for Swedish and mac_iceland for German cp1252 text), while its chaos measure
    tells cp1252 apart from Cyrillic, Greek or Polish text well (below 0.35 against above 1.0 in our
    samples). cp1252 being by far the commonest legacy encoding of spreadsheet exports, it wins when
    its chaos is low; the price is Central European text whose letters cp1252 also decodes
    plausibly (Czech cp1250) being read as cp1252.
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" in head:
        return _utf16_without_bom(head)
    try:
        codecs.getincrementaldecoder("utf-8")(errors="strict").decode(head, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        pass
    else:
        if from_bytes(head, cp_isolation=["cp1252"], threshold=_CP1252_MAX_CHAOS).best() is not None:
            return "cp1252"
    # A multi-byte character cut at the end of the head makes charset-normalizer drop the right
    # encoding (GB18030 became cp874); no ASCII-compatible encoding uses 0x0A inside a character.
    cut = head.rfind(b"\n")
    best = from_bytes(head[: cut + 1] if cut >= len(head) // 2 else head).best()
    return None if best is None else codecs.lookup(best.encoding).name


def _utf16_without_bom(head: bytes) -> str | None:
    """Mostly-ASCII UTF-16 has a zero in every other byte; any other text has no zero byte."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    odd_zeros = head[1 : 2 * pairs : 2].count(0)
    even_zeros = head[0 : 2 * pairs : 2].count(0)
    if odd_zeros >= 0.9 * pairs and even_zeros == 0:
        return "utf-16-le"
    if even_zeros >= 0.9 * pairs and odd_zeros == 0:
        return "utf-16-be"
    return None


# An array's first value, so that the ``[section]`` of an INI or TOML file is not taken for JSON.
_JSON_ARRAY = re.compile(r"\[\s*(?:[\[\]{\"\d-]|true\b|false\b|null\b|$)")


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _looks_like_ndjson(text: str, filename: str) -> bool:
    """JSON and NDJSON both start with ``{``: a first line that is a complete JSON value followed
    by more lines is NDJSON, and so is any such file named ``.ndjson``/``.jsonl``."""
    if _extension(filename) in {"ndjson", "jsonl"}:
        return True
    first, newline, rest = text.partition("\n")
    return bool(newline and rest.strip()) and _is_json(first)


# csv.Sniffer's quote-guessing regex is quadratic on adversarial input (0.7 s on 8,000 characters
# of ',"a'); on this much it stays under 0.2 s, and real headers and first rows fit.
_SNIFF_CHARS = 4096
_CHECK_CHARS = 32 * 1024
_DELIMITERS = ",;\t|"


def _delimiter(text: str, is_whole: bool) -> str | None:
    """The delimiter of a text that reads as a table: the one csv.Sniffer finds, if the rows it then
    gives are mostly of one width of two or more fields; else, since the sniffer wants 90% of its
    lines alike and so misses small ragged files, the one whose rows are most alike, when at least
    three in four rows share a width of two or more."""
    sample = _complete_lines(text[:_CHECK_CHARS], is_whole and len(text) <= _CHECK_CHARS)
    sniffed = sample[:_SNIFF_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    try:
        dialect = csv.Sniffer().sniff(_complete_lines(sniffed, False) or sniffed, _DELIMITERS)
    except csv.Error:
        pass
    else:
        if dialect.delimiter in _DELIMITERS and _table_score(sample, dialect) >= 0.5:
            return dialect.delimiter
    score, delimiter = max((_table_score(sample, delimiter), delimiter) for delimiter in _DELIMITERS)
    return delimiter if score >= 0.75 else None


def _table_score(sample: str, dialect: type[csv.Dialect] | str) -> float:
    """The share of rows having the commonest width, or 0 if that is one field or there is one row."""
    try:
        if isinstance(dialect, str):
            rows = [row for row in csv.reader(io.StringIO(sample, newline=""), delimiter=dialect) if any(row)]
        else:
            rows = [row for row in csv.reader(io.StringIO(sample, newline=""), dialect) if any(row)]
    except csv.Error:
        return 0.0
    if len(rows) < 2:
        return 0.0
    width, count = Counter(len(row) for row in rows).most_common(1)[0]
    return count / len(rows) if width >= 2 else 0.0


def _complete_lines(text: str, is_whole: bool) -> str:
    """Drop a last line that was cut off (unless the text is the whole file)."""
    if is_whole:
        return text
    end = max(text.rfind("\n"), text.rfind("\r"))
    return text[: end + 1] if end >= 0 else text


# --- names ----------------------------------------------------------------------------------------

_DESCRIPTIONS: dict[str, str] = {
    "application/pdf": "a PDF",
    "image/png": "a PNG image",
    "image/jpeg": "a JPEG image",
    "image/tiff": "a TIFF image",
    "image/webp": "a WebP image",
    "image/bmp": "a BMP image",
    "image/gif": "a GIF image",
    "image/jp2": "a JPEG 2000 image",
    XLSX: "an Excel workbook (xlsx)",
    XLSM: "a macro-enabled Excel workbook (xlsm)",
    XLTX: "an Excel template (xltx)",
    XLTM: "a macro-enabled Excel template (xltm)",
    XLSB: "a binary Excel workbook (xlsb)",
    XLS: "an Excel 97-2003 workbook (xls)",
    ODS: "an OpenDocument spreadsheet (ods)",
    DOCX: "a Word document (docx)",
    DOC: "a Word 97-2003 document (doc)",
    ZIP: "a ZIP archive",
    OLE: "an OLE compound file",
    OOXML_ENCRYPTED: "a password-protected Office document",
    JSON: "JSON",
    NDJSON: "NDJSON",
    CSV: "CSV",
    TSV: "TSV",
    TEXT: "plain text",
    UNKNOWN: "unrecognised binary data",
}
_ZIP_BASED = (XLSX, XLSM, XLTX, XLTM, XLSB, ODS, DOCX)
_TEXT_BASED = (CSV, TSV, JSON, NDJSON, EMPTY)


def _named(media_type: str, *also: str) -> tuple[str, frozenset[str]]:
    return media_type, frozenset({media_type, *also})


# Extension -> (the type it names, the types it accepts). An empty file is accepted where an
# empty document is valid (a table without rows); a password-protected xlsx is an OLE wrapper.
_EXTENSIONS: dict[str, tuple[str, frozenset[str]]] = {
    "pdf": _named("application/pdf"),
    "png": _named("image/png"),
    "jpg": _named("image/jpeg"),
    "jpeg": _named("image/jpeg"),
    "jpe": _named("image/jpeg"),
    "jfif": _named("image/jpeg"),
    "tif": _named("image/tiff"),
    "tiff": _named("image/tiff"),
    "webp": _named("image/webp"),
    "bmp": _named("image/bmp"),
    "dib": _named("image/bmp"),
    "gif": _named("image/gif"),
    "jp2": _named("image/jp2"),
    "jpf": _named("image/jp2"),
    "jpx": _named("image/jp2"),
    "jpeg2000": _named("image/jp2"),
    "xlsx": _named(XLSX, OOXML_ENCRYPTED),
    "xlsm": _named(XLSM, OOXML_ENCRYPTED),
    "xltx": _named(XLTX, OOXML_ENCRYPTED),
    "xltm": _named(XLTM, OOXML_ENCRYPTED),
    "xlsb": _named(XLSB, OOXML_ENCRYPTED),
    "xls": _named(XLS),
    "ods": _named(ODS),
    "docx": _named(DOCX, OOXML_ENCRYPTED),
    "doc": _named(DOC),
    "zip": _named(ZIP, *_ZIP_BASED),
    "json": _named(JSON, NDJSON),
    "ndjson": _named(NDJSON, JSON, EMPTY),
    "jsonl": _named(NDJSON, JSON, EMPTY),
    "csv": _named(CSV, TSV, EMPTY),
    "tsv": _named(TSV, CSV, EMPTY),
    "tab": _named(TSV, CSV, EMPTY),
    "txt": _named(TEXT, *_TEXT_BASED),
    "text": _named(TEXT, *_TEXT_BASED),
    "md": _named(TEXT, *_TEXT_BASED),
    "log": _named(TEXT, *_TEXT_BASED),
}


def extension_mismatch(filename: str, media_type: str) -> str | None:
    """A message for the user when the file's extension names a type its content contradicts
    (``report.pdf: the name says PDF but the content is a PNG image``); None when they agree or the
    extension names nothing we know. Plain text named ``.txt`` may be any text (CSV, JSON)."""
    named = _EXTENSIONS.get(_extension(filename))
    if named is None or media_type in named[1]:
        return None
    said = re.sub(r"^an? ", "", describe_media_type(named[0]))
    if media_type == EMPTY:
        return f"{filename}: the name says {said} but the file is empty"
    return f"{filename}: the name says {said} but the content is {describe_media_type(media_type)}"


def describe_media_type(media_type: str) -> str:
    """A media type in words, with its article: ``a PNG image``."""
    return _DESCRIPTIONS.get(media_type, f"{media_type} content")


def _extension(filename: str) -> str:
    name = re.split(r"[/\\]", filename)[-1]
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""
