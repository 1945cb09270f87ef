"""``/api/batches``: start a scan of many files (a zip, a server folder, an object store prefix),
follow its counters, cancel it, download its report and its files."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from conveyor import batch_reports, intake, reports
from conveyor.batching.links import Links
from conveyor.batching.report import load_batch_report
from conveyor.content import Limits
from conveyor.errors import Conflict, InputError
from conveyor.settings import Settings
from conveyor.store.blobs import BlobStore, open_blob_store
from conveyor.web import forms
from conveyor.web.dependencies import (
    BlobsDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    SignedOrViewerDep,
    StateDep,
    SubmitterDep,
    ViewerDep,
)
from conveyor.web.multipart import UploadedFile, UploadForm, UploadLimits, read_upload
from conveyor.web.schemas import BatchOut

router = APIRouter(prefix="/api/batches", tags=["batches"])
FILES = frozenset({"file", "targets"})
FIELDS = frozenset(
    {"folder", "prefix", "pipeline", "pattern", "target_column", "chunk_size", "ocr", "priority", "params"}
)
CHUNK_BYTES = 64 * 1024
SPOOL_BYTES = 8 * 1024 * 1024
ReportFormat = Literal["xlsx", "csv", "json"]


@router.post("", status_code=201, response_model=BatchOut)
async def create(
    request: Request, principal: SubmitterDep, session: SessionDep, blobs: BlobsDep, settings: SettingsDep
) -> BatchOut:
    """Start a batch from exactly one of: ``file`` (a zip), ``folder`` (under an allowed root),
    ``prefix`` (``s3://bucket/prefix``); ``targets`` is an xlsx/xls/csv list of codes to look for."""
    if request.headers.get("content-type", "").startswith("application/json"):
        form = _json_form(await request.body())
        return await run_in_threadpool(_create, session, blobs, settings, form, principal.actor)
    limits = UploadLimits.from_settings(settings)
    async with read_upload(request, limits, file_fields=FILES, fields=FIELDS) as form:
        return await run_in_threadpool(_create, session, blobs, settings, form, principal.actor)


def _json_form(body: bytes) -> UploadForm:
    """A JSON body for folder and prefix batches (no upload): the same fields, ``targets`` as a list
    of codes and ``params`` as an object."""
    try:
        given = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InputError(f"the body is not valid JSON: {error}") from None
    if not isinstance(given, dict):
        raise InputError("the body must be a JSON object")
    unknown = sorted(set(given) - FIELDS - {"targets"})
    if unknown:
        raise InputError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS | {'targets'}))}"
        )
    params = given.get("params") or {}
    if not isinstance(params, dict):
        raise InputError("params must be a JSON object")
    if "targets" in given:
        params = {**params, "targets": given["targets"]}
    fields = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in given.items()
        if name in FIELDS - {"params"} and value is not None
    }
    fields["params"] = orjson.dumps(params).decode()
    return UploadForm(fields=fields)


def _create(session: Session, blobs: BlobStore, settings: Settings, form: UploadForm, actor: str) -> BatchOut:
    fields = form.fields
    archives = [file for file in form.files if file.field == "file"]
    target_files = [file for file in form.files if file.field == "targets"]
    given = [
        name
        for name, present in (
            ("file", archives),
            ("folder", fields.get("folder")),
            ("prefix", fields.get("prefix")),
        )
        if present
    ]
    if len(given) != 1:
        raise InputError("give exactly one of: file (a zip), folder, prefix")
    if len(archives) > 1 or len(target_files) > 1:
        raise InputError("one zip and at most one targets file per batch")
    limits = Limits(**settings.limit_values())
    params: dict[str, Any] = forms.json_object(fields.get("params"), "params")
    for name in ("pattern",):
        if fields.get(name):
            params[name] = fields[name]
    if fields.get("ocr"):
        params["ocr"] = forms.flag(fields["ocr"], "ocr")
    if target_files:
        params["targets"] = _targets(target_files[0], limits, fields.get("target_column") or None)
    if archives:
        files = intake.zip_files(archives[0].stream, subject=archives[0].filename, limits=limits)
        source = f"zip:{archives[0].filename}"
    elif fields.get("folder"):
        files = intake.folder_files(fields["folder"], roots=settings.batch_roots)
        source = f"folder:{fields['folder']}"
    else:
        store = partial(open_blob_store, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
        files = intake.prefix_files(
            fields["prefix"], blobs, open_store=store, reference_buckets=settings.s3_reference_buckets
        )
        source = fields["prefix"]
    batch = intake.create_batch(
        session,
        blobs,
        files=files,
        source=source,
        pipeline=fields.get("pipeline") or "codescan",
        params=params,
        chunk_size=forms.whole_number(fields.get("chunk_size"), "chunk_size", settings.batch_chunk_size),
        priority=forms.whole_number(fields.get("priority"), "priority", 3),
        actor=actor,
    )
    return BatchOut.model_validate(batch)


def _targets(upload: UploadedFile, limits: Limits, column: str | None) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "targets"
        with copy.open("wb") as target:
            upload.stream.seek(0)
            while chunk := upload.stream.read(CHUNK_BYTES):
                target.write(chunk)
        return intake.target_list(copy, upload.filename, limits, column)


@router.get("/{batch_id}", response_model=BatchOut)
def get(batch_id: int, _principal: ViewerDep, session: ReadSessionDep) -> BatchOut:
    """The batch's status and counters (``total``, ``processed``, ``failed``, ``matches``)."""
    return BatchOut.model_validate(intake.get_batch(session, batch_id=batch_id))


@router.post("/{batch_id}/cancel", response_model=BatchOut)
def cancel(batch_id: int, _principal: SubmitterDep, session: SessionDep) -> BatchOut:
    """Stop a running batch: unscanned files are cancelled and no report is made."""
    return BatchOut.model_validate(intake.cancel_batch(session, batch_id=batch_id))


@router.get("/{batch_id}/report", response_class=StreamingResponse)
def report(
    batch_id: int,
    _who: SignedOrViewerDep,
    session: ReadSessionDep,
    state: StateDep,
    format: Annotated[ReportFormat, Query(description="xlsx, csv or json")] = "xlsx",
) -> StreamingResponse:
    """The report of a completed batch, its file links signed afresh (valid for
    ``CONVEYOR_LINK_SECONDS``); 409 while the batch runs."""
    batch = intake.get_batch(session, batch_id=batch_id)
    if batch.status != "completed":
        raise Conflict(f"batch {batch_id} is {batch.status}; its report is made when it completes")
    links: Links = state.links()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  # closed by _chunks
    try:
        batch_reports.BATCH_WRITERS[format](
            load_batch_report(session, batch_id), spool, partial(links.file, batch_id)
        )
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    filename = f"batch-{batch_id}.{format}"
    return StreamingResponse(
        _chunks(spool),
        media_type=reports.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{batch_id}/files/{file_id}", response_class=StreamingResponse)
def download(
    batch_id: int, file_id: int, _who: SignedOrViewerDep, session: ReadSessionDep, blobs: BlobsDep
) -> StreamingResponse:
    """One file of the batch as it was scanned (the link in the report's Matches sheet)."""
    _row, document = intake.get_batch_file(session, batch_id=batch_id, file_id=file_id)
    stream = blobs.open(document.blob_key)
    safe = "".join(char if char.isalnum() or char in "._-" else "_" for char in document.filename)
    return StreamingResponse(
        _chunks(stream),
        media_type=document.media_type,
        headers={"Content-Disposition": f'attachment; filename="{safe or "file"}"'},
    )


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk
