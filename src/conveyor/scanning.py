"""``conveyor scan``: a folder or zip scanned as a batch on the embedded default (SQLite and the local
data folder unless configured otherwise), with worker processes of its own, a live progress bar and
a line per match, and the report written where asked.

The folder given on the command line is the batch's allowed root: the person at the terminal chose
it, and symlinks out of it are still refused.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from conveyor import intake, progress
from conveyor.batch_reports import write_batch_xlsx
from conveyor.batching import state
from conveyor.batching.report import load_batch_report
from conveyor.content import Limits
from conveyor.errors import InputError
from conveyor.settings import Settings
from conveyor.store.blobs import BlobStore, blob_store_for
from conveyor.store.database import read_session_factory
from conveyor.store.tables import BatchFile
from conveyor.worker import running_pool

POLL_SECONDS: Final = 0.2


@dataclass
class ScanRequest:
    path: Path
    pattern: str | None = None
    targets: Path | None = None
    target_column: str | None = None
    report: Path | None = None
    ocr: bool = True
    workers: int = 2
    chunk_size: int | None = None


@dataclass
class ScanOutcome:
    """What the scan printed as it went, and the end state."""

    batch_id: int
    last_event: dict[str, Any] = field(default_factory=dict)
    matches: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def start(settings: Settings, sessions: sessionmaker[Session], request: ScanRequest) -> int:
    """Store the files and queue the batch; its id."""
    limits = Limits(**settings.limit_values())
    params: dict[str, Any] = {"ocr": request.ocr}
    if request.pattern:
        params["pattern"] = request.pattern
    if request.targets is not None:
        params["targets"] = intake.target_list(
            request.targets, request.targets.name, limits, request.target_column
        )
    blobs = blob_store_for(settings)
    path = request.path.resolve()  # the folder named here is the root, ``..`` and all
    chunk_size = request.chunk_size or settings.batch_chunk_size
    with sessions.begin() as session:
        if path.is_dir():
            files = intake.folder_files(str(path), roots=[path])
            return _create(session, blobs, files, f"folder:{path.resolve()}", params, chunk_size)
        if not path.is_file():
            raise InputError(f"{path}: no such folder or zip")
        with path.open("rb") as stream:
            files = intake.zip_files(stream, subject=path.name, limits=limits)
            return _create(session, blobs, files, f"zip:{path.name}", params, chunk_size)


def _create(
    session: Session,
    blobs: BlobStore,
    files: Any,
    source: str,
    params: dict[str, Any],
    chunk_size: int,
) -> int:
    batch = intake.create_batch(
        session,
        blobs,
        files=files,
        source=source,
        pipeline="codescan",
        params=params,
        chunk_size=chunk_size,
        actor="conveyor scan",
    )
    return batch.id


def follow(
    sessions: sessionmaker[Session],
    batch_id: int,
    console: Console,
    on_match: Callable[[dict[str, Any]], None],
) -> ScanOutcome:
    """Read the batch's events until its last one, showing a progress bar and each match."""
    outcome = ScanOutcome(batch_id)
    last = 0
    columns = (
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[matches]} matches"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("scan", total=None, matches=0)
        while True:
            with sessions() as session:
                events = [
                    progress.as_json(event)
                    for event in progress.events_since(session, batch_id=batch_id, since=last)
                ]
            for event in events:
                last = event["id"]
                kind = event["type"]
                if kind == "STARTED":
                    bar.update(task, total=event["total"])
                elif kind in {"PROGRESS", "MATCH_FOUND"}:
                    bar.update(task, completed=event["processed"] + event["failed"], matches=event["matches"])
                if kind == "MATCH_FOUND":
                    data = event["data"]
                    for match in data["matches"]:
                        found = {**match, "file": data["file"], "file_id": data["file_id"]}
                        outcome.matches.append(found)
                        on_match(found)
                elif kind == "ERROR":
                    outcome.errors.append(event)
                    if event.get("code") in state.ENDING_ERRORS:
                        outcome.last_event = event
                        return outcome
                    bar.console.print(f"[red]failed[/red] {event.get('file')}: {event.get('message')}")
                elif kind == "COMPLETE":
                    bar.update(task, completed=event["total"])
                    outcome.last_event = event
                    return outcome
            time.sleep(POLL_SECONDS)


def write_report(
    sessions: sessionmaker[Session], settings: Settings, batch_id: int, out: Path, root: Path
) -> None:
    """The xlsx report; each Matches link opens the drawing itself: the file on disk for a folder,
    the stored copy for a zip's member (local storage), else the API's signed download."""
    blobs = blob_store_for(settings)
    with sessions() as session:
        report = load_batch_report(session, batch_id)
        names = dict(session.query(BatchFile.id, BatchFile.name).filter(BatchFile.batch_id == batch_id).all())

        def link(file_id: int) -> str:
            if root.is_dir():
                return (root / names[file_id]).resolve().as_uri()
            row, document = intake.get_batch_file(session, batch_id=batch_id, file_id=file_id)
            local = blobs.local_path(document.blob_key)
            return (
                local.resolve().as_uri()
                if local
                else f"{settings.public_url}/api/batches/{batch_id}/files/{row.id}"
            )

        buffer = io.BytesIO()
        write_batch_xlsx(report, buffer, link)
    out.write_bytes(buffer.getvalue())


def run_scan(
    settings: Settings, sessions: sessionmaker[Session], request: ScanRequest, console: Console
) -> ScanOutcome:
    """Start the batch, run it with ``workers`` processes, follow it to the end, write the report."""
    batch_id = start(settings, sessions, request)

    def show(match: dict[str, Any]) -> None:
        kind = "" if match["kind"] == "exact" else f" ({match['kind']}, {match['confidence']:.2f})"
        where = f"{match['file']} p.{match['page']}"
        console.print(f"[green]MATCH[/green] {match['code']} -> {match['target']}{kind}  {where}")

    with running_pool(settings, request.workers):
        # Events are read without SQLite's write lock, which the workers need for every file.
        outcome = follow(read_session_factory(sessions.kw["bind"]), batch_id, console, show)
    if request.report is not None and outcome.last_event.get("type") == "COMPLETE":
        write_report(sessions, settings, batch_id, request.report, request.path)
    return outcome
