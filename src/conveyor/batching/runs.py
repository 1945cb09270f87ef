"""What a worker does with a batch's jobs: a chunk runs the batch's pipeline file by file, settling
each file in its own transaction (so a match is streamed the moment its file is done and a crash
loses at most the file in hand); the report job writes the report and closes the batch.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from conveyor import queue
from conveyor.batch_reports import write_batch_xlsx
from conveyor.batching import state
from conveyor.batching.links import Links
from conveyor.batching.report import load_batch_report
from conveyor.content import DocumentInput, PipelineContext, PipelineResult, Record
from conveyor.errors import Cancelled, ConveyorError, InputError, NotFound
from conveyor.pipelines import Pipeline, get_pipeline, run_pipeline
from conveyor.queue import ClaimedJob
from conveyor.store.blobs import BlobStore
from conveyor.store.documents import load_documents
from conveyor.store.results import write_records
from conveyor.store.tables import Batch, BatchFile, utcnow

logger = logging.getLogger(__name__)
# Files settled per transaction at most: the transactions, not the parsing, bounded a worker's rate.
SETTLE_FILES = 16


@dataclass(frozen=True)
class BatchRuntime:
    """What the batch jobs need of the worker that runs them."""

    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    blobs: BlobStore
    worker_id: str
    links: Callable[[], Links]


class LeaseLost(ConveyorError):
    """Another worker owns this job now; this run's results are discarded."""

    code = "lease_lost"


def is_batch_job(job: ClaimedJob) -> bool:
    return job.batch_id is not None and job.document_id is None


def run(job: ClaimedJob, runtime: BatchRuntime, control: PipelineContext) -> dict[str, Any]:
    """Run a chunk or report job to its end; returns the job's summary (the caller finishes it)."""
    if job.pipeline == state.REPORT_JOB:
        return _report(job, runtime)
    return _chunk(job, runtime, control)


def _chunk(job: ClaimedJob, runtime: BatchRuntime, control: PipelineContext) -> dict[str, Any]:
    assert job.batch_id is not None
    batch_id = job.batch_id
    with runtime.readers() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise NotFound(f"batch {batch_id} not found")
        params, pipeline_name = dict(batch.params), batch.pipeline
        files = session.execute(
            select(BatchFile.id, BatchFile.name, BatchFile.document_id)
            .where(BatchFile.id.in_(job.params.get("files", [])), BatchFile.status == "queued")
            .order_by(BatchFile.id)
        ).all()
        loaded = load_documents(session, runtime.blobs, [row.document_id for row in files if row.document_id])
        documents = [
            loaded.get(document_id) if document_id is not None else None for _, _, document_id in files
        ]
    pipeline = get_pipeline(pipeline_name)
    validated = pipeline.validate_params(params)
    has_targets = bool(validated.get("targets"))
    pending: list[_Done] = []
    settled = 0
    try:
        for position, ((file_id, name, _document_id), result) in enumerate(
            zip(files, _results(pipeline, documents, validated, control), strict=True)
        ):
            outcome, records = _outcome(result, has_targets=has_targets)
            pending.append(_Done(state.Settling(file_id, name, outcome), records))
            # Files settle together, in one transaction, except that one with a match or an error
            # is written at once (with those before it): MATCH_FOUND is never held back.
            if (
                outcome.matches
                or not outcome.ok
                or len(pending) >= SETTLE_FILES
                or position == len(files) - 1
            ):
                settled += _settle(runtime, job, pipeline_name, pending)
                pending = []
            control.progress(100 * (position + 1) / len(files))
            if control.is_cancelled():
                raise Cancelled
    except LeaseLost:
        raise
    except Exception:  # a file that broke the chunk, or a cancel: the files scanned before it keep
        if pending:  # their results (settling skips any the cancel marked already)
            settled += _settle(runtime, job, pipeline_name, pending)
        raise
    return {"files": len(files), "settled": settled}


@dataclass(frozen=True, slots=True)
class _Done:
    settling: state.Settling
    records: list[Record]


def _settle(runtime: BatchRuntime, job: ClaimedJob, pipeline_name: str, done: list[_Done]) -> int:
    assert job.batch_id is not None
    with runtime.sessions.begin() as session:
        if not _still_ours(session, job.id, runtime.worker_id):
            raise LeaseLost
        settled = {
            file.file_id
            for file in state.settle_files(
                session, batch_id=job.batch_id, files=[item.settling for item in done]
            )
        }
        records = [
            Record(kind=record.kind, key=f"{item.settling.file_id}:{position}", data=record.data)
            for item in done
            if item.settling.file_id in settled
            for position, record in enumerate(item.records)
        ]
        if records:
            # One write per group, in the batch's namespace; keys name the file (``file_id:n``).
            write_records(
                session,
                records=records,
                job_id=job.id,
                document_id=None,
                pipeline=pipeline_name,
                namespace=f"batch:{job.batch_id}",
            )
    return len(settled)


