"""The API's request (``...In``) and response (``...Out``) shapes; never ORM classes.

Datetimes are timezone-aware UTC and leave as ISO 8601 (``2025-01-02T03:04:05.678Z``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conveyor.intake import Role
from conveyor.pipelines import secret_params
from conveyor.store.tables import Event, ReviewItem, SettingRow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ReviewStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class OrmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class JobOut(OrmOut):
    id: int
    pipeline: str
    status: JobStatus
    priority: int
    progress: int = Field(ge=0, le=100)
    attempts: int
    max_attempts: int
    error: str | None
    error_code: str | None
    dead_lettered: bool
    review_status: ReviewStatus
    duplicate_of: int | None = Field(description="The earlier job whose result this one reuses.")
    document_id: int | None
    batch_id: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    summary: dict[str, Any]
    cancel_requested: bool
    params: dict[str, Any] = Field(description="As submitted; secret params (a PDF password) masked")
    legal_hold: bool
    source: str | None

    @model_validator(mode="after")
    def _mask_secrets(self) -> JobOut:
        hidden = secret_params(self.pipeline)
        if hidden & self.params.keys():
            self.params = {
                name: "********" if name in hidden and value is not None else value
                for name, value in self.params.items()
            }
        return self


class JobPageOut(BaseModel):
    items: list[JobOut]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class UploadOut(BaseModel):
    jobs: list[JobOut]
    batch: dict[str, Any] | None = Field(
        default=None, description="Null for now: a zip upload is one document, not yet a batch."
    )


class SubmitIn(BaseModel):
    """Submit bytes already in storage instead of uploading them."""

    pipeline: str
    ref: str = Field(description="A key of the blob store, or s3://bucket/key.", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=3, ge=1, le=4)
    force: bool = False
    filename: str | None = None


class HoldIn(BaseModel):
    legal_hold: bool


class RecordOut(OrmOut):
    id: int
    job_id: int
    document_id: int | None
    kind: str
    key: str
    data: Any
    updated_at: dt.datetime


class RecordPageOut(BaseModel):
    items: list[RecordOut]
    next_cursor: int | None


class FindingOut(OrmOut):
    id: int
    job_id: int
    rule: str
    severity: str
    message: str
    ref: str | None


class FindingPageOut(BaseModel):
    items: list[FindingOut]
    next_cursor: int | None


class BatchOut(BaseModel):
    """A batch: where its files came from, its counters and status."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    pipeline: str
    status: str = Field(description="running, completed, cancelled or failed")
    source: str | None
    total: int
    processed: int
    failed: int
    matches: int
    targets: int
    chunk_size: int
    report_job_id: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class EventOut(BaseModel):
    """An event: these fields plus the type's own (``value``, ``message``...), as in DESIGN §5."""

    model_config = ConfigDict(extra="allow")

    id: int
    type: str
    job_id: int | None
    batch_id: int | None
    at: dt.datetime

    @classmethod
    def from_event(cls, event: Event) -> EventOut:
        fixed = {"id": event.id, "type": event.type, "job_id": event.job_id}
        return cls.model_validate({**event.data, **fixed, "batch_id": event.batch_id, "at": event.at})


class EventListOut(BaseModel):
    items: list[EventOut]
    last_id: int = Field(description="Pass as ?since= to get only newer events.")


class DocumentOut(OrmOut):
    id: int
    sha256: str
    filename: str
    media_type: str
    size: int
    source: str
    created_at: dt.datetime


class PageOut(BaseModel):
    page: int
    text: str
    source: str
    confidence: float | None


class CodeOut(BaseModel):
    page: int
    format: str
    text: str
    position: dict[str, Any]


class DocumentStatusOut(BaseModel):
    document: DocumentOut
    status: str | None = Field(description="The latest job's status; null before any job")
    latest_job: JobOut | None
    summary: dict[str, Any] | None
    text: str | None = Field(description="All pages' text, pages separated by a form feed (\\f)")
    pages: list[PageOut] = Field(description="Per page: text, source (text-layer or ocr), confidence")
    codes: list[CodeOut] = Field(description="Every code found, with its page and position")
    records: list[RecordOut]
    records_next_cursor: int | None = Field(
        description="More records: GET /api/jobs/{latest_job.id}/records?cursor=..."
    )


class QueueStatsOut(BaseModel):
    by_status: dict[str, int]
    by_pipeline: dict[str, dict[str, int]]
    dead_lettered: int
    oldest_queued_at: dt.datetime | None


class JobListOut(BaseModel):
    items: list[JobOut]


class CleanupIn(BaseModel):
    older_than_days: int | None = Field(
        default=None, gt=0, description="Override every pipeline's retention.<pipeline> setting."
    )


class CleanupOut(BaseModel):
    jobs: int
    records: int
    findings: int
    review_items: int
    events: int
    documents: int
    blobs: int


class SettingOut(BaseModel):
    key: str
    value: Any
    updated_by: str | None
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: SettingRow) -> SettingOut:
        return cls(
            key=row.key,
            value=row.value.get("value"),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )


class SettingListOut(BaseModel):
    items: list[SettingOut]


class SettingIn(BaseModel):
    key: str = Field(min_length=1, max_length=255)
    value: Any


class SettingValueIn(BaseModel):
    value: Any


class ApiKeyIn(BaseModel):
    role: Role
    name: str | None = Field(default=None, max_length=255)


class ApiKeyOut(OrmOut):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The key itself, shown this once and never again.")


class ApiKeyListOut(BaseModel):
    items: list[ApiKeyOut]


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, str]


class ReviewItemOut(BaseModel):
    id: int
    job_id: int
    pipeline: str
    reasons: list[str]
    status: str = Field(description="pending while open; approved, rejected or corrected once decided")
    created_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision: dict[str, Any] | None = Field(description="The decision, its comment and data, as given")

    @classmethod
    def from_row(cls, row: ReviewItem) -> ReviewItemOut:
        return cls(
            id=row.id,
            job_id=row.job_id,
            pipeline=row.pipeline,
            reasons=[str(reason) for reason in row.reasons.get("reasons", [])],
            status=row.status,
            created_at=row.created_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            decision=row.decision_data,
        )


class ReviewItemPageOut(BaseModel):
    items: list[ReviewItemOut]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class ReviewDecisionIn(BaseModel):
    decision: Literal["approve", "reject", "correct"]
    data: Any = Field(
        default=None,
        description='For correct: a timecard\'s {"entries": [{"source", "start", "end", "hours", "employee",'
        ' "date", "rate"}]}, other pipelines\' {"records": [{"kind", "key", "data"}]}',
    )
    comment: str | None = Field(default=None, max_length=2000)


class ReviewDecisionOut(BaseModel):
    review: ReviewItemOut
    job: JobOut
    changed_records: int = Field(description="Records a correction changed (a timecard's weeks included)")
    message: str


class AuditEventOut(OrmOut):
    id: int
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: dt.datetime


class AuditEventListOut(BaseModel):
    items: list[AuditEventOut]
