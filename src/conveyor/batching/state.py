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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from conveyor import progress, queue
from conveyor.store.tables import Batch, BatchFile, Job, utcnow

REPORT_JOB: Final = "batch-report"
PROGRESS_FILES: Final = 10
PROGRESS_SECONDS: Final = 1.0
# The codes of the ERROR event that ends a batch (the other ERRORs are one file's failure).
ENDING_ERRORS: Final = frozenset({"cancelled", "report_failed"})


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


@dataclass(frozen=True, slots=True)
class Settling:
    """One file to settle: its row, its name (for events) and what became of it."""

    file_id: int
    name: str
    outcome: Outcome


_SETTLE = (
    update(BatchFile)
    .where(BatchFile.id == bindparam("file_id"), BatchFile.status == "queued")
    .values(
        status=bindparam("status"),
        result=bindparam("result"),
        error=bindparam("error"),
        matches=bindparam("matches"),
        finished_at=bindparam("now"),
    )
    .returning(BatchFile.id)
)


def settle_files(session: Session, *, batch_id: int, files: Sequence[Settling]) -> list[Settling]:
    """Record the outcomes of several files in one transaction (one counter update, their events,
    and the report job if they were the last); returns those settled here, leaving out any settled
    already or cancelled, for which nothing is written.

    The batch row is locked first, as every writer of a batch does (cancel too): rows are always
    locked batch, then files, then jobs, so two writers never wait on each other in a circle.
    """
    lock(session, batch_id)
    now = utcnow()
    settled = [
        file
        for file in files
        if session.execute(
            _SETTLE,
            {
                "file_id": file.file_id,
                "status": "succeeded" if file.outcome.ok else "failed",
                "result": file.outcome.result,
                "error": file.outcome.error,
                "matches": len(file.outcome.matches),
                "now": now,
            },
            execution_options={"synchronize_session": False},
        ).first()
        is not None
    ]
    if not settled:
        return []
    ok = sum(file.outcome.ok for file in settled)
    found = sum(len(file.outcome.matches) for file in settled)
    after, progress_at, progress_done = _add(
        session, batch_id, processed=ok, failed=len(settled) - ok, matches=found
    )
    original_done = progress_done
    running = Counters(
        after.total, after.processed - ok, after.failed - (len(settled) - ok), after.matches - found
    )
    for file in settled:
        outcome = file.outcome
        running = Counters(
            running.total,
            running.processed + outcome.ok,
            running.failed + (not outcome.ok),
            running.matches + len(outcome.matches),
        )
        if outcome.matches:
            data = {"file_id": file.file_id, "file": file.name, "matches": outcome.matches}
            batch_event(session, batch_id, "MATCH_FOUND", {"data": data, **running.as_json()})
        if not outcome.ok:
            error = {
                "file_id": file.file_id,
                "file": file.name,
                "message": outcome.error,
                "code": "file_failed",
            }
            batch_event(session, batch_id, "ERROR", error)
        if _progress_due(running, progress_at, progress_done, now):
            progress_at, progress_done = now, running.done
            _progress(session, batch_id, running)
    if progress_done != original_done:
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id)
            .values(progress_at=progress_at, progress_done=progress_done),
            execution_options={"synchronize_session": False},
        )
    if after.done == after.total:
        _queue_report(session, batch_id)
    return settled


def settle_file(session: Session, *, batch_id: int, file_id: int, name: str, outcome: Outcome) -> bool:
    """``settle_files`` for one file: False when it was settled already or cancelled."""
    return bool(settle_files(session, batch_id=batch_id, files=[Settling(file_id, name, outcome)]))


def fail_files(session: Session, *, batch_id: int, job_id: int, message: str) -> int:
    """Every still-queued file of a chunk job that failed for good counts as failed with its error."""
    rows = session.execute(
        select(BatchFile.id, BatchFile.name).where(BatchFile.job_id == job_id, BatchFile.status == "queued")
    ).all()
    outcome = Outcome(ok=False, result={"status": "failed"}, matches=[], error=message)
    files = [Settling(file_id, name, outcome) for file_id, name in rows]
    return len(settle_files(session, batch_id=batch_id, files=files))


def _add(
    session: Session, batch_id: int, *, processed: int, failed: int, matches: int
) -> tuple[Counters, dt.datetime | None, int]:
    """The counters after adding (locking the batch row until the transaction ends), and when the
    last PROGRESS was and at how many files."""
    row = session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(
            processed=Batch.processed + processed,
            failed=Batch.failed + failed,
            matches=Batch.matches + matches,
        )
        .returning(
            Batch.total, Batch.processed, Batch.failed, Batch.matches, Batch.progress_at, Batch.progress_done
        ),
        execution_options={"synchronize_session": False},
    ).one()
    return Counters(*row[:4]), row[4], row[5]


def _progress_due(
    counters: Counters, progress_at: dt.datetime | None, progress_done: int, now: dt.datetime
) -> bool:
    """A PROGRESS event is due every PROGRESS_FILES files or PROGRESS_SECONDS, whichever comes
    first, and always for the last file."""
    return (
        counters.done == counters.total
        or counters.done - progress_done >= PROGRESS_FILES
        or progress_at is None
        or now - progress_at >= dt.timedelta(seconds=PROGRESS_SECONDS)
    )


def _progress(session: Session, batch_id: int, counters: Counters) -> None:
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


def reconcile(session: Session) -> int:
    """Settle what ended without settling: files still queued whose chunk job is over (failed for
    good, cancelled, dead-lettered when its worker died on the last attempt) fail with that job's
    error, so the batch still completes; a running batch whose report job is over fails. Every
    worker runs this now and then, so no path that ends a job can leave a batch waiting forever.
    Returns how many files and batches it settled."""
    ended = ("failed", "cancelled")
    rows = session.execute(
        select(BatchFile.batch_id, BatchFile.id, BatchFile.name, Job.error)
        .join(Job, Job.id == BatchFile.job_id)
        .join(Batch, Batch.id == BatchFile.batch_id)
        .where(BatchFile.status == "queued", Job.status.in_(ended), Batch.status == "running")
        .order_by(BatchFile.batch_id, BatchFile.id)
    ).all()
    by_batch: dict[int, list[Settling]] = {}
    for batch_id, file_id, name, error in rows:
        message = f"its job ended without scanning it: {error or 'cancelled'}"
        outcome = Outcome(ok=False, result={"status": "failed"}, matches=[], error=message)
        by_batch.setdefault(batch_id, []).append(Settling(file_id, name, outcome))
    settled = sum(
        len(settle_files(session, batch_id=batch_id, files=files)) for batch_id, files in by_batch.items()
    )
    reports = session.execute(
        select(Batch.id, Job.error)
        .join(Job, Job.id == Batch.report_job_id)
        .where(Batch.status == "running", Job.status.in_(ended))
    ).all()
    for batch_id, error in reports:
        settled += fail_batch(session, batch_id, f"the report failed: {error or 'cancelled'}")
    return settled


def fail_batch(session: Session, batch_id: int, message: str) -> int:
    """A running batch that cannot complete (its report job failed) fails, with its last event."""
    lock(session, batch_id)
    failed = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status == "running")
        .values(status="failed", finished_at=utcnow())
        .returning(Batch.id),
        execution_options={"synchronize_session": False},
    ).first()
    if failed is None:
        return 0
    batch_event(session, batch_id, "ERROR", {"message": message, "code": "report_failed"})
    return 1
