"""The worker: a claim loop per process, a heartbeat thread, and a supervisor for N processes.

Each process claims jobs (several at a time when jobs are short, one at a time when they are long, so
a slow job never sits on work another idle process could take), runs them through ``processing``,
and keeps their leases alive from a heartbeat thread. SIGTERM lets the current job finish and hands
back the ones not started; a second SIGTERM (or the grace period running out) stops the current job
too and hands it back. Nothing is lost either way: a job is only ever queued, running under a live
lease, or finished.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from conveyor import logs, processing, progress, queue
from conveyor.ai import LanguageModel, ModelSettings, language_model
from conveyor.batching import state as batch_state
from conveyor.batching.links import batch_links
from conveyor.content import Limits
from conveyor.errors import TransientError
from conveyor.processing import JobControl, Runtime
from conveyor.queue import ClaimedJob
from conveyor.settings import Settings
from conveyor.store.blobs import blob_store_for
from conveyor.store.database import (
    create_database_engine,
    is_postgres,
    read_session_factory,
    session_factory,
)

logger = logging.getLogger(__name__)
SHORT_JOB_SECONDS = 0.2
DATABASE_ERRORS = (SQLAlchemyError, TransientError)


class Heartbeat(threading.Thread):
    """Extends the leases of the jobs this process holds and notices cancellation requests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        readers: sessionmaker[Session],
        worker_id: str,
        settings: Settings,
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.sessions = sessions
        self.readers = readers
        self.worker_id = worker_id
        self.settings = settings
        self.held: dict[int, JobControl] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def hold(self, job_id: int, control: JobControl) -> None:
        with self.lock:
            self.held[job_id] = control

    def drop(self, job_id: int) -> None:
        with self.lock:
            self.held.pop(job_id, None)

    def run(self) -> None:
        while not self.stopped.wait(self.settings.heartbeat_seconds):
            self.beat()

    def beat(self) -> None:
        with self.lock:
            held = dict(self.held)
        if not held:
            return
        try:
            # Read cancellations first, from a read-only session: on SQLite a long result
            # transaction holds the write lock, and a cancel must still get through.
            with self.readers() as session:
                for job_id in queue.cancel_requested(session, job_ids=list(held)):
                    held[job_id].cancel.set()
            with self.sessions.begin() as session:
                beat = queue.heartbeat(
                    session,
                    job_ids=list(held),
                    worker_id=self.worker_id,
                    lease_seconds=self.settings.lease_seconds,
                )
                for job_id, control in held.items():
                    if control.progress_value:
                        queue.set_progress(
                            session,
                            job_id=job_id,
                            worker_id=self.worker_id,
                            progress=control.progress_value,
                        )
        except Exception:
            # A missed beat is not fatal: the lease has room for several.
            logger.warning("heartbeat failed; will try again", exc_info=True)
            return
        for job_id, control in held.items():
            if job_id in beat.cancel_requested:
                control.cancel.set()
            if job_id not in beat.held:
                # Presumed dead and handed to another worker: stop, and write nothing.
                control.lost.set()


class Waker:
    """Sleeps until new work may be there: LISTEN/NOTIFY on PostgreSQL, a short poll on SQLite.

    The LISTEN connection is opened lazily and dropped on any error, so a database restart only
    costs a poll interval; the next wait reconnects.
    """

    def __init__(self, engine: Engine, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self.url = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if is_postgres(engine)
            else None
        )
        self.connection: Any = None

    def wait(self, stop: threading.Event) -> None:
        if self.url is None:
            stop.wait(self.poll_seconds)
            return
        import psycopg

        try:
            if self.connection is None:
                self.connection = psycopg.connect(self.url, autocommit=True)
                self.connection.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
            for _ in self.connection.notifies(timeout=self.poll_seconds, stop_after=1):
                break
        except psycopg.Error:
            logger.warning("lost the LISTEN connection; polling until it is back", exc_info=True)
            self.close()
            stop.wait(self.poll_seconds)

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


