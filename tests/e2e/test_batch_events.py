"""Batch events through real processes, on SQLite and PostgreSQL: a real WebSocket client and a real
SSE client against `conveyor serve`, a client that drops and reconnects mid-batch, and a worker killed
with SIGKILL in the middle of a batch run by separate `conveyor worker` processes.

What the events must be is read off the batch that was generated, never off the server's own
counters: a stream that dropped, repeated or reordered an event, or a batch that counted a file twice,
fails here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from conveyor.store.database import create_database_engine, read_session_factory
from conveyor.store.tables import BatchFile, Job
from tests.drawings import corrupt_pdf, drawing_pdf
from tests.e2e.test_api import Server, running_server
from tests.support import start_process, stop_process

CONVEYOR = Path(sys.executable).parent / "conveyor"
# state.PROGRESS_FILES: a PROGRESS event at least every this many files.
PROGRESS_FILES = 10
STREAM_SECONDS = 90.0
# A drawing's first code is a target when its number is a multiple of this.
TARGET_EVERY = 4


@dataclass
class Plant:
    """A folder of generated drawings and what a scan of it must report."""

    folder: Path
    files: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    matches: set[tuple[str, str, int]] = field(default_factory=set)  # (file, code, page)
    failed: set[str] = field(default_factory=set)
    statuses: dict[str, str] = field(default_factory=dict)  # the Files sheet's status of each file


def make_plant(folder: Path, count: int, *, corrupt: frozenset[int] = frozenset({13})) -> Plant:
    """``count`` drawings under ``folder``: a code each (a target every TARGET_EVERY drawings, written
    across two lines every fifth drawing), a second code that is no target every sixth, none every
    tenth, and the numbers in ``corrupt`` unreadable."""
    plant = Plant(folder)
    for number in range(count):
        name = f"area-{number % 3}/D-{number:03d}.pdf"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        plant.files.append(name)
        if number in corrupt:
            path.write_bytes(corrupt_pdf())
            plant.failed.add(name)
            plant.statuses[name] = "failed"
            continue
        codes = [] if number % 10 == 9 else [f"HOLE-{100 + number}"]
        if codes and number % 6 == 1:
            codes.append(f"HOLE-{5000 + number}")
        split = codes[:1] if number % 5 == 0 else []
        path.write_bytes(drawing_pdf(codes, split=split))
        plant.statuses[name] = {0: "no code", 1: "1 code"}.get(len(codes), f"{len(codes)} codes")
        if codes and number % TARGET_EVERY == 0:
            plant.targets.append(codes[0])
            plant.matches.add((name, codes[0], 1))
    plant.targets.append("HOLE-99999")  # in the list, on no drawing
    plant.files.sort()
    return plant


# --- deployments ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    server: Server
    root: Path  # the allowed batch root


def batch_env(root: Path, database_url: str | None) -> dict[str, str]:
    env = {"CONVEYOR_BATCH_ROOTS": orjson.dumps([str(root)]).decode(), "CONVEYOR_POLL_SECONDS": "0.2"}
    if database_url is not None:
        env["CONVEYOR_DATABASE_URL"] = database_url
    return env


@pytest.fixture(scope="module")
def deployment(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """`conveyor serve --workers 2`, allowed to scan folders under its own root."""
    root = tmp_path_factory.mktemp("batch-root")
    data_dir = tmp_path_factory.mktemp("conveyor-data")
    with running_server(batch_env(root, database), data_dir, workers=2) as server:
        yield Deployment(server, root)


def start_batch(server: Server, plant: Plant, *, chunk_size: int) -> dict[str, Any]:
    with server.client(server.admin) as client:
        response = client.post(
            "/api/batches",
            json={
                "folder": str(plant.folder),
                "targets": plant.targets,
                "ocr": False,
                "chunk_size": chunk_size,
            },
        )
    assert response.status_code == 201, response.text
    batch: dict[str, Any] = response.json()
    assert (batch["status"], batch["total"], batch["chunk_size"]) == ("running", len(plant.files), chunk_size)
    return batch


# --- the two clients -----------------------------------------------------------------------------


class EventStream:
    """An ``text/event-stream`` parser fed line by line; each complete event's JSON, checked against
    its ``id:`` and ``event:`` lines."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def feed(self, line: str) -> dict[str, Any] | None:
        if line.startswith(":"):
            return None  # a comment: the keep-alive
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            self.fields[name] = f"{self.fields[name]}\n{value}" if name in self.fields else value
            return None
        fields, self.fields = self.fields, {}
        if "data" not in fields:
            return None  # the opening "retry:" block
        event: dict[str, Any] = orjson.loads(fields["data"])
        assert fields.get("id") == str(event["id"]) and fields.get("event") == event["type"], fields
        return event


