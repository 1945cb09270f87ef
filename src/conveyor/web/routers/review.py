"""``/api/review-queue``, ``/api/review/{id}``: human review of jobs; ``/api/audit``: who changed what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from conveyor import intake
from conveyor.web.dependencies import ReadSessionDep, ReviewerDep, SessionDep
from conveyor.web.schemas import (
    AuditEventListOut,
    AuditEventOut,
    JobOut,
    ReviewDecisionIn,
    ReviewDecisionOut,
    ReviewItemOut,
    ReviewItemPageOut,
)

router = APIRouter(prefix="/api", tags=["review"])
Limit = Annotated[int, Query(ge=1, le=1000)]

MESSAGES = {
    "approve": "approved",
    "reject": "rejected",
    "correct": "corrected; the correction approves the job (review_status approved)",
}


@router.get("/review-queue")
def review_queue(
    _principal: ReviewerDep,
    session: ReadSessionDep,
    pipeline: str | None = None,
    reason: Annotated[str | None, Query(max_length=64, description="e.g. rule_violation")] = None,
    older_than_minutes: Annotated[int | None, Query(ge=0)] = None,
    limit: Limit = 50,
    cursor: Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")] = None,
) -> ReviewItemPageOut:
    """Open review items, oldest first."""
    page = intake.review_queue(
        session,
        pipeline=pipeline,
        reason=reason,
        older_than_minutes=older_than_minutes,
        limit=limit,
        cursor=cursor,
    )
    return ReviewItemPageOut(
        items=[ReviewItemOut.from_row(item) for item in page.items], next_cursor=page.next_cursor
    )


@router.post("/review/{item_id}")
def decide(
    item_id: int, body: ReviewDecisionIn, principal: ReviewerDep, session: SessionDep
) -> ReviewDecisionOut:
    """Approve, reject or correct an open item (409 once it is decided); every decision is audited.

    A timecard correction replaces the named entries' fields and recomputes the job's weeks and
    findings; other pipelines' corrections replace the named records' data as given.
    """
    outcome = intake.decide_review(
        session,
        item_id=item_id,
        decision=body.decision,
        data=body.data,
        comment=body.comment,
        actor=principal.actor,
    )
    return ReviewDecisionOut(
        review=ReviewItemOut.from_row(outcome.item),
        job=JobOut.model_validate(outcome.job),
        changed_records=outcome.changed_records,
        message=MESSAGES[body.decision],
    )


@router.get("/audit")
def audit(
    _principal: ReviewerDep,
    session: ReadSessionDep,
    target: Annotated[str | None, Query(max_length=255, description="e.g. review:12, job:3")] = None,
    limit: Limit = 100,
) -> AuditEventListOut:
    """Audit events (review decisions, settings and key changes, deletions), newest first."""
    events = intake.audit_trail(session, target=target, limit=limit)
    return AuditEventListOut(items=[AuditEventOut.model_validate(event) for event in events])