def configured_model(settings: Settings) -> LanguageModel | None:
    """The ``CONVEYOR_AI_*`` model, built once per process; None (the default) keeps everything offline."""
    values = settings.model_values()
    return None if values is None else language_model(ModelSettings(**values))


class WorkerProcess:
    """The loop of one worker process."""

    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.worker_id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.engine = create_database_engine(settings.resolved_database_url, pool_size=2, pre_ping=False)
        self.sessions = session_factory(self.engine)
        blobs = blob_store_for(settings)
        self.readers = read_session_factory(self.engine)
        self.runtime = Runtime(
            sessions=self.sessions,
            readers=self.readers,
            blobs=blobs,
            worker_id=self.worker_id,
            backoff=queue.Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
            limits=Limits(**settings.limit_values()),
            language_model=configured_model(settings),
            links=functools.cache(lambda: batch_links(self.sessions, settings)),
        )
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self.heartbeat = Heartbeat(self.sessions, read_session_factory(self.engine), self.worker_id, settings)
        self.durations: deque[float] = deque(maxlen=20)
        self.current: JobControl | None = None
        self.last_sweep = 0.0
        self.stop_requested_at = 0.0

    def request_stop(self) -> None:
        """First call: finish the current job, take no more. Second call: stop the current job.

        A repeat within two seconds counts as the same request: a signal sent to the whole process
        group reaches a worker both directly and relayed by its supervisor.
        """
        now = time.monotonic()
        if self.stopping.is_set() and now - self.stop_requested_at > 2.0:
            self.aborting.set()
            if self.current is not None:
                self.current.shutdown.set()
        if not self.stopping.is_set():
            self.stop_requested_at = now
        self.stopping.set()

    def prefetch(self) -> int:
        """Claim many short jobs per round trip, but long jobs one at a time."""
        if self.durations and max(self.durations) < SHORT_JOB_SECONDS:
            return self.settings.claim_batch
        return 1

    def sweep(self) -> None:
        """Re-queue jobs whose worker died; every live worker does it, cheaply, now and then."""
        now = time.monotonic()
        if now - self.last_sweep < min(self.settings.lease_seconds / 2, 10.0):
            return
        self.last_sweep = now
        with self.sessions.begin() as session:
            swept = queue.requeue_expired(session)
            for job_id in swept.dead_lettered:
                progress.record_error(
                    session, job_id=job_id, message="the worker stopped heartbeating", code="lease_expired"
                )
            for job_id in swept.cancelled:
                progress.record_error(session, job_id=job_id, message="cancelled", code="cancelled")
        with self.sessions.begin() as session:
            settled = batch_state.reconcile(session)
        if settled:
            logger.warning("batches: %d files or reports of ended jobs settled as failed", settled)
        if swept:
            logger.warning(
                "leases expired: %d re-queued, %d dead-lettered, %d cancelled",
                len(swept.requeued),
                len(swept.dead_lettered),
                len(swept.cancelled),
            )

    def claim(self) -> list[ClaimedJob]:
        with self.sessions.begin() as session:
            return queue.claim(
                session,
                worker_id=self.worker_id,
                limit=self.prefetch(),
                lease_seconds=self.settings.lease_seconds,
            )

    def run(self, *, max_jobs: int | None = None, idle_exit: bool = False) -> int:
        """Claim and run jobs until stopped; returns how many jobs were run."""
        self.heartbeat.start()
        waker = Waker(self.engine, self.settings.poll_seconds)
        done = 0
        failures = 0
        parent = os.getppid()
        try:
            while not self.stopping.is_set() and (max_jobs is None or done < max_jobs):
                if os.getppid() != parent:
                    # The supervisor died without stopping us (SIGKILL, OOM): finish and leave.
                    logger.warning("supervisor gone; stopping")
                    break
                try:
                    self.sweep()
                    jobs = self.claim()
                except DATABASE_ERRORS:
                    # The database is restarting or unreachable: wait and try again, rather than
                    # die and have the pool respawn this process in a tight loop.
                    failures += 1
                    delay = min(30.0, 0.5 * 2**failures)
                    logger.warning("database unavailable; retrying in %.1fs", delay, exc_info=True)
                    self.stopping.wait(delay)
                    continue
                failures = 0
                if not jobs:
                    if idle_exit:
                        break
                    waker.wait(self.stopping)
                    continue
                done += self.run_claimed(jobs)
        finally:
            self.heartbeat.stopped.set()
            waker.close()
            self.engine.dispose()
        return done

    def run_claimed(self, jobs: list[ClaimedJob]) -> int:
        for job in jobs:
            control = JobControl(
                self.sessions,
                job.id,
                limits=self.runtime.limits,
                language_model=self.runtime.language_model,
            )
            self.heartbeat.hold(job.id, control)
        done = 0
        try:
            for index, job in enumerate(jobs):
                if self.stopping.is_set():
                    self.release([j.id for j in jobs[index:]])
                    break
                control = self.heartbeat.held[job.id]
                self.current = control
                if self.aborting.is_set():
                    control.shutdown.set()
                started = time.monotonic()
                try:
                    processing.process(job, self.runtime, control)
                except DATABASE_ERRORS:
                    # Recording the outcome failed; the lease runs out and the job is re-run.
                    logger.exception("could not record the outcome of job %d", job.id)
                self.durations.append(time.monotonic() - started)
                self.heartbeat.drop(job.id)
                done += 1
        finally:
            self.current = None
            for job in jobs:
                self.heartbeat.drop(job.id)
        return done

    def release(self, job_ids: list[int]) -> None:
        with self.sessions.begin() as session:
            queue.release(session, job_ids=job_ids, worker_id=self.worker_id)


