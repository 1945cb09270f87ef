"""Real worker processes (`conveyor worker`) against real databases: crash, stop and cancel."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from conveyor import queue
from conveyor.store import migrate
from conveyor.store.blobs import LocalBlobStore
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.tables import Document, Event, Job, RecordRow
from tests.support import start_process, stop_process

CONVEYOR = Path(sys.executable).parent / "conveyor"


@pytest.fixture
def worker_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_STORAGE_URL": f"file://{tmp_path / 'blobs'}",
        "CONVEYOR_DATA_DIR": str(tmp_path),
        "CONVEYOR_LEASE_SECONDS": "3",
        "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
        "CONVEYOR_POLL_SECONDS": "0.2",
        "CONVEYOR_RETRY_BASE_SECONDS": "0",
    }


def _big_array(count: int) -> bytes:
    return orjson.dumps(
        [{"id": n, "order": {"lines": [{"sku": f"S{n}", "qty": n % 7}] * 3}} for n in range(count)]
    )


def _submit(sessions: sessionmaker[Session], tmp_path: Path, data: bytes, priority: int = 3) -> int:
    blob = LocalBlobStore(tmp_path / "blobs").put(io.BytesIO(data))
    with sessions.begin() as session:
        document = Document(
            sha256=blob.sha256,
            filename="orders.json",
            media_type="application/json",
            size=blob.size,
            blob_key=blob.key,
        )
        session.add(document)
        session.flush()
        return queue.enqueue(
            session,
            pipeline="records",
            params={"key": "id"},
            document_id=document.id,
            priority=priority,
        ).id


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _job(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        return queue.get(session, job_id)


def _count(sessions: sessionmaker[Session], model: type, **where: object) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(session.scalar(query) or 0)


def _worker(env: dict[str, str], log: Path):  # type: ignore[no-untyped-def]
    return start_process([CONVEYOR, "worker", "--concurrency", "1"], env, log)


@pytest.mark.slow
def test_sigkill_mid_job_requeues_after_lease_and_completes_once(
    sessions: sessionmaker[Session], worker_env: dict[str, str], tmp_path: Path
) -> None:
    count = 150_000
    job_id = _submit(sessions, tmp_path, _big_array(count))
    first = _worker(worker_env, tmp_path / "worker1.log")
    try:
        _wait_for(lambda: _count(sessions, Event, job_id=job_id, type="STARTED") == 1, 60, "start")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        stop_process(first)
    killed = _job(sessions, job_id)
    assert (killed.status, killed.attempts) == ("running", 1)
    second = _worker(worker_env, tmp_path / "worker2.log")
    try:
        _wait_for(lambda: _job(sessions, job_id).status == "succeeded", 120, "the re-run")
    finally:
        stop_process(second)
    job = _job(sessions, job_id)
    assert job.attempts == 2
    assert job.summary["records"] == count
    assert _count(sessions, RecordRow) == count
    assert _count(sessions, Event, job_id=job_id, type="COMPLETE") == 1


@pytest.mark.slow
def test_sigterm_finishes_the_current_job_and_hands_back_the_rest(
    sessions: sessionmaker[Session], worker_env: dict[str, str], tmp_path: Path
) -> None:
    long_id = _submit(sessions, tmp_path, _big_array(100_000), priority=1)
    waiting = [_submit(sessions, tmp_path, _big_array(n + 1), priority=4) for n in range(3)]
    worker = _worker(worker_env, tmp_path / "worker.log")
    try:
        _wait_for(lambda: _count(sessions, Event, job_id=long_id, type="STARTED") == 1, 60, "start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0
    finally:
        stop_process(worker)
    assert _job(sessions, long_id).status == "succeeded"
    for job_id in waiting:
        job = _job(sessions, job_id)
        assert (job.status, job.attempts) == ("queued", 0)


@pytest.mark.slow
def test_running_job_is_cancelled_at_its_next_check(
    sessions: sessionmaker[Session], worker_env: dict[str, str], tmp_path: Path
) -> None:
    job_id = _submit(sessions, tmp_path, _big_array(400_000))
    worker = _worker(worker_env, tmp_path / "worker.log")
    try:
        _wait_for(lambda: _count(sessions, Event, job_id=job_id, type="STARTED") == 1, 60, "start")
        with sessions.begin() as session:
            queue.cancel(session, job_id=job_id)
        _wait_for(lambda: _job(sessions, job_id).status == "cancelled", 60, "the cancel")
    finally:
        stop_process(worker)
    assert _count(sessions, RecordRow) == 0


@pytest.mark.slow
def test_bad_input_fails_once_and_the_worker_carries_on(
    sessions: sessionmaker[Session], worker_env: dict[str, str], tmp_path: Path
) -> None:
    bad = _submit(sessions, tmp_path, b'[{"id": 1},\n {"id": 2,, }]')
    good = _submit(sessions, tmp_path, b'[{"id": 1}, {"id": 2}]')
    worker = _worker(worker_env, tmp_path / "worker.log")
    try:
        _wait_for(lambda: _job(sessions, good).status == "succeeded", 60, "the good job")
    finally:
        stop_process(worker)
    failed = _job(sessions, bad)
    assert (failed.status, failed.attempts, failed.dead_lettered) == ("failed", 1, False)
    assert "orders.json" in (failed.error or "") and "line 2" in (failed.error or "")
    assert _count(sessions, Event, job_id=bad, type="ERROR") == 1


@pytest.mark.slow
def test_a_worker_survives_its_database_connections_being_cut(postgres_url: str, tmp_path: Path) -> None:
    engine = create_database_engine(postgres_url)
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    env = {
        "CONVEYOR_DATABASE_URL": postgres_url,
        "CONVEYOR_STORAGE_URL": f"file://{tmp_path / 'blobs'}",
        "CONVEYOR_POLL_SECONDS": "0.2",
    }
    worker = _worker(env, tmp_path / "worker.log")
    try:
        first = _submit(sessions, tmp_path, b'[{"id": 1}]')
        _wait_for(lambda: _job(sessions, first).status == "succeeded", 60, "the first job")
        database = make_url(postgres_url).database
        with engine.begin() as connection:
            cut = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar()
        assert cut and cut >= 1
        second = _submit(sessions, tmp_path, b'[{"id": 2}]')
        _wait_for(lambda: _job(sessions, second).status == "succeeded", 60, "a job after the cut")
        assert worker.poll() is None, "the worker process is still the same one"
        log_path = tmp_path / "worker.log"
        # The job may finish through a re-opened pool connection before the waker's next look at its
        # own (cut) LISTEN connection: give that look a moment.
        _wait_for(
            lambda: "lost the LISTEN connection" in log_path.read_text(), 15, "the cut to reach the worker"
        )
        log = log_path.read_text()
        assert "exited with" not in log, "no worker process had to be restarted"
    finally:
        stop_process(worker)
        engine.dispose()
