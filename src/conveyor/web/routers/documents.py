"""``/api/documents/{id}``: a document, its latest job and that job's results."""

from __future__ import annotations

from fastapi import APIRouter

from conveyor import intake
from conveyor.web.dependencies import ReadSessionDep, ViewerDep
from conveyor.web.schemas import CodeOut, DocumentOut, DocumentStatusOut, JobOut, PageOut, RecordOut

router = APIRouter(prefix="/api/documents", tags=["documents"])


@router.get("/{document_id}")
def get_document(document_id: int, _principal: ViewerDep, session: ReadSessionDep) -> DocumentStatusOut:
    view = intake.get_document(session, document_id=document_id)
    latest = JobOut.model_validate(view.latest_job) if view.latest_job else None
    pages = [PageOut.model_validate(row.data) for row in view.pages]
    return DocumentStatusOut(
        document=DocumentOut.model_validate(view.document),
        status=latest.status if latest else None,
        latest_job=latest,
        summary=latest.summary if latest else None,
        text="\f".join(page.text for page in pages) if pages else None,
        pages=pages,
        codes=[CodeOut.model_validate(row.data) for row in view.codes],
        records=[RecordOut.model_validate(row) for row in view.records.items],
        records_next_cursor=view.records.next_cursor,
    )