async def sse_events(
    server: Server,
    batch_id: int,
    *,
    since: int | None = None,
    last_event_id: int | None = None,
    stop_after: int | None = None,
) -> list[dict[str, Any]]:
    """The batch's events over SSE (key in the header) until the server ends the stream, or the
    first ``stop_after`` of them (then the connection is dropped)."""
    headers = {"Authorization": f"Bearer {server.viewer}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {"batch": batch_id} if since is None else {"batch": batch_id, "since": since}
    events: list[dict[str, Any]] = []
    parser = EventStream()
    async with (
        httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as client,
        client.stream("GET", "/api/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            event = parser.feed(line)
            if event is not None:
                events.append(event)
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events


async def ws_events(
    server: Server,
    batch_id: int,
    *,
    since: int = 0,
    stop_after: int | None = None,
    key_in_query: bool = False,
) -> tuple[list[dict[str, Any]], int | None]:
    """The batch's events over the WebSocket until the server closes it (and its close code), or the
    first ``stop_after`` of them (then this client closes)."""
    host = server.url.removeprefix("http://")
    uri = f"ws://{host}/ws?batch={batch_id}&since={since}"
    headers: dict[str, str] = {}
    if key_in_query:
        uri += f"&key={server.viewer}"
    else:
        headers["Authorization"] = f"Bearer {server.viewer}"
    events: list[dict[str, Any]] = []
    async with connect(uri, additional_headers=headers, proxy=None, open_timeout=30) as websocket:
        async for message in websocket:
            assert isinstance(message, str), "events are JSON text messages"
            events.append(orjson.loads(message))
            if stop_after is not None and len(events) >= stop_after:
                break
    return events, websocket.close_code


def run_clients(*clients: Any) -> list[Any]:
    """Run the clients' coroutines together, within a bound."""

    async def together() -> list[Any]:
        return list(await asyncio.wait_for(asyncio.gather(*clients), STREAM_SECONDS))

    return asyncio.run(together())


def all_events(server: Server, batch_id: int) -> list[dict[str, Any]]:
    """Every stored event of the batch, from a fresh connection with ``since=0``."""
    [events] = run_clients(sse_events(server, batch_id, since=0))
    assert isinstance(events, list)
    return events


# --- what a finished stream must say -------------------------------------------------------------


def done(event: dict[str, Any]) -> int:
    return int(event["processed"]) + int(event["failed"])


def check_stream(events: list[dict[str, Any]], plant: Plant, batch_id: int) -> None:
    """Order, counters and contents of a whole batch stream against the plant that was generated."""
    total = len(plant.files)
    ids = [event["id"] for event in events]
    assert all(before < after for before, after in itertools.pairwise(ids)), ids
    assert {event["batch_id"] for event in events} == {batch_id}
    assert all(event["at"] for event in events)
    types = [event["type"] for event in events]
    assert types[0] == "STARTED" and events[0]["total"] == total
    assert types[-1] == "COMPLETE" and types.count("COMPLETE") == 1 and types.count("STARTED") == 1

    counted = [event for event in events if "processed" in event]
    assert all(event["total"] == total for event in counted)
    assert [done(event) for event in counted] == sorted(done(event) for event in counted)
    assert [event["matches"] for event in counted] == sorted(event["matches"] for event in counted)
    progress = [done(event) for event in events if event["type"] == "PROGRESS"]
    assert all(0 < after - before <= PROGRESS_FILES for before, after in itertools.pairwise([0, *progress]))
    assert progress[-1] == total
    assert [event["value"] for event in events if event["type"] == "PROGRESS"][-1] == 100

    found = [event["data"] for event in events if event["type"] == "MATCH_FOUND"]
    matched_files = [data["file"] for data in found]
    assert len(matched_files) == len(set(matched_files)), "a file's matches are announced once"
    reported = {(data["file"], match["code"], match["page"]) for data in found for match in data["matches"]}
    assert reported == plant.matches
    for data in found:
        assert all(
            (match["target"], match["kind"], match["confidence"]) == (match["code"], "exact", 1.0)
            for match in data["matches"]
        ), data
    errors = [event for event in events if event["type"] == "ERROR"]
    assert sorted(error["file"] for error in errors) == sorted(plant.failed)
    for error in errors:
        assert error["code"] == "file_failed" and Path(error["file"]).name in error["message"], error

    complete = events[-1]
    expected = (total, total - len(plant.failed), len(plant.failed), len(plant.matches))
    assert (complete["total"], complete["processed"], complete["failed"], complete["matches"]) == expected
    assert f"/api/batches/{batch_id}/report?" in complete["download_url"]


def event_time(event: dict[str, Any]) -> dt.datetime:
    at = dt.datetime.fromisoformat(event["at"])
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


# --- the tests -----------------------------------------------------------------------------------


def test_websocket_and_sse_clients_receive_the_same_whole_stream(deployment: Deployment) -> None:
    server = deployment.server
    plant = make_plant(deployment.root / f"stream-{uuid.uuid4().hex[:6]}", 40)
    batch = start_batch(server, plant, chunk_size=3)

    (over_ws, close_code), over_sse = run_clients(
        ws_events(server, batch["id"]), sse_events(server, batch["id"])
    )

    assert close_code == 1000, "the server closes the WebSocket normally after the last event"
    stored = all_events(server, batch["id"])
    check_stream(stored, plant, batch["id"])
    assert over_ws == stored
    assert over_sse == stored
    with server.client(server.viewer) as client:
        counters = client.get(f"/api/batches/{batch['id']}").json()
    assert (counters["status"], counters["processed"], counters["failed"], counters["matches"]) == (
        "completed",
        stored[-1]["processed"],
        stored[-1]["failed"],
        stored[-1]["matches"],
    )


def test_a_client_that_reconnects_receives_every_missed_event_once(deployment: Deployment) -> None:
    server = deployment.server
    plant = make_plant(
        deployment.root / f"reconnect-{uuid.uuid4().hex[:6]}", 120, corrupt=frozenset({13, 90})
    )
    batch_id = start_batch(server, plant, chunk_size=1)["id"]

    first_sse, (first_ws, _) = run_clients(
        sse_events(server, batch_id, stop_after=4), ws_events(server, batch_id, stop_after=6)
    )
    assert len(first_sse) == 4 and len(first_ws) == 6
    seen = max(done(event) for event in [*first_sse, *first_ws] if "processed" in event)
    # While neither client is connected, the batch moves on by at least one PROGRESS.
    state = wait_for_batch(server, batch_id, lambda batch: done(batch) >= seen + PROGRESS_FILES)
    assert state["status"] == "running" and state["total"] - done(state) >= 40, (
        f"the batch is nearly done before the clients reconnect ({state}): give it more files"
    )
    reconnected_at = dt.datetime.now(dt.UTC)
    rest_sse, (rest_ws, close_code) = run_clients(
        # Last-Event-ID (what a browser sends) wins over ?since=.
        sse_events(server, batch_id, since=0, last_event_id=first_sse[-1]["id"]),
        ws_events(server, batch_id, since=first_ws[-1]["id"], key_in_query=True),
    )

    stored = all_events(server, batch_id)
    check_stream(stored, plant, batch_id)
    assert first_sse + rest_sse == stored
    assert first_ws + rest_ws == stored
    assert close_code == 1000
    missed = [event for event in rest_sse if event_time(event) < reconnected_at]
    live = [event for event in rest_sse if event_time(event) > reconnected_at]
    assert "PROGRESS" in {event["type"] for event in missed}, "events written while disconnected"
    assert live and live[-1]["type"] == "COMPLETE", "events written after the reconnection"


def wait_for_batch(server: Server, batch_id: int, until: Any, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    with server.client(server.viewer) as client:
        while time.monotonic() < deadline:
            batch: dict[str, Any] = client.get(f"/api/batches/{batch_id}").raise_for_status().json()
            if until(batch) or batch["status"] != "running":
                return batch
            time.sleep(0.03)
    raise TimeoutError(f"batch {batch_id} did not get there in {timeout_s}s")


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
