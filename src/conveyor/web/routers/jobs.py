"""``/api/jobs``: submit by reference, list, read, cancel, retry, delete, hold; results and events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from conveyor import intake
from conveyor.web.dependencies import (
    AdminDep,
    BlobsDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    SubmitterDep,
    ViewerDep,
)
from conveyor.web.schemas import (
    CleanupOut,
    EventListOut,
    EventOut,
    FindingOut,
    FindingPageOut,
    HoldIn,
    JobOut,
    JobPageOut,
    JobStatus,
    RecordOut,
    RecordPageOut,
    SubmitIn,
)

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")]


@router.post("", status_code=201)
def submit(
    body: SubmitIn, _principal: SubmitterDep, session: SessionDep, blobs: BlobsDep, settings: SettingsDep
) -> JobOut:
    """Submit a file already in storage: a blob key, or ``s3://bucket/key``."""
    job = intake.submit_reference(
        session,
        blobs,
        ref=body.ref,
        pipeline=body.pipeline,
        params=body.params,
        priority=body.priority,
        force=body.force,
        filename=body.filename,
        max_attempts=settings.max_attempts,
        reference_buckets=settings.s3_reference_buckets,
    )
    return JobOut.model_validate(job)


@router.get("")
def list_jobs(
    _principal: ViewerDep,
    session: ReadSessionDep,
    status: JobStatus | None = None,
    pipeline: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JobPageOut:
    """Newest first."""
    page = intake.list_jobs(session, status=status, pipeline=pipeline, limit=limit, cursor=cursor)
    return JobPageOut(items=[JobOut.model_validate(job) for job in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}")
def get_job(job_id: int, _principal: ViewerDep, session: ReadSessionDep) -> JobOut:
    return JobOut.model_validate(intake.get_job(session, job_id=job_id))


@router.post("/{job_id}/cancel")
def cancel(job_id: int, _principal: SubmitterDep, session: SessionDep) -> JobOut:
    """A queued job is cancelled at once; a running one gets ``cancel_requested``."""
    return JobOut.model_validate(intake.cancel_job(session, job_id=job_id))


@router.post("/{job_id}/retry")
def retry(job_id: int, _principal: SubmitterDep, session: SessionDep) -> JobOut:
    """Queue a failed or cancelled job again (dead-lettered ones included)."""
    return JobOut.model_validate(intake.retry_job(session, job_id=job_id))


@router.delete("/{job_id}")
def delete(job_id: int, principal: AdminDep, session: SessionDep, blobs: BlobsDep) -> CleanupOut:
    """Delete a finished job with its records, findings and events (409 if running or held)."""
    counts = intake.delete_job(session, blobs, job_id=job_id, actor=principal.actor)
    return CleanupOut(**counts)


@router.put("/{job_id}/hold")
def hold(job_id: int, body: HoldIn, principal: AdminDep, session: SessionDep) -> JobOut:
    """Put a job under legal hold (never deleted, by retention or by hand) or release it."""
    job = intake.set_legal_hold(session, job_id=job_id, legal_hold=body.legal_hold, actor=principal.actor)
    return JobOut.model_validate(job)


@router.get("/{job_id}/records")
def records(
    job_id: int,
    _principal: ViewerDep,
    session: ReadSessionDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> RecordPageOut:
    """The job's records (a duplicate job shows the earlier job's)."""
    page = intake.job_records(session, job_id=job_id, limit=limit, cursor=cursor)
    return RecordPageOut(
        items=[RecordOut.model_validate(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.get("/{job_id}/findings")
def findings(
    job_id: int,
    _principal: ViewerDep,
    session: ReadSessionDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> FindingPageOut:
    page = intake.job_findings(session, job_id=job_id, limit=limit, cursor=cursor)
    return FindingPageOut(
        items=[FindingOut.model_validate(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.get("/{job_id}/events")
def events(
    job_id: int,
    _principal: ViewerDep,
    session: ReadSessionDep,
    since: Annotated[int, Query(ge=0, description="Only events after this id.")] = 0,
    limit: Limit = 1000,
) -> EventListOut:
    found = intake.job_events(session, job_id=job_id, since=since, limit=limit)
    items = [EventOut.from_event(event) for event in found]
    return EventListOut(items=items, last_id=items[-1].id if items else since)
