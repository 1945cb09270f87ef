"""A batch's shared state: its files' outcomes, its counters and its event stream, kept exact when
chunks run twice, workers die and several processes write at once.

Exactly once. A file's row leaves ``queued`` in one guarded update (``WHERE status = 'queued'``), and
only the transaction whose update took effect adds to the counters, writes the file's events and,
when ``processed + failed`` reaches ``total``, queues the one report job. A chunk re-run after a crash
finds its finished files no longer queued and skips them.

In order, without gaps. Every transaction that writes a batch event first updates (so locks) the
batch's row and keeps that lock until it commits; event ids are drawn after the lock is taken, so
the events of one batch commit in id order, and a reader that asks for ids above the last it saw
never skips one that commits later (PostgreSQL; SQLite has one writer at a time anyway).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from conveyor import progress, queue
from conveyor.store.tables import Batch, BatchFile, utcnow

REPORT_JOB: Final = "batch-report"
PROGRESS_FILES: Final = 10
PROGRESS_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one file: ``result`` is the pipeline's summary (with its ``matches`` list)."""

    ok: bool
    result: dict[str, Any]
    matches: list[dict[str, Any]]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Counters:
    total: int
    processed: int
    failed: int
    matches: int

    @property
    def done(self) -> int:
        return self.processed + self.failed

    def as_json(self) -> dict[str, int]:
        return {
            "total": self.total,
            "processed": self.processed,
            "failed": self.failed,
            "matches": self.matches,
        }


def batch_event(session: Session, batch_id: int, type: str, data: dict[str, Any]) -> None:
    """A batch event; the caller's transaction must already hold the batch row (see the module)."""
    progress.record_event(session, type=type, batch_id=batch_id, data=data)


def lock(session: Session, batch_id: int) -> Batch | None:
    """The batch's row, locked until the transaction ends (a plain read on SQLite, whose write
    transactions are serial already)."""
    return session.scalars(select(Batch).where(Batch.id == batch_id).with_for_update()).first()


def settle_file(session: Session, *, batch_id: int, file_id: int, name: str, outcome: Outcome) -> bool:
    """Record one file's outcome, its events and, if it was the last, the report job; False (and
    nothing written) when the file was settled already or the batch was cancelled."""
    settled = session.execute(
        update(BatchFile)
        .where(BatchFile.id == file_id, BatchFile.status == "queued")
        .values(
            status="succeeded" if outcome.ok else "failed",
            result=outcome.result,
            error=outcome.error,
            matches=len(outcome.matches),
            finished_at=utcnow(),
        )
        .returning(BatchFile.id),
        execution_options={"synchronize_session": False},
    ).first()
    if settled is None:
        return False
    counters = _add(
        session, batch_id, processed=int(outcome.ok), failed=int(not outcome.ok), matches=len(outcome.matches)
    )
    if outcome.matches:
        batch_event(
            session,
            batch_id,
            "MATCH_FOUND",
            {"data": {"file_id": file_id, "file": name, "matches": outcome.matches}, **counters.as_json()},
        )
    if not outcome.ok:
        batch_event(
            session,
            batch_id,
            "ERROR",
            {"file_id": file_id, "file": name, "message": outcome.error, "code": "file_failed"},
        )
    _progress(session, batch_id, counters)
    if counters.done == counters.total:
        _queue_report(session, batch_id)
    return True


def fail_files(session: Session, *, batch_id: int, job_id: int, message: str) -> int:
    """Every still-queued file of a chunk job that failed for good counts as failed with its error."""
    rows = session.execute(
        select(BatchFile.id, BatchFile.name).where(BatchFile.job_id == job_id, BatchFile.status == "queued")
    ).all()
    failed = 0
    for file_id, name in rows:
        outcome = Outcome(ok=False, result={"status": "failed"}, matches=[], error=message)
        failed += settle_file(session, batch_id=batch_id, file_id=file_id, name=name, outcome=outcome)
    return failed


def _add(session: Session, batch_id: int, *, processed: int, failed: int, matches: int) -> Counters:
    row = session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(
            processed=Batch.processed + processed,
            failed=Batch.failed + failed,
            matches=Batch.matches + matches,
        )
        .returning(Batch.total, Batch.processed, Batch.failed, Batch.matches),
        execution_options={"synchronize_session": False},
    ).one()
    return Counters(*row)


def _progress(session: Session, batch_id: int, counters: Counters) -> None:
    """A PROGRESS event every PROGRESS_FILES files or PROGRESS_SECONDS, whichever comes first,
    and always for the last file."""
    batch = session.get(Batch, batch_id)
    assert batch is not None
    now = utcnow()
    due = (
        counters.done == counters.total
        or counters.done - batch.progress_done >= PROGRESS_FILES
        or batch.progress_at is None
        or now - batch.progress_at >= dt.timedelta(seconds=PROGRESS_SECONDS)
    )
    if not due:
        return
    batch.progress_at, batch.progress_done = now, counters.done
    value = round(100 * counters.done / counters.total) if counters.total else 100
    batch_event(session, batch_id, "PROGRESS", {"value": value, **counters.as_json()})


def _queue_report(session: Session, batch_id: int) -> None:
    job = queue.enqueue(
        session, pipeline=REPORT_JOB, batch_id=batch_id, priority=2, source=f"batch:{batch_id}"
    )
    session.execute(
        update(Batch).where(Batch.id == batch_id).values(report_job_id=job.id),
        execution_options={"synchronize_session": False},
    )
