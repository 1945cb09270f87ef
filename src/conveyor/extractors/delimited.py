"""CSV, TSV and plain-text lists read into a one-sheet workbook of text cells."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from pathlib import Path

from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors import sniff as media
from conveyor.extractors.cells import CellValue, Sheet, Workbook, gc_paused

_CHUNK_BYTES = 1024 * 1024


def read_text(
    path: str,
    media_type: str,
    subject: str,
    *,
    encoding: str | None,
    delimiter: str | None,
    max_cells: int,
) -> Workbook:
    """CSV and TSV through the csv module (a field over its 128 KiB limit is an InputError); plain
    text as one cell per line (a list of codes). Every value is text: types are the caller's call.
    ``encoding`` and ``delimiter`` are the sniffer's findings, sniffed here when None; past
    ``max_cells`` fields the read stops with LimitExceeded."""
    sniffed = None
    if encoding is None or (delimiter is None and media_type != media.TEXT):
        with Path(path).open("rb") as stream:
            sniffed = media.sniff(stream.read(media.HEAD_BYTES), subject)
        encoding = encoding or sniffed.encoding
        delimiter = delimiter or sniffed.delimiter
    if encoding is None:
        content = media.describe_media_type(sniffed.media_type if sniffed else media.UNKNOWN)
        raise InputError(f"{subject}: not text; the content is {content}")
    rows: list[list[CellValue]] = []
    cells = 0
    shared: dict[CellValue, CellValue] = {"": None}
    keep = shared.setdefault  # equal values made one object: see spreadsheet._shared_values
    try:
        with Path(path).open(encoding=encoding, errors="strict", newline="") as text, gc_paused():
            if media_type == media.TEXT:
                records: Iterator[list[str]] = ([value.rstrip("\r\n")] for value in text)
            else:
                records = csv.reader(text, delimiter=delimiter or ("\t" if media_type == media.TSV else ","))
            for record in records:
                cells += len(record)
                if cells > max_cells:
                    raise LimitExceeded("cells", cells, max_cells, subject)
                rows.append([keep(value, value) for value in record])
    except UnicodeDecodeError:
        raise InputError(_undecodable(path, encoding, subject)) from None
    except csv.Error as error:
        raise InputError(f"{subject}: not readable as CSV at record {len(rows) + 1} ({error})") from None
    first = rows[0][0] if rows and rows[0] else None
    if isinstance(first, str) and first.startswith("\ufeff"):  # a BOM the encoding did not consume
        rows[0][0] = first[1:] or None
    return Workbook([Sheet(_stem(subject), rows)], media_type)


def _undecodable(path: str, encoding: str, subject: str) -> str:
    """``orders.csv: not valid windows-1252 at byte 1234 (0x81)``: found again from the start, since
    the decoding reader does not say where in the file its chunk began."""
    name = codecs.lookup(encoding).name
    label = "windows-1252" if name == "cp1252" else name.upper().removesuffix("-SIG")
    # utf-8-sig reports positions after its BOM; the BOM is valid UTF-8, so plain UTF-8 finds the same
    decoder = codecs.getincrementaldecoder("utf-8" if name == "utf-8-sig" else encoding)(errors="strict")
    offset = 0
    with Path(path).open("rb") as stream:
        while True:
            chunk = stream.read(_CHUNK_BYTES)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                where = offset - pending + error.start
                found = error.object[error.start : min(error.end, error.start + 4)]
                return f"{subject}: not valid {label} at byte {where} (0x{found.hex()})"
            if not chunk:
                return f"{subject}: not valid {label}"
            offset += len(chunk)


def _stem(subject: str) -> str:
    """A CSV's one sheet is named after the file, as Excel names it when opening one."""
    name = re.split(r"[/\\:]", subject)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    return stem[:31] or "Sheet1"
