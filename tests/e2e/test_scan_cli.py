"""`conveyor scan` as a user runs it: a real subprocess over a generated folder and a zip of it,
with its own worker processes and SQLite database in the data folder given.

The expected matches are those written into the drawings, not what the pipeline happens to say: a
code on page 2, one written across two lines, one with an en dash, one the given pattern does not
cover, a corrupt file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import orjson
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from conveyor.store.database import create_database_engine, read_session_factory
from conveyor.store.tables import Batch
from tests.drawings import corrupt_pdf, drawing_pdf, targets_csv, targets_xlsx, zipped

CONVEYOR = Path(sys.executable).parent / "conveyor"
SHEETS = ["Summary", "Matches", "Files", "Unmatched targets"]
# The Matches sheet's relationships: where xlsx keeps the targets of its hyperlinks.
# HOLE codes only: the PIPE-200 written on a drawing is not a code to this pattern.
PATTERN = r"HOLE[- ]?[0-9]+"
DRAWINGS = {
    "area-1/D-001.pdf": drawing_pdf(["HOLE-101", "HOLE-102"]),
    "area-1/D-002.pdf": drawing_pdf(["HOLE-103"], split=["HOLE-103"]),
    "area-2/D-003.pdf": drawing_pdf(["HOLE-900", "HOLE-105"], pages=2),
    "area-2/D-004.pdf": drawing_pdf(["HOLE\u2013107", "PIPE-200"]),
    "area-2/D-005.pdf": drawing_pdf([]),
    "area-2/broken.pdf": corrupt_pdf(),
}
TARGETS = ["HOLE-101", "HOLE-103", "HOLE-105", "HOLE-107", "PIPE-200", "HOLE-777"]
MATCHES = {  # (file, code, page)
    ("area-1/D-001.pdf", "HOLE-101", 1),
    ("area-1/D-002.pdf", "HOLE-103", 1),
    ("area-2/D-003.pdf", "HOLE-105", 2),
    ("area-2/D-004.pdf", "HOLE-107", 1),
}
STATUSES = {
    "area-1/D-001.pdf": "2 codes",
    "area-1/D-002.pdf": "1 code",
    "area-2/D-003.pdf": "2 codes",
    "area-2/D-004.pdf": "1 code",
    "area-2/D-005.pdf": "no code",
    "area-2/broken.pdf": "failed",
}


def scan_env() -> dict[str, str]:
    """This environment without CONVEYOR_ settings: the scan's database and storage are the
    default ones in its --data-dir."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CONVEYOR_")}


def scan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONVEYOR, "scan", *map(str, args)],
        capture_output=True,
        text=True,
        env=scan_env(),
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plant")
    for name, data in DRAWINGS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def summary_of(result: subprocess.CompletedProcess[str], report: Path) -> dict[str, Any]:
    """The one JSON object on stdout, checked against the generated drawings."""
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    summary: dict[str, Any] = orjson.loads(line)
    total = len(DRAWINGS)
    assert (summary["status"], summary["total"], summary["processed"], summary["failed"]) == (
        "completed",
        total,
        total - 1,
        1,
    )
    assert summary["report"] == str(report)
    matches = summary["matches"]
    assert len(matches) == len(MATCHES) == summary["match_count"], "every match once"
    assert {(match["file"], match["code"], match["page"]) for match in matches} == MATCHES
    for match in matches:
        assert (match["target"], match["kind"], match["confidence"]) == (match["code"], "exact", 1.0)
        assert isinstance(match["file_id"], int)
    [failed] = summary["failed_files"]
    assert failed["file"] == "area-2/broken.pdf" and "broken.pdf" in failed["message"]
    return summary


def check_report(report: Path) -> list[str]:
    """The four sheets with the generated matches; the Matches sheet's links, in its ``link`` column."""
    book = CalamineWorkbook.from_path(str(report))
    assert book.sheet_names == SHEETS
    matches = book.get_sheet_by_name("Matches").to_python()
    assert matches[0][:4] == ["code", "file", "page", "link"]
    assert sorted((row[1], row[0], row[2]) for row in matches[1:]) == sorted(MATCHES)
    files = book.get_sheet_by_name("Files").to_python()
    assert files[0][:3] == ["file", "status", "codes"]
    assert {row[0]: row[1] for row in files[1:]} == STATUSES and len(files) == len(STATUSES) + 1
    unmatched = book.get_sheet_by_name("Unmatched targets").to_python()[1:]
    assert sorted(row[0] for row in unmatched) == ["HOLE-777", "PIPE-200"]
    return [str(row[3]) for row in matches[1:]]


def linked_path(link: str) -> Path:
    parts = urlsplit(link)
    assert parts.scheme == "file", link
    return Path(url2pathname(parts.path))


@dataclass(frozen=True)
class ScanRun:
    result: subprocess.CompletedProcess[str]
    report: Path


