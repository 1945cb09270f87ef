"""Batch events through real processes, on SQLite and PostgreSQL: a real WebSocket client and a real
SSE client against `conveyor serve`, a client that drops and reconnects mid-batch, and a worker killed
with SIGKILL in the middle of a batch run by separate `conveyor worker` processes.

What the events must be is read off the batch that was generated, never off the server's own
counters: a stream that dropped, repeated or reordered an event, or a batch that counted a file twice,
fails here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.drawings import corrupt_pdf, drawing_pdf
from tests.e2e.test_api import Server, running_server

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
