"""A worker killed with SIGKILL in the middle of a batch, through real processes: ``conveyor serve
--workers 0`` and two ``conveyor worker`` processes on SQLite and PostgreSQL; one is frozen exactly
mid-chunk and killed. The batch still completes: counters exact, every file settled once, one
report job, one COMPLETE."""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from conveyor.store.database import create_database_engine, read_session_factory
from conveyor.store.tables import BatchFile, Job
from tests.e2e.test_api import Server, running_server
from tests.e2e.test_batch_events import (
    CONVEYOR,
    STREAM_SECONDS,
    EventStream,
    Plant,
    all_events,
    batch_env,
    check_stream,
    done,
    make_plant,
    start_batch,
)
from tests.support import start_process, stop_process

# --- a worker killed mid-batch -------------------------------------------------------------------


@dataclass
class Worker:
    """A `conveyor worker --concurrency 1` process group and the id its one worker claims jobs as."""

    process: subprocess.Popen[bytes]
    log: Path
    worker_id: str = ""

    def signal(self, signum: signal.Signals) -> None:
        os.killpg(self.process.pid, signum)


def start_workers(env: dict[str, str], data_dir: Path, count: int) -> list[Worker]:
    return [
        Worker(
            start_process(
                [CONVEYOR, "worker", "--concurrency", "1", "--data-dir", data_dir],
                env,
                data_dir / f"worker-{index}.log",
            ),
            data_dir / f"worker-{index}.log",
        )
        for index in range(count)
    ]


def wait_until_claiming(workers: list[Worker], timeout_s: float = 60) -> None:
    """Each worker's id, read from its log once its worker process has started."""
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        while not worker.worker_id:
            found = re.search(r"worker 0 started as (\S+)", worker.log.read_text())
            if found:
                worker.worker_id = found.group(1)
            elif worker.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start:\n{worker.log.read_text()}")
            else:
                time.sleep(0.05)


@dataclass(frozen=True)
class Held:
    """A running chunk job of the batch: who holds it, and how many of its files are settled."""

    worker_id: str
    job_id: int
    settled: int
    queued: int


def running_chunks(database_url: str, batch_id: int) -> list[Held]:
    engine = create_database_engine(database_url)
    settled = func.count().filter(BatchFile.status != "queued")
    queued = func.count().filter(BatchFile.status == "queued")
    try:
        with read_session_factory(engine)() as session:
            rows = session.execute(
                select(Job.worker_id, Job.id, settled, queued)
                .join(BatchFile, BatchFile.job_id == Job.id)
                .where(Job.batch_id == batch_id, Job.status == "running")
                .group_by(Job.worker_id, Job.id)
                .order_by(Job.id)
            ).all()
    finally:
        engine.dispose()
    return [Held(str(worker_id), job_id, settled, queued) for worker_id, job_id, settled, queued in rows]