@pytest.fixture(scope="module")
def folder_scan(plant: Path, tmp_path_factory: pytest.TempPathFactory) -> ScanRun:
    """The plant folder scanned with --json, an xlsx target list and the HOLE pattern."""
    work = tmp_path_factory.mktemp("folder-scan")
    targets = work / "holes.xlsx"
    targets.write_bytes(targets_xlsx(TARGETS))
    report = work / "out" / "report.xlsx"
    report.parent.mkdir()
    result = scan(
        plant,
        "--pattern",
        PATTERN,
        "--targets",
        targets,
        "--report",
        report,
        "--json",
        "--workers",
        "1",
        "--no-ocr",
        "--data-dir",
        work / "data",
    )
    return ScanRun(result, report)


def test_a_folder_scan_prints_one_json_summary_and_writes_the_report(
    folder_scan: ScanRun, plant: Path
) -> None:
    summary_of(folder_scan.result, folder_scan.report)
    links = check_report(folder_scan.report)
    # A folder's links name the drawings where they are on disk.
    assert sorted(linked_path(link) for link in links) == sorted(
        (plant / file).resolve() for file, _, _ in MATCHES
    )


def test_a_zip_scan_gives_the_same_matches_and_links_to_stored_copies(tmp_path: Path) -> None:
    archive = tmp_path / "drawings.zip"
    archive.write_bytes(zipped(DRAWINGS))
    targets = tmp_path / "holes.csv"
    targets.write_bytes(targets_csv(TARGETS))
    report = tmp_path / "report.xlsx"

    result = scan(
        archive,
        "--pattern",
        PATTERN,
        "--targets",
        targets,
        "--report",
        report,
        "--json",
        "--workers",
        "1",
        "--chunk-size",
        "2",
        "--no-ocr",
        "--data-dir",
        tmp_path / "data",
    )

    summary_of(result, report)
    links = check_report(report)
    # A zip's members open as the copies stored in the data folder, byte for byte.
    assert all(linked_path(link).is_relative_to((tmp_path / "data").resolve()) for link in links)
    assert {linked_path(link).read_bytes() for link in links} == {DRAWINGS[file] for file, _, _ in MATCHES}


@pytest.mark.timeout(120)
def test_without_json_each_match_is_printed_as_its_file_finishes(tmp_path: Path) -> None:
    """Two text drawings, then a scan that OCR reads (a second or two; one file per job): the first
    match line must be out while the scan is still to come."""
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(drawing_pdf(["HOLE-101"]))
    (folder / "b.pdf").write_bytes(drawing_pdf(["HOLE-103"], split=["HOLE-103"]))
    (folder / "z-scan.pdf").write_bytes(drawing_pdf(["HOLE-107"], scanned=True))
    targets = tmp_path / "holes.csv"
    targets.write_bytes(targets_csv(TARGETS))
    data_dir = tmp_path / "data"
    args = [folder, "--targets", targets, "--workers", "1", "--chunk-size", "1", "--data-dir", data_dir]

    lines: list[str] = []
    first_match_seen_at: tuple[int, int] | None = None
    with subprocess.Popen(
        [CONVEYOR, "scan", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=scan_env(),
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.startswith("MATCH") and first_match_seen_at is None:
                first_match_seen_at = batch_progress(data_dir)
        returncode = process.wait(30)

    assert returncode == 0, lines
    assert [line for line in lines if line.startswith("MATCH")] == [
        "MATCH HOLE-101 -> HOLE-101  a.pdf p.1",
        "MATCH HOLE-103 -> HOLE-103  b.pdf p.1",
        "MATCH HOLE-107 -> HOLE-107  z-scan.pdf p.1",
    ]
    assert lines[-1] == "batch 1: 3 scanned, 0 failed, 3 matches"
    assert first_match_seen_at is not None
    settled, total = first_match_seen_at
    assert settled < total, "the first match was printed only when every file was done"


def batch_progress(data_dir: Path) -> tuple[int, int]:
    """Files settled and files in all of the scan's (only) batch, read from its database now."""
    engine = create_database_engine(f"sqlite:///{(data_dir / 'conveyor.db').resolve()}")
    try:
        with read_session_factory(engine)() as session:
            processed, failed, total = session.execute(
                select(Batch.processed, Batch.failed, Batch.total)
            ).one()
    finally:
        engine.dispose()
    return processed + failed, total


def test_a_zip_member_that_climbs_out_is_refused_by_name(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zipped({"ok.pdf": DRAWINGS["area-1/D-001.pdf"], "../evil.pdf": b"%PDF-1.4\n"}))

    result = scan(archive, "--json", "--workers", "1", "--no-ocr", "--data-dir", tmp_path / "data")

    assert result.returncode == 2, result.stderr
    assert "../evil.pdf" in result.stderr and "climbs out of the archive" in result.stderr
    assert result.stdout == ""


def test_a_pattern_that_does_not_compile_is_refused_by_name(plant: Path, tmp_path: Path) -> None:
    result = scan(plant, "--pattern", "HOLE-(", "--json", "--workers", "1", "--data-dir", tmp_path / "data")

    assert result.returncode == 2, result.stderr
    assert "param 'pattern'" in result.stderr and "not a regular expression" in result.stderr
    assert result.stdout == ""
