"""Live events of a batch (or a job): Server-Sent Events at ``GET /api/events`` and a WebSocket at
``/ws``. Both read the stored events after the last id the client saw (``Last-Event-ID``, or
``?since=``), so a client that drops and reconnects receives every event it missed, once, in order
(``conveyor.batching.state`` explains why ids never commit out of order). The stream ends after the
batch's last event (``COMPLETE``, or the ``ERROR`` that cancelled or failed it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from conveyor import intake, progress
from conveyor.batching import state
from conveyor.errors import ConveyorError, InputError
from conveyor.intake import Role
from conveyor.web.dependencies import AppState, StateDep, get_principal

router = APIRouter(tags=["events"])
POLL_SECONDS: Final = 0.2
KEEPALIVE_SECONDS: Final = 15.0
PAGE: Final = 500


def _is_last(event: dict[str, Any], batch: int | None) -> bool:
    """A batch's stream ends with COMPLETE or the ERROR that cancelled or failed it; a job's with
    COMPLETE or an ERROR after which it will not run again."""
    if event["type"] == "COMPLETE":
        return True
    if event["type"] != "ERROR":
        return False
    return event.get("code") in state.ENDING_ERRORS if batch is not None else not event.get("will_retry")


async def _stream(
    state: AppState, batch: int | None, job: int | None, since: int
) -> AsyncIterator[dict[str, Any]]:
    """Stored events after ``since``, then new ones as they are written, until the last one."""
    last, idle = since, 0.0

    def fetch() -> list[dict[str, Any]]:
        with state.read_sessions() as session:
            found = progress.events_since(session, batch_id=batch, job_id=job, since=last, limit=PAGE)
            return [progress.as_json(event) for event in found]

    while True:
        events = await run_in_threadpool(fetch)
        for event in events:
            last = event["id"]
            yield event
            if _is_last(event, batch):
                return
        if len(events) == PAGE:
            continue
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield {}


def _authorize(state: AppState, authorization: str | None, key: str | None) -> None:
    token = key
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token) if token else None
    principal = get_principal(state, credentials)
    intake.authorize(role=principal.role, needed=Role.VIEWER)


def _subject(state: AppState, batch: int | None, job: int | None) -> None:
    if (batch is None) == (job is None):
        raise InputError("name exactly one of ?batch= and ?job=")
    with state.read_sessions() as session:
        if batch is not None:
            intake.get_batch(session, batch_id=batch)
        else:
            assert job is not None
            intake.get_job(session, job_id=job)


@router.get("/api/events", response_class=StreamingResponse)
async def server_sent_events(
    state: StateDep,
    batch: Annotated[int | None, Query(description="a batch id")] = None,
    job: Annotated[int | None, Query(description="a job id")] = None,
    since: Annotated[int, Query(ge=0, description="resume after this event id")] = 0,
    key: Annotated[str | None, Query(description="an API key, for clients that cannot set headers")] = None,
    authorization: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events; a reconnecting client's ``Last-Event-ID`` wins over ``?since=``."""
    await run_in_threadpool(_authorize, state, authorization, key)
    await run_in_threadpool(_subject, state, batch, job)
    if last_event_id and last_event_id.strip().isdigit():
        since = int(last_event_id)

    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        async for event in _stream(state, batch, job, since):
            if not event:
                yield b": keep-alive\n\n"
                continue
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (
                event["id"],
                event["type"].encode(),
                orjson.dumps(event),
            )

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


@router.websocket("/ws")
async def websocket_events(
    websocket: WebSocket,
    batch: int | None = None,
    job: int | None = None,
    since: int = 0,
    key: str | None = None,
) -> None:
    """The same events as JSON text messages; the server closes with 1000 after the last one."""
    state: AppState = websocket.app.state.conveyor
    try:
        await run_in_threadpool(_authorize, state, websocket.headers.get("authorization"), key)
        await run_in_threadpool(_subject, state, batch, job)
    except ConveyorError as error:
        await websocket.close(code=1008, reason=str(error)[:120])
        return
    await websocket.accept()

    async def send() -> None:
        async for event in _stream(state, batch, job, since):
            if event:
                await websocket.send_text(orjson.dumps(event).decode())
        await websocket.close(code=1000)

    async def until_closed() -> None:
        """The client says nothing; its disconnect ends the stream at once, not at the next event
        (which, for a quiet batch, could be long in coming)."""
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = {asyncio.create_task(send()), asyncio.create_task(until_closed())}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        failure = task.exception()
        if failure is not None and not isinstance(failure, WebSocketDisconnect | RuntimeError):
            raise failure
