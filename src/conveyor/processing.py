"""One job from start to end: open its document, run its pipeline, save the result in one transaction.

    STARTED event (own transaction, so watchers see it at once)
    -> pipeline.run(document, params, context)            pure, may return a lazy record stream
    -> one transaction: records, findings, review item, COMPLETE event, job succeeded
    -> on error: queue.fail decides retry, failure or dead letter from ``retryable``; ERROR event

If the lease was lost meanwhile (this worker was presumed dead and the job handed to another), the
result transaction is rolled back: the job's effects are written once, by whoever still owns it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from conveyor import progress, queue
from conveyor.ai import LanguageModel
from conveyor.batching import runs as batch_runs
from conveyor.batching import state as batch_state
from conveyor.batching.links import Links
from conveyor.batching.runs import BatchRuntime, LeaseLost
from conveyor.content import Limits, PipelineResult
from conveyor.errors import Cancelled, ConveyorError, NotFound
from conveyor.logs import bound
from conveyor.pipelines import get_pipeline, run_pipeline
from conveyor.queue import ClaimedJob
from conveyor.store.blobs import BlobStore
from conveyor.store.documents import load_document
from conveyor.store.results import open_review, write_findings, write_records
from conveyor.store.tables import SettingRow

logger = logging.getLogger(__name__)
PARAMS_SETTING_PREFIX = "params."
SAMPLE_RATE_SETTING_PREFIX = "review.sample_rate."
QUALITY_SAMPLE = "quality_sample"


class ShutdownRequested(ConveyorError):
    """The worker is stopping; the job goes back to the queue untouched."""

    code = "shutdown"


@dataclass
class JobControl:
    """The PipelineContext of a job running in a worker.

    ``cancel`` is set by the heartbeat thread when someone asked to cancel the job, ``lost`` when the
    job was taken away (its lease ran out), ``shutdown`` by the worker when it must stop now.
    Events emitted while the result transaction is open are deferred into it (on SQLite a second
    writer would wait for that very transaction); a lost job emits nothing more.
    """

    sessions: sessionmaker[Session]
    job_id: int
    cancel: threading.Event = field(default_factory=threading.Event)
    shutdown: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    progress_value: int = 0
    deferred: list[tuple[str, dict[str, Any]]] | None = None
    limits: Limits = field(default_factory=Limits)
    language_model: LanguageModel | None = None

    def emit(self, event_type: str, **data: Any) -> None:
        if self.lost.is_set():
            return
        if self.deferred is not None:
            self.deferred.append((event_type, data))
            return
        with self.sessions.begin() as session:
            progress.record_event(session, type=event_type, job_id=self.job_id, data=data)

    def is_cancelled(self) -> bool:
        return self.cancel.is_set() or self.shutdown.is_set() or self.lost.is_set()

    def progress(self, value: float) -> None:
        self.progress_value = int(value)


@dataclass(frozen=True)
class Runtime:
    """What a worker process holds for the jobs it runs."""

    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    blobs: BlobStore
    worker_id: str
    backoff: queue.Backoff
    limits: Limits = field(default_factory=Limits)
    language_model: LanguageModel | None = None
    links: Callable[[], Links] | None = None

    def for_batches(self) -> BatchRuntime:
        if self.links is None:
            raise ConveyorError("this worker was started without batch links")
        return BatchRuntime(self.sessions, self.readers, self.blobs, self.worker_id, self.links)


def pipeline_defaults(session: Session, pipeline: str) -> dict[str, Any]:
    """The ``params.<pipeline>`` setting: default params for every job of the pipeline, shared by
    all processes through the database; a job's own params override them."""
    row = session.get(SettingRow, f"{PARAMS_SETTING_PREFIX}{pipeline}")
    value = None if row is None else row.value.get("value")
    return dict(value) if isinstance(value, dict) else {}


def _sampled(session: Session, pipeline: str) -> bool:
    """Quality control: the ``review.sample_rate.<pipeline>`` setting (0 to 1, default 0) is the
    share of jobs that needed no review which a person checks anyway."""
    row = session.get(SettingRow, f"{SAMPLE_RATE_SETTING_PREFIX}{pipeline}")
    rate = 0.0 if row is None else float(row.value.get("value") or 0)
    return rate > 0 and random.random() < rate


def namespace_for(job: ClaimedJob, shared_keys: bool) -> str:
    """Shared-key pipelines upsert into a named collection; the rest keep records per job."""
    if shared_keys:
        return str(job.params.get("collection", "default"))
    return f"job:{job.id}"


def process(job: ClaimedJob, runtime: Runtime, control: JobControl) -> str:
    """Run one claimed job to its next state; returns that status. Never raises for job errors."""
    with bound(job_id=job.id, document_id=job.document_id):
        started = time.perf_counter()
        try:
            if job.cancel_requested or control.cancel.is_set():
                raise Cancelled
            control.emit("STARTED", pipeline=job.pipeline, attempt=job.attempts)
            _run(job, runtime, control)
        except ShutdownRequested:
            return _release(job, runtime)
        except Cancelled:
            if control.lost.is_set():
                logger.warning("lease lost; stopped, the new owner runs the job")
                return "lost"
            if control.shutdown.is_set() and not control.cancel.is_set():
                return _release(job, runtime)
            return _cancelled(job, runtime)
        except LeaseLost:
            logger.warning("lease lost; results discarded, the new owner will write them")
            return "lost"
        except Exception as error:
            return _failed(job, runtime, error)
        logger.info("job succeeded in %.3fs", time.perf_counter() - started)
        return "succeeded"


