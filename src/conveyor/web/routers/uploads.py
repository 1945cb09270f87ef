"""``POST /api/upload``: files as multipart, one job per file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from conveyor import intake
from conveyor.errors import InputError
from conveyor.store.blobs import BlobStore
from conveyor.web import forms
from conveyor.web.dependencies import BlobsDep, SessionDep, SettingsDep, SubmitterDep
from conveyor.web.multipart import UploadForm, UploadLimits, read_upload
from conveyor.web.schemas import JobOut, UploadOut

router = APIRouter(tags=["uploads"])
FILES = frozenset({"file"})
FIELDS = frozenset({"pipeline", "priority", "params", "force"})

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "pipeline"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more files; a zip is one document for now.",
                        },
                        "pipeline": {"type": "string"},
                        "priority": {"type": "integer", "minimum": 1, "maximum": 4, "default": 3},
                        "params": {"type": "string", "description": "A JSON object."},
                        "force": {"type": "boolean", "description": "Skip deduplication."},
                    },
                }
            }
        },
    }
}


@router.post(
    "/api/upload",
    status_code=201,
    response_model=UploadOut,
    openapi_extra=UPLOAD_BODY,
    responses={
        400: {"description": "A malformed multipart body, or a part of an unknown name."},
        413: {"description": "Over a size or multipart limit (such as the number of files)."},
    },
)
async def upload(
    request: Request,
    _principal: SubmitterDep,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> UploadOut:
    """Upload files to one pipeline; the same bytes with the same params again are deduplicated
    (the new job says ``duplicate_of``) unless ``force`` is true."""
    limits = UploadLimits.from_settings(settings)
    async with read_upload(request, limits, file_fields=FILES, fields=FIELDS) as form:
        return await run_in_threadpool(_submit, session, blobs, form, settings.max_attempts)


def _submit(session: Session, blobs: BlobStore, form: UploadForm, max_attempts: int) -> UploadOut:
    fields = form.fields
    if not fields.get("pipeline"):
        raise InputError("the form field 'pipeline' is required")
    jobs = intake.submit_uploads(
        session,
        blobs,
        files=[(file.filename, file.stream) for file in form.files],
        pipeline=fields["pipeline"],
        params=forms.json_object(fields.get("params"), "params"),
        priority=forms.whole_number(fields.get("priority"), "priority", 3),
        force=forms.flag(fields.get("force"), "force"),
        max_attempts=max_attempts,
    )
    return UploadOut(jobs=[JobOut.model_validate(job) for job in jobs])
