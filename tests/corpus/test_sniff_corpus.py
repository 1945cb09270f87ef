"""Sniff every file of the real-world corpus and hold the result against the file's extension.

Files whose manifest row (or folder) marks them broken, fuzzed, denial-of-service, 0-byte or invalid
JSON are sniffed too, but need not agree with their names. Every other disagreement is either a bug
in the sniffer or a finding about the corpus; the findings are listed in KNOWN_DISAGREEMENTS with
what the file really holds, and the test checks that list exactly, both ways.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from conveyor.extractors.sniff import HEAD_BYTES, Sniffed, extension_mismatch, sniff

SETS = ("pdf", "qr", "ocr", "sheets", "csv", "json")

# The manifests' ways of saying "this file is not what its name promises, on purpose".
_UNRELIABLE_NOTE = re.compile(
    r"broken|fuzz|denial[- ]of[- ]service|\bDoS\b|0-byte|REJECT \(invalid JSON", re.I
)

# Files whose content contradicts their extension although their manifest row does not say so.
KNOWN_DISAGREEMENTS: dict[str, tuple[str, str]] = {
    "sheets/openpyxl/null_archive.xlsx": (
        "application/zip",
        "a zip holding one 0-byte member named null_file.xlsx: no [Content_Types].xml, no workbook",
    ),
    "sheets/openpyxl/null_file.xlsx": ("application/x-empty", "0 bytes; its manifest row does not say so"),
}


def _manifest(folder: Path) -> list[tuple[str, str]]:
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip(f"no manifest at {manifest}")
    with manifest.open(newline="", encoding="utf-8") as handle:
        return [(row["file"], row["expected"]) for row in csv.DictReader(handle, delimiter="\t")]


def _sniff_file(path: Path) -> Sniffed:
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    return sniff(head, path.name, reopen=lambda: path.open("rb"))


def _is_unreliable(file: str, expected: str) -> bool:
    return file.startswith("broken/") or bool(_UNRELIABLE_NOTE.search(expected))


@pytest.mark.parametrize("corpus_set", SETS)
def test_sniffed_type_agrees_with_the_extension(corpus_dir: Path, corpus_set: str) -> None:
    folder = corpus_dir / corpus_set
    disagreements: dict[str, str] = {}
    checked = 0
    for file, expected in _manifest(folder):
        sniffed = _sniff_file(folder / file)  # every file, marked or not: sniffing never raises
        if _is_unreliable(file, expected):
            continue
        checked += 1
        if extension_mismatch(Path(file).name, sniffed.media_type) is not None:
            disagreements[f"{corpus_set}/{file}"] = sniffed.media_type
    known = {
        file: media_type
        for file, (media_type, _) in KNOWN_DISAGREEMENTS.items()
        if file.startswith(f"{corpus_set}/")
    }
    assert checked >= 20
    assert disagreements == known


def test_spreadsheet_types_are_exact(corpus_dir: Path) -> None:
    folder = corpus_dir / "sheets"
    expected = {
        "calamine/any_sheets.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "calamine/strict_iso_paths.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "calamine/any_sheets.xls": "application/vnd.ms-excel",
        "calamine/biff5_write.xls": "application/vnd.ms-excel",
        "calamine/any_sheets.ods": "application/vnd.oasis.opendocument.spreadsheet",
        "calamine/pass_protected.ods": "application/vnd.oasis.opendocument.spreadsheet",
        "calamine/vba.xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
        "calamine/issues.xlsb": "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
        "openpyxl/empty.xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        "calamine/pass_protected.xlsx": "application/x-ooxml-encrypted",
        "unstructured/password_protected.xlsx": "application/x-ooxml-encrypted",
    }
    assert {file: _sniff_file(folder / file).media_type for file in expected} == expected


def test_csv_delimiters_and_encodings(corpus_dir: Path) -> None:
    folder = corpus_dir / "csv"
    expected = {
        "docling/csv-comma.csv": ("text/csv", "utf-8", ","),
        "docling/csv-semicolon.csv": ("text/csv", "utf-8", ";"),
        "docling/csv-pipe.csv": ("text/csv", "utf-8", "|"),
        "docling/csv-tab.csv": ("text/tab-separated-values", "utf-8", "\t"),
        "unstructured/table-semicolon-delimiter.csv": ("text/csv", "utf-8", ";"),
        "unstructured/stanley-cups-utf-16.csv": ("text/csv", "utf-16", ","),
        "csv-parser/bench_utf16.csv": ("text/csv", "utf-16", ","),
        "csv-parser/bench_utf16-big.csv": ("text/csv", "utf-16", ","),
        "csvlint/invalid-byte-sequence.csv": ("text/csv", "cp1252", ","),
        "csvlint/cr-line-endings.csv": ("text/csv", "utf-8", ","),
        "csv-spectrum/quotes_and_newlines.csv": ("text/csv", "utf-8", ","),
    }
    found = {}
    for file in expected:
        sniffed = _sniff_file(folder / file)
        found[file] = (sniffed.media_type, sniffed.encoding, sniffed.delimiter)
    assert found == expected


def test_json_that_must_be_accepted_is_json(corpus_dir: Path) -> None:
    folder = corpus_dir / "json"
    accepted = [file for file, expected in _manifest(folder) if expected.startswith("ACCEPT")]
    assert len(accepted) > 50
    types = {file: _sniff_file(folder / file).media_type for file in accepted}
    assert {file: media_type for file, media_type in types.items() if media_type != "application/json"} == {}
