"""Reading and steering jobs: listings, results, cancel, retry, delete, legal hold, retention."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor import progress, queue, retention
from conveyor.errors import Conflict, NotFound
from conveyor.intake.access import record_audit
from conveyor.store.blobs import BlobStore
from conveyor.store.tables import Document, Event, FindingRow, Job, RecordRow

T = TypeVar("T")
ResultRow = TypeVar("ResultRow", RecordRow, FindingRow)
# Duplicate job ids named in the Conflict that refuses to delete their original.
SHOWN_DUPLICATES = 20


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; pass ``next_cursor`` back for the next one."""

    items: list[T]
    next_cursor: int | None


DOCUMENT_CONTENT_LIMIT = 10_000
# Pipelines whose records are ``page`` and ``code`` in the document pipeline's shape.
PAGE_PIPELINES = frozenset({"document"})


@dataclass(frozen=True, slots=True)
class DocumentView:
    document: Document
    latest_job: Job | None
    records: Page[RecordRow]
    # The ``page`` and ``code`` records of the latest job, in page order (document-like pipelines).
    pages: list[RecordRow]
    codes: list[RecordRow]


def get_job(session: Session, *, job_id: int) -> Job:
    return queue.get(session, job_id)


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    pipeline: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> Page[Job]:
    """Newest first; ``cursor`` is the last id of the previous page."""
    query = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(Job.status == status)
    if pipeline is not None:
        query = query.where(Job.pipeline == pipeline)
    if cursor is not None:
        query = query.where(Job.id < cursor)
    return _page(list(session.scalars(query)), limit, lambda job: job.id)


def cancel_job(session: Session, *, job_id: int) -> Job:
    job = queue.cancel(session, job_id=job_id)
    if job.status == "cancelled":
        progress.record_error(session, job_id=job.id, message="cancelled", code="cancelled")
    return job


def retry_job(session: Session, *, job_id: int) -> Job:
    """Also the dead-letter queue's requeue action."""
    return queue.retry(session, job_id=job_id)


def delete_job(session: Session, blobs: BlobStore, *, job_id: int, actor: str) -> dict[str, int]:
    """Delete a finished job and what it owns (see ``retention.delete_jobs``); never a held one,
    nor one whose results its duplicates read (delete those first)."""
    job = queue.get(session, job_id, for_update=True)
    if job.status not in queue.FINISHED:
        raise Conflict(f"job {job_id} is {job.status}; only finished jobs can be deleted")
    if job.legal_hold:
        raise Conflict(f"job {job_id} is under legal hold")
    duplicates = retention.originals_still_read(session, job_ids=[job_id]).get(job_id)
    if duplicates:
        shown = ", ".join(str(duplicate) for duplicate in duplicates[:SHOWN_DUPLICATES])
        more = len(duplicates) - SHOWN_DUPLICATES
        raise Conflict(
            f"job {job_id} holds the results of its duplicate jobs {shown}"
            + (f" and {more} more" if more > 0 else "")
            + "; delete those first"
        )
    counts = retention.delete_jobs(session, blobs, job_ids=[job_id])
    record_audit(session, actor=actor, action="job.delete", target=f"job:{job_id}", after=counts)
    return counts


def set_legal_hold(session: Session, *, job_id: int, legal_hold: bool, actor: str) -> Job:
    job = queue.get(session, job_id, for_update=True)
    before = job.legal_hold
    job.legal_hold = legal_hold
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="job.legal_hold",
        target=f"job:{job_id}",
        before={"legal_hold": before},
        after={"legal_hold": legal_hold},
    )
    return job


def _results_job(session: Session, job_id: int) -> int:
    """A duplicate job's results are the earlier job's: follow ``duplicate_of``."""
    job = queue.get(session, job_id)
    return job.duplicate_of if job.duplicate_of is not None else job.id


def job_records(
    session: Session, *, job_id: int, limit: int = 100, cursor: int | None = None
) -> Page[RecordRow]:
    """The records this job (or, for a duplicate, the earlier job) was the latest to write."""
    return _results_page(session, RecordRow, job_id=job_id, limit=limit, cursor=cursor)


def job_findings(
    session: Session, *, job_id: int, limit: int = 100, cursor: int | None = None
) -> Page[FindingRow]:
    return _results_page(session, FindingRow, job_id=job_id, limit=limit, cursor=cursor)


def _results_page(
    session: Session, model: type[ResultRow], *, job_id: int, limit: int, cursor: int | None
) -> Page[ResultRow]:
    query = select(model).where(model.job_id == _results_job(session, job_id)).order_by(model.id)
    if cursor is not None:
        query = query.where(model.id > cursor)
    rows = list(session.scalars(query.limit(limit + 1)))
    return _page(rows, limit, lambda row: row.id)


def job_events(session: Session, *, job_id: int, since: int = 0, limit: int = 1000) -> list[Event]:
    queue.get(session, job_id)
    return progress.events_since(session, job_id=job_id, since=since, limit=limit)


def get_document(session: Session, *, document_id: int, records_limit: int = 100) -> DocumentView:
    """A document with its latest job and the first page of that job's records."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"document {document_id} not found")
    latest = session.scalars(
        select(Job).where(Job.document_id == document_id).order_by(Job.id.desc()).limit(1)
    ).first()
    records: Page[RecordRow] = Page([], None)
    pages: list[RecordRow] = []
    codes: list[RecordRow] = []
    if latest is not None:
        records = job_records(session, job_id=latest.id, limit=records_limit)
        if latest.pipeline in PAGE_PIPELINES:
            pages = _records_of_kind(session, job_id=latest.id, kind="page")
            codes = _records_of_kind(session, job_id=latest.id, kind="code")
    return DocumentView(document, latest, records, pages, codes)


def _records_of_kind(session: Session, *, job_id: int, kind: str) -> list[RecordRow]:
    """In page order. Not by id: PostgreSQL's merge inserts in key order, and "10" sorts before "2"."""
    query = (
        select(RecordRow)
        .where(RecordRow.job_id == _results_job(session, job_id), RecordRow.kind == kind)
        .order_by(RecordRow.id)
        .limit(DOCUMENT_CONTENT_LIMIT)
    )
    return sorted(session.scalars(query), key=_page_order)


def _page_order(row: RecordRow) -> tuple[int, ...]:
    """``"12"`` or ``"12:3"`` (page, then code number) as numbers."""
    return tuple(int(part) if part.isdigit() else 0 for part in row.key.split(":"))


def queue_stats(session: Session) -> dict[str, Any]:
    return queue.stats(session)


def dead_letters(session: Session, *, limit: int = 100) -> list[Job]:
    return queue.dead_letters(session, limit=limit)


def cleanup(
    session: Session, blobs: BlobStore, *, actor: str, older_than_days: int | None = None
) -> dict[str, int]:
    counts = retention.cleanup(session, blobs, older_than_days=older_than_days)
    record_audit(
        session,
        actor=actor,
        action="retention.cleanup",
        target="jobs",
        before={"older_than_days": older_than_days},
        after=counts,
    )
    return counts


def _page(rows: list[T], limit: int, key: Callable[[T], int]) -> Page[T]:
    if len(rows) > limit:
        return Page(rows[:limit], key(rows[limit - 1]))
    return Page(rows, None)
