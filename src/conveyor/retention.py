"""Retention: delete finished jobs past their pipeline's retention period, with everything they own.

A job's retention period is the database setting ``retention.<pipeline>`` (whole days), else
``DEFAULT_DAYS[pipeline]``, else ``DEFAULT_RETENTION_DAYS``. Timecards are kept 1,095 days (three
years) by default because the US Fair Labor Standards Act recordkeeping rule, 29 CFR 516.5, requires
payroll records to be preserved for at least three years. A job under legal hold is never deleted,
and neither is its document nor its blob.

A duplicate job (``duplicate_of``) owns no results: it reads its original's. So an original is
never deleted while a job that stays (not deleted in the same pass, or under legal hold) points at
it; it goes in the pass that deletes its last duplicate. Duplicates are born when they are
submitted, so an original usually outlives its retention period by as long as its newest duplicate.

What "a job's records" means depends on the pipeline: most pipelines own their records (namespace
``job:<id>``), but shared-key pipelines such as ``records`` upsert one row per natural key across
jobs, and each row remembers only its latest writer (``RecordRow.job_id``). Deleting a job deletes
the records whose latest writer it was; rows a later job re-wrote survive with that job.

Blob files are deleted only after the transaction that deleted their last document row commits
(a SQLAlchemy ``after_commit`` hook), so a rollback never leaves rows pointing at missing bytes. One
race remains: a concurrent upload of the very same bytes that stored its blob but had not committed
its document row when the check ran loses the file; its job then fails with ``NotFound`` and can be
re-submitted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from conveyor.errors import ConveyorError
from conveyor.store.blobs import BlobStore
from conveyor.store.tables import (
    Document,
    Event,
    FindingRow,
    Job,
    RecordRow,
    ReviewItem,
    SettingRow,
    utcnow,
)

logger = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "cancelled")
DEFAULT_RETENTION_DAYS = 90
DEFAULT_DAYS = {"timecard": 1095}
SETTING_PREFIX = "retention."
# Ids per DELETE ... WHERE id IN (...): well under SQLite's bound-parameter limit.
CHUNK = 500
T = TypeVar("T")


def retention_days(session: Session, *, pipeline: str) -> int:
    """The retention period of one pipeline, in days (settings store ``{"value": days}``)."""
    row = session.get(SettingRow, SETTING_PREFIX + pipeline)
    if row is not None and isinstance(row.value.get("value"), int):
        return int(row.value["value"])
    return DEFAULT_DAYS.get(pipeline, DEFAULT_RETENTION_DAYS)


def cleanup(
    session: Session,
    blobs: BlobStore,
    *,
    now: dt.datetime | None = None,
    older_than_days: int | None = None,
) -> dict[str, int]:
    """Delete every finished job past its retention period; ``older_than_days`` overrides the
    per-pipeline periods (the CLI's ``--older-than``). Returns how many rows of each kind went.

    An expired original that a remaining duplicate still reads is kept (see ``delete_jobs``); it
    goes with its last duplicate.
    """
    now = now or utcnow()
    pipelines = session.scalars(select(Job.pipeline).where(Job.status.in_(FINISHED)).distinct()).all()
    expired: list[int] = []
    for pipeline in pipelines:
        days = older_than_days
        if days is None:
            days = retention_days(session, pipeline=pipeline)
        cutoff = now - dt.timedelta(days=days)
        expired += session.scalars(
            select(Job.id).where(
                Job.pipeline == pipeline,
                Job.status.in_(FINISHED),
                Job.finished_at < cutoff,
                Job.legal_hold.is_(False),
            )
        ).all()
    counts = delete_jobs(session, blobs, job_ids=expired)
    logger.info("retention cleanup: %s", counts)
    return counts


def delete_jobs(session: Session, blobs: BlobStore, *, job_ids: Sequence[int]) -> dict[str, int]:
    """Delete these jobs, their records, findings, review items and events, then the documents no
    remaining job refers to, and (after commit) the blobs no remaining document refers to.

    The caller has checked that the jobs may go (finished, not on hold, no duplicate left reading
    them); held jobs and originals still read by a job that stays are skipped here all the same, as
    the last line of defence.
    """
    counts = dict.fromkeys(("jobs", "records", "findings", "review_items", "events", "documents", "blobs"), 0)
    document_ids: set[int] = set()
    still_read = originals_still_read(session, job_ids=job_ids)
    for chunk in _chunks(job_ids):
        found = session.execute(
            select(Job.id, Job.document_id).where(Job.id.in_(chunk), Job.legal_hold.is_(False))
        ).all()
        rows = [(job_id, doc) for job_id, doc in found if job_id not in still_read]
        ids = [job_id for job_id, _ in rows]
        if not ids:
            continue
        document_ids.update(doc for _, doc in rows if doc is not None)
        counts["records"] += _delete(session, RecordRow, RecordRow.job_id.in_(ids))
        counts["findings"] += _delete(session, FindingRow, FindingRow.job_id.in_(ids))
        counts["review_items"] += _delete(session, ReviewItem, ReviewItem.job_id.in_(ids))
        counts["events"] += _delete(session, Event, Event.job_id.in_(ids))
        counts["jobs"] += _delete(session, Job, Job.id.in_(ids))
    orphans, blob_keys = _delete_orphan_documents(session, document_ids)
    counts["documents"] = orphans
    counts["blobs"] = len(blob_keys)
    if blob_keys:
        _delete_blobs_after_commit(session, blobs, blob_keys)
    return counts


def originals_still_read(session: Session, *, job_ids: Sequence[int]) -> dict[int, list[int]]:
    """Those of ``job_ids`` that a job staying behind reads as its ``duplicate_of``, each with the
    ids of those duplicates. A duplicate stays if it is not among ``job_ids`` or is under legal hold
    (``delete_jobs`` skips it then)."""
    leaving = set(job_ids)
    readers: dict[int, list[int]] = {}
    for chunk in _chunks(sorted(leaving)):
        rows = session.execute(
            select(Job.id, Job.duplicate_of, Job.legal_hold)
            .where(Job.duplicate_of.in_(chunk))
            .order_by(Job.id)
        ).all()
        for duplicate, original, held in rows:
            if original is not None and (held or duplicate not in leaving):
                readers.setdefault(original, []).append(duplicate)
    return readers


def _delete_orphan_documents(session: Session, document_ids: set[int]) -> tuple[int, list[str]]:
    deleted = 0
    candidate_keys: set[str] = set()
    for chunk in _chunks(sorted(document_ids)):
        still_used = select(Job.document_id).where(Job.document_id.in_(chunk))
        orphans = session.execute(
            select(Document.id, Document.blob_key).where(
                Document.id.in_(chunk), Document.id.not_in(still_used)
            )
        ).all()
        if not orphans:
            continue
        candidate_keys.update(key for _, key in orphans)
        deleted += _delete(session, Document, Document.id.in_([doc for doc, _ in orphans]))
    unused: list[str] = []
    for keys in _chunks(sorted(candidate_keys)):
        used = set(session.scalars(select(Document.blob_key).where(Document.blob_key.in_(keys))))
        unused += [key for key in keys if key not in used]
    return deleted, unused


def _delete_blobs_after_commit(session: Session, blobs: BlobStore, keys: list[str]) -> None:
    """Delete the files once the deletion of their rows is durable; forget them on rollback."""

    def delete_files(_session: Session) -> None:
        event.remove(session, "after_rollback", forget)
        for key in keys:
            try:
                blobs.delete(key)
            except (ConveyorError, OSError):
                logger.exception("could not delete blob %s; it stays as an orphan", key)

    def forget(_session: Session) -> None:
        event.remove(session, "after_commit", delete_files)

    event.listen(session, "after_commit", delete_files, once=True)
    event.listen(session, "after_rollback", forget, once=True)


def _delete(session: Session, table: type[Any], condition: Any) -> int:
    result = session.execute(delete(table).where(condition), execution_options={"synchronize_session": False})
    return int(result.rowcount)  # type: ignore[attr-defined]


def _chunks(items: Iterable[T]) -> Iterable[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
