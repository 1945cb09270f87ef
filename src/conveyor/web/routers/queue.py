"""``/api/queue``: statistics, the dead-letter queue and its requeue, retention cleanup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from conveyor import intake
from conveyor.web.dependencies import AdminDep, BlobsDep, ReadSessionDep, SessionDep, SubmitterDep, ViewerDep
from conveyor.web.schemas import CleanupIn, CleanupOut, JobListOut, JobOut, QueueStatsOut

router = APIRouter(prefix="/api/queue", tags=["queue"])


@router.get("/stats")
def stats(_principal: ViewerDep, session: ReadSessionDep) -> QueueStatsOut:
    return QueueStatsOut.model_validate(intake.queue_stats(session))


@router.get("/dead")
def dead(
    _principal: ViewerDep,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobListOut:
    """Jobs that failed for good after their retries (newest first)."""
    jobs = intake.dead_letters(session, limit=limit)
    return JobListOut(items=[JobOut.model_validate(job) for job in jobs])


@router.post("/dead/{job_id}/requeue")
def requeue(job_id: int, _principal: SubmitterDep, session: SessionDep) -> JobOut:
    """The same as ``POST /api/jobs/{id}/retry``."""
    return JobOut.model_validate(intake.retry_job(session, job_id=job_id))


@router.post("/cleanup")
def cleanup(
    principal: AdminDep,
    session: SessionDep,
    blobs: BlobsDep,
    body: Annotated[CleanupIn | None, Body()] = None,
) -> CleanupOut:
    """Apply retention now: delete finished jobs past ``retention.<pipeline>`` days (or
    ``older_than_days``), never those under legal hold."""
    days = body.older_than_days if body else None
    counts = intake.cleanup(session, blobs, actor=principal.actor, older_than_days=days)
    return CleanupOut(**counts)