def _child_main(settings: Settings, index: int) -> None:
    logs.configure(settings.log_level, settings.log_format)
    worker = WorkerProcess(settings)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info("worker %d started as %s", index, worker.worker_id)
    worker.run()
    logger.info("worker %d stopped", index)


class WorkerPool:
    """Runs N worker processes and restarts any that die (a crash or an out-of-memory kill)."""

    def __init__(self, settings: Settings, concurrency: int) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess] = []
        self.stopping = threading.Event()
        self.monitor = threading.Thread(target=self._watch, name="worker-pool", daemon=True)

    def _spawn(self, index: int) -> BaseProcess:
        process = self.context.Process(
            target=_child_main, args=(self.settings, index), name=f"conveyor-worker-{index}"
        )
        process.start()
        return process

    def start(self) -> None:
        self.processes = [self._spawn(index) for index in range(self.concurrency)]
        self.monitor.start()

    def _watch(self) -> None:
        restarts = [0] * self.concurrency
        while not self.stopping.wait(1.0):
            for index, process in enumerate(self.processes):
                if process.is_alive() or self.stopping.is_set() or process.exitcode == 0:
                    continue  # exit code 0: it was told to stop (e.g. Ctrl-C reached it first)
                restarts[index] += 1
                delay = min(60.0, 2.0 ** min(restarts[index], 6))
                logger.error("worker %d exited with %s; restarting in %.0fs", index, process.exitcode, delay)
                if self.stopping.wait(delay):
                    return
                self.processes[index] = self._spawn(index)

    def stop(self, grace_seconds: float = 30.0) -> None:
        """SIGTERM every worker (finish the current job), then SIGTERM again, then SIGKILL."""
        self.stopping.set()
        for process in self.processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGTERM)
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


@contextlib.contextmanager
def running_pool(settings: Settings, concurrency: int) -> Iterator[WorkerPool | None]:
    if concurrency <= 0:
        yield None
        return
    pool = WorkerPool(settings, concurrency)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()