def _results(
    pipeline: Pipeline,
    documents: list[DocumentInput | None],
    params: dict[str, Any],
    control: PipelineContext,
) -> Iterator[PipelineResult | InputError]:
    """Each file's result (or its InputError) in order, as it is done: through the pipeline's
    ``run_many`` when it has one (several small files per parser call), else one ``run`` each.
    Errors other than bad input (a transient failure, a bug) fail the chunk job, which is retried
    from its first unsettled file."""
    present = [document for document in documents if document is not None]
    run_many = getattr(pipeline, "run_many", None)
    if run_many is not None:
        results: Iterator[PipelineResult | InputError] = run_many(present, params, control)
    else:
        results = (_run_one(pipeline, document, params, control) for document in present)
    for document in documents:
        yield DELETED if document is None else next(results)


DELETED = InputError("the file's document was deleted before it was scanned")


def _run_one(
    pipeline: Pipeline, document: DocumentInput, params: dict[str, Any], control: PipelineContext
) -> PipelineResult | InputError:
    try:
        result = run_pipeline(pipeline, document, params, control)
        result.records = list(result.records)
        return result
    except InputError as error:
        return error


def _outcome(result: PipelineResult | InputError, has_targets: bool) -> tuple[state.Outcome, list[Record]]:
    """A file's outcome; its matches are the codes that matched a target or, in a batch without
    targets, every code found (kind ``found``), so both stream as MATCH_FOUND and fill the report."""
    if isinstance(result, InputError):
        return state.Outcome(ok=False, result={"status": "failed"}, matches=[], error=str(result)), []
    records = list(result.records)
    matches = [
        {
            "code": record.data["code"],
            "target": record.data["target"] or "",
            "kind": record.data["match"] or "found",
            "page": record.data["page"],
            "confidence": record.data["confidence"],
        }
        for record in records
        if record.kind == "code" and (record.data.get("target") is not None or not has_targets)
    ]
    return state.Outcome(ok=True, result={**result.summary, "matches": matches}, matches=matches), records


def _still_ours(session: Session, job_id: int, worker_id: str) -> bool:
    return (
        session.execute(
            select(queue.JOBS.c.id).where(
                queue.JOBS.c.id == job_id,
                queue.JOBS.c.worker_id == worker_id,
                queue.JOBS.c.status == "running",
            )
        ).first()
        is not None
    )


def _report(job: ClaimedJob, runtime: BatchRuntime) -> dict[str, Any]:
    """Write the report to storage, close the batch and say so (COMPLETE) once, however often
    this job runs."""
    assert job.batch_id is not None
    links = runtime.links()
    buffer = io.BytesIO()
    with runtime.readers() as session:
        report = load_batch_report(session, job.batch_id)
        write_batch_xlsx(report, buffer, lambda file_id: links.file(job.batch_id or 0, file_id))
    buffer.seek(0)
    stored = runtime.blobs.put(buffer)
    summary = report.summary
    with runtime.sessions.begin() as session:
        state.lock(session, job.batch_id)
        closed = session.execute(
            update(Batch)
            .where(Batch.id == job.batch_id, Batch.status == "running")
            .values(status="completed", finished_at=utcnow(), report_key=stored.key)
            .returning(Batch.id),
            execution_options={"synchronize_session": False},
        ).first()
        if closed is not None:
            state.batch_event(
                session,
                job.batch_id,
                "COMPLETE",
                {
                    "total": summary.total,
                    "processed": summary.processed,
                    "failed": summary.failed,
                    "matches": summary.matches,
                    "download_url": links.report(job.batch_id),
                },
            )
    logger.info("batch %s report written (%s bytes)", job.batch_id, stored.size)
    return {"report_key": stored.key, "bytes": stored.size}


def abandoned(session: Session, job: ClaimedJob, message: str) -> None:
    """A batch job that ended without finishing (failed for good, or cancelled): a chunk's
    unsettled files fail with its error, so the batch still completes; a report job that cannot
    be written fails the batch. (``state.reconcile`` catches the endings that do not pass here.)"""
    assert job.batch_id is not None
    if job.pipeline != state.REPORT_JOB:
        state.fail_files(session, batch_id=job.batch_id, job_id=job.id, message=message)
    else:
        state.fail_batch(session, job.batch_id, f"the report failed: {message}")
