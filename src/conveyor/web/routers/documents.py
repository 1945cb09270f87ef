"""``/api/documents/{id}``: a document, its latest job and that job's results."""

from __future__ import annotations

from fastapi import APIRouter

from conveyor import intake
from conveyor.web.dependencies import ReadSessionDep, ViewerDep
from conveyor.web.schemas import DocumentOut, DocumentStatusOut, JobOut, RecordOut

router = APIRouter(prefix="/api/documents", tags=["documents"])


@router.get("/{document_id}")
def get_document(document_id: int, _principal: ViewerDep, session: ReadSessionDep) -> DocumentStatusOut:
    view = intake.get_document(session, document_id=document_id)
    latest = JobOut.model_validate(view.latest_job) if view.latest_job else None
    return DocumentStatusOut(
        document=DocumentOut.model_validate(view.document),
        latest_job=latest,
        summary=latest.summary if latest else None,
        records=[RecordOut.model_validate(row) for row in view.records.items],
        records_next_cursor=view.records.next_cursor,
    )