def _run(job: ClaimedJob, runtime: Runtime, control: JobControl) -> None:
    if batch_runs.is_batch_job(job):
        summary = batch_runs.run(job, runtime.for_batches(), control)
        with runtime.sessions.begin() as session:
            progress.record_event(session, type="COMPLETE", job_id=job.id, data=summary)
            if not queue.finish(session, job_id=job.id, worker_id=runtime.worker_id, summary=summary):
                raise LeaseLost
        return
    pipeline = get_pipeline(job.pipeline)
    if job.document_id is None:
        raise NotFound(f"job {job.id} has no document")
    with runtime.readers() as session:
        defaults = pipeline_defaults(session, job.pipeline)
        document = load_document(session, runtime.blobs, job.document_id)
    params = pipeline.validate_params({**defaults, **job.params})
    started = time.monotonic()
    result = run_pipeline(pipeline, document, params, control)
    with runtime.sessions.begin() as session:
        control.deferred = []
        opened = time.monotonic()
        try:
            summary = _save(session, job, result, namespace_for(job, pipeline.shared_keys), control)
            summary["seconds"] = round(time.monotonic() - started, 3)
            held = time.monotonic() - opened
            if held > 1.0 and session.get_bind().dialect.name == "sqlite":
                # Nobody could heartbeat while this transaction held SQLite's only write lock.
                queue.extend_running_leases(session, seconds=held, except_job=job.id)
            for event_type, data in control.deferred:
                progress.record_event(session, type=event_type, job_id=job.id, data=data)
            progress.record_event(session, type="COMPLETE", job_id=job.id, data=summary)
            review_status = "pending" if result.review.required else "none"
            if not queue.finish(
                session,
                job_id=job.id,
                worker_id=runtime.worker_id,
                summary=summary,
                review_status=review_status,
            ):
                raise LeaseLost
        finally:
            control.deferred = None


def _save(
    session: Session, job: ClaimedJob, result: PipelineResult, namespace: str, control: JobControl
) -> dict[str, Any]:
    written = write_records(
        session,
        records=result.records,
        job_id=job.id,
        document_id=job.document_id,
        pipeline=job.pipeline,
        namespace=namespace,
    )
    if control.is_cancelled():
        raise ShutdownRequested if control.shutdown.is_set() else Cancelled
    findings = write_findings(session, job_id=job.id, findings=result.findings)
    if not result.review.required and _sampled(session, job.pipeline):
        result.review.ask(QUALITY_SAMPLE)
    if result.review.required:
        open_review(session, job_id=job.id, pipeline=job.pipeline, reasons=result.review.reasons)
        progress.record_event(
            session, type="REVIEW_REQUIRED", job_id=job.id, data={"reasons": result.review.reasons}
        )
    return {**result.summary, "records_written": written, "findings": findings}


def _release(job: ClaimedJob, runtime: Runtime) -> str:
    with runtime.sessions.begin() as session:
        queue.release(session, job_ids=[job.id], worker_id=runtime.worker_id)
    logger.info("job released for another worker (shutdown)")
    return "queued"


def _cancelled(job: ClaimedJob, runtime: Runtime) -> str:
    with runtime.sessions.begin() as session:
        if batch_runs.is_batch_job(job):
            batch_state.lock(session, job.batch_id or 0)
        if queue.mark_cancelled(session, job_id=job.id, worker_id=runtime.worker_id):
            progress.record_error(session, job_id=job.id, message="cancelled", code="cancelled")
            if batch_runs.is_batch_job(job):
                batch_runs.abandoned(session, job, "the chunk job was cancelled")
    logger.info("job cancelled")
    return "cancelled"


def _failed(job: ClaimedJob, runtime: Runtime, error: Exception) -> str:
    if isinstance(error, ConveyorError):
        logger.info("job failed: %s", error)
    else:
        logger.exception("job crashed")
    with runtime.sessions.begin() as session:
        if batch_runs.is_batch_job(job):
            batch_state.lock(session, job.batch_id or 0)  # batch, then files, then jobs: as every writer
        status = queue.fail(
            session, job=job, worker_id=runtime.worker_id, error=error, backoff=runtime.backoff
        )
        if status in ("failed", "cancelled") and batch_runs.is_batch_job(job):
            batch_runs.abandoned(session, job, str(error) or type(error).__name__)
        if status != "lost":
            progress.record_error(
                session,
                job_id=job.id,
                message=str(error) or type(error).__name__,
                code=getattr(error, "code", "internal_error"),
                will_retry=status == "queued",
            )
    return status