def kill_mid_chunk(workers: list[Worker], database_url: str, batch_id: int) -> tuple[Worker, list[Held]]:
    """Freeze every worker (SIGSTOP) until one is caught half-way through a chunk (some of its files
    settled, some not), SIGKILL that one's process group and let the others go on. Its re-run chunk
    must neither lose the files still to scan nor count the settled ones again."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for worker in workers:
            worker.signal(signal.SIGSTOP)
        try:
            chunks = running_chunks(database_url, batch_id)
            half_done = next((held for held in chunks if held.settled and held.queued), None)
            if half_done is not None:
                [victim] = [worker for worker in workers if worker.worker_id == half_done.worker_id]
                victim.signal(signal.SIGKILL)
                victim.process.wait(10)
                return victim, [held for held in chunks if held.worker_id == victim.worker_id]
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.signal(signal.SIGCONT)
        time.sleep(0.01)
    pytest.fail("no worker was ever caught half-way through a chunk")


def test_a_worker_killed_mid_batch_leaves_the_batch_exact(database_url: str, tmp_path: Path) -> None:
    root, data_dir = tmp_path / "root", tmp_path / "data"
    data_dir.mkdir()
    env = {
        **batch_env(root, database_url),
        "CONVEYOR_LEASE_SECONDS": "2",
        "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
        "CONVEYOR_DATA_DIR": str(data_dir),
    }
    plant = make_plant(root / "plant", 60)
    workers = start_workers(env, data_dir, 2)
    try:
        with running_server(env, data_dir, workers=0) as server:
            wait_until_claiming(workers)
            batch_id = start_batch(server, plant, chunk_size=5)["id"]
            live, victim, held = follow_and_kill(server, batch_id, workers, database_url)
            check_finished_batch(server, plant, batch_id, live)
            check_jobs(server, batch_id, held)
    finally:
        for worker in workers:  # all told at once, then each waited for
            with contextlib.suppress(ProcessLookupError):
                worker.signal(signal.SIGTERM)
        for worker in workers:
            stop_process(worker.process)
    [survivor] = [worker for worker in workers if worker is not victim]
    assert re.search(r"leases expired: [1-9]\d* re-queued", survivor.log.read_text()), (
        "the survivor re-queued"
    )


def follow_and_kill(
    server: Server, batch_id: int, workers: list[Worker], database_url: str
) -> tuple[list[dict[str, Any]], Worker, list[Held]]:
    """Read the batch's stream to its end, killing a worker as soon as a file is done."""
    live: list[dict[str, Any]] = []
    victim: Worker | None = None
    held: list[Held] = []
    parser = EventStream()
    headers = {"Authorization": f"Bearer {server.viewer}"}
    deadline = time.monotonic() + STREAM_SECONDS
    with (
        httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client,
        client.stream("GET", "/api/events", params={"batch": batch_id}, headers=headers) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"the batch did not complete: {live[-3:]}"
            event = parser.feed(line)
            if event is None:
                continue
            live.append(event)
            if victim is None and "processed" in event:
                assert done(event) < event["total"], "the batch ended before a worker could be killed"
                victim, held = kill_mid_chunk(workers, database_url, batch_id)
    assert victim is not None and held
    return live, victim, held


def check_finished_batch(server: Server, plant: Plant, batch_id: int, live: list[dict[str, Any]]) -> None:
    """Counters, events and report of the batch: every file settled once, one report."""
    stored = all_events(server, batch_id)
    check_stream(stored, plant, batch_id)
    assert live == stored
    with server.client(server.viewer) as client:
        batch = client.get(f"/api/batches/{batch_id}").json()
        link = urlsplit(stored[-1]["download_url"])
    total = len(plant.files)
    assert (batch["status"], batch["total"], batch["processed"], batch["failed"], batch["matches"]) == (
        "completed",
        total,
        total - len(plant.failed),
        len(plant.failed),
        len(plant.matches),
    )
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as anonymous:
        report = anonymous.get(f"{link.path}?{link.query}")  # the signed link needs no key
    assert report.status_code == 200, report.text
    book = CalamineWorkbook.from_filelike(io.BytesIO(report.content))
    files = book.get_sheet_by_name("Files").to_python()[1:]
    assert collections.Counter(row[0] for row in files) == collections.Counter(plant.files)
    assert {row[0]: row[1] for row in files} == plant.statuses
    matches = book.get_sheet_by_name("Matches").to_python()[1:]
    assert sorted((row[1], row[0], row[2]) for row in matches) == sorted(plant.matches)


def check_jobs(server: Server, batch_id: int, held: list[Held]) -> None:
    """One report job; every chunk succeeded; the killed worker's chunks ran again."""
    with server.client(server.viewer) as client:
        reports = client.get("/api/jobs", params={"pipeline": "batch-report", "limit": 1000}).json()["items"]
        chunks = client.get("/api/jobs", params={"pipeline": "codescan", "limit": 1000}).json()["items"]
    assert [job["status"] for job in reports if job["batch_id"] == batch_id] == ["succeeded"]
    chunks = [job for job in chunks if job["batch_id"] == batch_id]
    assert len(chunks) == 12 and {job["status"] for job in chunks} == {"succeeded"}
    killed = {chunk.job_id for chunk in held}
    rerun = {job["id"]: job["attempts"] for job in chunks if job["id"] in killed}
    assert rerun.keys() == killed and min(rerun.values()) >= 2, rerun
