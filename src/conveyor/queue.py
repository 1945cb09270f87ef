"""All job SQL: enqueue, claim, heartbeat, finish, fail and retry, cancel, requeue stalled, stats.

Every function takes the session keyword-only and never commits: the caller owns the transaction.
The same statements run on both databases; the dialect line is drawn in two places only: PostgreSQL
claims with ``FOR UPDATE SKIP LOCKED`` (SQLite ignores it, and serialises claims with ``BEGIN
IMMEDIATE`` instead, see ``store.database``), and PostgreSQL wakes sleeping workers with NOTIFY.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson
from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from conveyor.errors import Conflict, ConveyorError, InputError, NotFound
from conveyor.store.tables import Job, JsonColumn, UtcDateTime, utcnow

NOTIFY_CHANNEL = "conveyor_jobs"
ANALYZE_AFTER = 1000
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)``, capped, times a factor in
    [0.5, 1.5) so that jobs failing together do not come back together."""

    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        raw = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1))
        return raw * (0.5 + rand())


def dedup_key(*, sha256: str, pipeline: str, params: dict[str, Any]) -> str:
    """Same bytes, same pipeline, same params: the same work."""
    canonical = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{sha256}\0{pipeline}\0".encode() + canonical).hexdigest()


def _notify(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def enqueue(
    session: Session,
    *,
    pipeline: str,
    params: dict[str, Any] | None = None,
    priority: int = 3,
    document_id: int | None = None,
    batch_id: int | None = None,
    dedup: str | None = None,
    duplicate_of: int | None = None,
    max_attempts: int = 3,
    source: str | None = None,
) -> Job:
    """Add a job. A job that duplicates finished work is born ``succeeded`` pointing at it."""
    if not 1 <= priority <= 4:
        raise InputError(f"priority must be 1 (most urgent) to 4, not {priority}")
    now = utcnow()
    job = Job(
        pipeline=pipeline,
        params=params or {},
        priority=priority,
        document_id=document_id,
        batch_id=batch_id,
        dedup_key=dedup,
        duplicate_of=duplicate_of,
        max_attempts=max_attempts,
        source=source,
        created_at=now,
        run_after=now,
    )
    if duplicate_of is not None:
        job.status = "succeeded"
        job.progress = 100
        job.started_at = job.finished_at = now
        job.summary = {"duplicate_of": duplicate_of}
    session.add(job)
    session.flush()
    if duplicate_of is None:
        _notify(session)
    return job


def enqueue_many(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk insert of plain job rows (``pipeline``, ``params``, ``priority``...), for fan-out."""
    now = utcnow()
    values = [{"created_at": now, "run_after": now, "params": {}, **row} for row in rows]
    if not values:
        return 0
    session.execute(insert(Job), values)
    if len(values) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # A big fan-out into a table the planner last saw small gets a sorting plan for every claim
        # until autovacuum analyses it; analysing now costs milliseconds.
        session.execute(text("ANALYZE jobs"))
    _notify(session)
    return len(values)


def find_duplicate(session: Session, *, dedup: str) -> Job | None:
    """The earliest job that did the same work successfully.

    Only a success counts: a duplicate of a job still queued or running would be born
    ``succeeded`` with nothing behind it if that job then failed. Two identical files submitted at
    once both run; their effects are upserts, so the second changes nothing."""
    return session.scalars(
        select(Job)
        .where(Job.dedup_key == dedup, Job.status == "succeeded")
        .where(Job.duplicate_of.is_(None))
        .order_by(Job.id)
        .limit(1)
    ).first()


# The hot statements are built once, with bind parameters: rebuilding them and computing their
# cache key on every call cost about half of a worker's Python time per job (see bench/).
JOBS = cast(Table, Job.__table__)
_NOW = bindparam("now", type_=UtcDateTime())
_OWNER = bindparam("owner", type_=JOBS.c.worker_id.type)
_RUNNABLE = (
    select(JOBS.c.id)
    .where(JOBS.c.status == "queued", JOBS.c.run_after <= _NOW)
    .order_by(JOBS.c.priority, JOBS.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM = (
    update(JOBS)
    .where(JOBS.c.id.in_(_RUNNABLE))
    .values(
        status="running",
        attempts=JOBS.c.attempts + 1,
        lease_until=bindparam("lease", type_=UtcDateTime()),
        worker_id=_OWNER,
        started_at=func.coalesce(JOBS.c.started_at, _NOW),
    )
    .returning(
        JOBS.c.id,
        JOBS.c.pipeline,
        JOBS.c.params,
        JOBS.c.priority,
        JOBS.c.attempts,
        JOBS.c.max_attempts,
        JOBS.c.document_id,
        JOBS.c.batch_id,
        JOBS.c.cancel_requested,
    )
)
_FINISH = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job"), JOBS.c.worker_id == _OWNER, JOBS.c.status == "running")
    .values(
        status="succeeded",
        progress=100,
        summary=bindparam("result_summary", type_=JsonColumn),
        review_status=bindparam("review", type_=JOBS.c.review_status.type),
        finished_at=_NOW,
        lease_until=None,
        error=None,
        error_code=None,
    )
    .returning(JOBS.c.id)
)
_FINISH_MANY = (
    update(JOBS)
    .where(
        JOBS.c.id.in_(bindparam("job_ids", expanding=True)),
        JOBS.c.worker_id == _OWNER,
        JOBS.c.status == "running",
    )
    .values(status="succeeded", progress=100, finished_at=_NOW, lease_until=None)
)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """What a worker needs of a job it claimed (a plain value: no ORM object to outlive a session)."""

    id: int
    pipeline: str
    params: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    document_id: int | None
    batch_id: int | None
    cancel_requested: bool


def claim(
    session: Session, *, worker_id: str, limit: int = 1, lease_seconds: float = 60.0
) -> list[ClaimedJob]:
    """Take up to ``limit`` runnable jobs, most urgent first, then oldest; each claim is an attempt."""
    # The clock is read once the transaction holds its connection (on SQLite, after BEGIN IMMEDIATE
    # waited for the write lock): jobs committed by the writer it waited for are runnable now.
    session.connection()
    now = utcnow()
    rows = session.execute(
        _CLAIM,
        {"now": now, "lease": now + dt.timedelta(seconds=lease_seconds), "owner": worker_id, "limit": limit},
    ).all()
    claimed = [ClaimedJob(**row._asdict()) for row in rows]
    return sorted(claimed, key=lambda job: (job.priority, job.id))


@dataclass(frozen=True, slots=True)
class Beat:
    held: set[int]
    cancel_requested: set[int]


def heartbeat(session: Session, *, job_ids: Sequence[int], worker_id: str, lease_seconds: float) -> Beat:
    """Extend the leases this worker still holds. Says which of ``job_ids`` it still holds (a job
    missing there was taken away after its lease ran out) and which were asked to cancel."""
    if not job_ids:
        return Beat(set(), set())
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == "running")
        .values(lease_until=utcnow() + dt.timedelta(seconds=lease_seconds))
        .returning(Job.id, Job.cancel_requested),
        execution_options={"synchronize_session": False},
    ).all()
    return Beat({job_id for job_id, _ in rows}, {job_id for job_id, cancel in rows if cancel})


def extend_running_leases(session: Session, *, seconds: float, except_job: int) -> None:
    """Give every other running job's lease ``seconds`` more.

    On SQLite a long write transaction (the results of a big file) holds the only write lock, so
    no other worker can heartbeat meanwhile; without this, the first sweep after the commit would
    take live jobs away from healthy workers. Called inside that transaction, before it commits.
    Row by row, since SQLite has no interval arithmetic; only running jobs, so only a few rows.
    """
    running = session.execute(
        select(Job.id, Job.lease_until).where(Job.status == "running", Job.id != except_job)
    ).all()
    for job_id, lease_until in running:
        if lease_until is not None:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(lease_until=lease_until + dt.timedelta(seconds=seconds)),
                execution_options={"synchronize_session": False},
            )


def cancel_requested(session: Session, *, job_ids: Sequence[int]) -> set[int]:
    if not job_ids:
        return set()
    return set(
        session.scalars(
            select(Job.id).where(Job.id.in_(job_ids), Job.cancel_requested.is_(True), Job.status == "running")
        )
    )


def set_progress(session: Session, *, job_id: int, worker_id: str, progress: int) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(progress=max(0, min(100, progress))),
        execution_options={"synchronize_session": False},
    )


def _settle(session: Session, *, job_id: int, worker_id: str, values: dict[str, Any]) -> bool:
    """Move a running job this worker owns to its next state; False if the lease was lost."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(**values)
        .returning(Job.id),
        execution_options={"synchronize_session": False},
    ).first()
    return result is not None


def finish(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    summary: dict[str, Any] | None = None,
    review_status: str = "none",
) -> bool:
    """Mark success. Call it in the transaction that writes the job's results: if it returns False
    the lease was lost to another worker, and the caller must roll back so effects happen once."""
    params = {
        "job": job_id,
        "owner": worker_id,
        "now": utcnow(),
        "result_summary": summary or {},
        "review": review_status,
    }
    return session.execute(_FINISH, params).first() is not None


def finish_many(session: Session, *, job_ids: Sequence[int], worker_id: str) -> int:
    """Mark several no-result jobs succeeded in one statement (one commit for a claimed batch);
    returns how many this worker still owned."""
    if not job_ids:
        return 0
    result = session.execute(_FINISH_MANY, {"job_ids": list(job_ids), "owner": worker_id, "now": utcnow()})
    return int(result.rowcount)  # type: ignore[attr-defined]


class Attempt(Protocol):
    """The little ``fail`` needs to know of a job: a claimed job or a row."""

    @property
    def id(self) -> int: ...

    @property
    def attempts(self) -> int: ...

    @property
    def max_attempts(self) -> int: ...


def fail(
    session: Session,
    *,
    job: Attempt,
    worker_id: str,
    error: BaseException,
    backoff: Backoff,
    rand: Callable[[], float] = random.random,
) -> str:
    """Record a failed attempt: retry later, fail for good, or dead-letter. Returns the new status."""
    retryable = error.retryable if isinstance(error, ConveyorError) else True
    code = error.code if isinstance(error, ConveyorError) else "internal_error"
    message = str(error) or type(error).__name__
    now = utcnow()
    cancel_asked = session.scalar(select(Job.cancel_requested).where(Job.id == job.id))
    if cancel_asked:
        values: dict[str, Any] = {"status": "cancelled", "finished_at": now, "lease_until": None}
    elif retryable and job.attempts < job.max_attempts:
        values = {
            "status": "queued",
            "run_after": now + dt.timedelta(seconds=backoff.delay(job.attempts, rand)),
            "lease_until": None,
            "worker_id": None,
        }
    else:
        values = {"status": "failed", "dead_lettered": retryable, "finished_at": now}
    values |= {"error": message, "error_code": code}
    if _settle(session, job_id=job.id, worker_id=worker_id, values=values):
        return str(values["status"])
    return "lost"


def mark_cancelled(session: Session, *, job_id: int, worker_id: str) -> bool:
    return _settle(
        session,
        job_id=job_id,
        worker_id=worker_id,
        values={"status": "cancelled", "finished_at": utcnow(), "lease_until": None},
    )


def release(session: Session, *, job_ids: Sequence[int], worker_id: str) -> int:
    """Hand jobs back untouched (graceful shutdown): queued again, and the attempt not counted;
    a job whose cancellation was asked for meanwhile is cancelled instead."""
    if not job_ids:
        return 0
    owned = (Job.id.in_(job_ids), Job.worker_id == worker_id, Job.status == "running")
    session.execute(
        update(Job)
        .where(*owned, Job.cancel_requested.is_(True))
        .values(status="cancelled", finished_at=utcnow(), lease_until=None),
        execution_options={"synchronize_session": False},
    )
    result = session.execute(
        update(Job)
        .where(*owned)
        .values(
            status="queued",
            attempts=Job.attempts - 1,
            lease_until=None,
            worker_id=None,
            run_after=utcnow(),
        ),
        execution_options={"synchronize_session": False},
    )
    _notify(session)
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Swept:
    """What ``requeue_expired`` did, so the caller can tell watchers about the jobs that ended."""

    requeued: list[int]
    dead_lettered: list[int]
    cancelled: list[int]

    def __len__(self) -> int:
        return len(self.requeued) + len(self.dead_lettered) + len(self.cancelled)


def _ids(session: Session, statement: Any) -> list[int]:
    return [
        row[0]
        for row in session.execute(
            statement.returning(Job.id), execution_options={"synchronize_session": False}
        )
    ]


def requeue_expired(session: Session) -> Swept:
    """Jobs whose worker vanished (lease ran out): re-queue them, or dead-letter them past
    ``max_attempts``, or cancel them if their cancellation was asked for meanwhile."""
    now = utcnow()
    expired = (Job.status == "running", Job.lease_until < now)
    ended = {"finished_at": now, "lease_until": None}
    cancelled = _ids(
        session,
        update(Job).where(*expired, Job.cancel_requested.is_(True)).values(status="cancelled", **ended),
    )
    dead = _ids(
        session,
        update(Job)
        .where(*expired, Job.attempts >= Job.max_attempts)
        .values(
            status="failed",
            dead_lettered=True,
            error_code="lease_expired",
            error=func.coalesce(Job.error, "the worker stopped heartbeating (lease expired)"),
            **ended,
        ),
    )
    requeued = _ids(
        session,
        update(Job).where(*expired).values(status="queued", run_after=now, lease_until=None, worker_id=None),
    )
    if requeued:
        _notify(session)
    return Swept(requeued, dead, cancelled)


def get(session: Session, job_id: int, *, for_update: bool = False) -> Job:
    query = select(Job).where(Job.id == job_id)
    if for_update:
        query = query.with_for_update()
    job = session.scalars(query).first()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def cancel(session: Session, *, job_id: int) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop at its next check."""
    job = get(session, job_id, for_update=True)
    if job.status == "queued":
        job.status = "cancelled"
        job.finished_at = utcnow()
    elif job.status == "running":
        job.cancel_requested = True
    else:
        raise Conflict(f"job {job_id} is already {job.status}")
    session.flush()
    return job


def retry(session: Session, *, job_id: int) -> Job:
    """Put a failed or cancelled job (dead-lettered ones included) back in the queue, fresh."""
    job = get(session, job_id, for_update=True)
    if job.status not in ("failed", "cancelled"):
        raise Conflict(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried")
    job.status = "queued"
    job.attempts = 0
    job.dead_lettered = False
    job.cancel_requested = False
    job.error = job.error_code = None
    job.run_after = utcnow()
    job.finished_at = None
    job.progress = 0
    session.flush()
    _notify(session)
    return job


def stats(session: Session) -> dict[str, Any]:
    by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    by_pipeline: dict[str, dict[str, int]] = {}
    for pipeline, status, count in session.execute(
        select(Job.pipeline, Job.status, func.count()).group_by(Job.pipeline, Job.status)
    ):
        by_pipeline.setdefault(pipeline, {})[status] = count
    oldest = session.scalar(select(func.min(Job.created_at)).where(Job.status == "queued"))
    dead = session.scalar(select(func.count()).where(Job.dead_lettered.is_(True))) or 0
    return {
        "by_status": {s: by_status.get(s, 0) for s in ("queued", "running", *FINISHED)},
        "by_pipeline": by_pipeline,
        "dead_lettered": dead,
        "oldest_queued_at": oldest,
    }


def dead_letters(session: Session, *, limit: int = 100) -> list[Job]:
    return list(
        session.scalars(select(Job).where(Job.dead_lettered.is_(True)).order_by(Job.id.desc()).limit(limit))
    )
