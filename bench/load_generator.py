"""A small HTTP/1.1 load generator: N keep-alive connections (asyncio streams on uvloop), each
sending its next request as soon as the previous one answered; run in a process of its own.

Not httpx: on this machine its async client spends about 1.5 ms of CPU per request and slows down
as connections are added (86 requests/s at 50 connections against a server that answers 500/s on
one), so it measured itself. Bare streams cost a few tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Literal
from urllib.parse import urlsplit

import uvloop

BOUNDARY = "conveyor-bench-boundary"


@dataclass(frozen=True, slots=True)
class LoadSpec:
    url: str
    kind: Literal["health", "upload"]
    api_key: str = ""
    connections: int = 50
    warmup_s: float = 2.0
    duration_s: float = 10.0
    upload_bytes: int = 1024


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    requests: int  # answered, of those started in the measured window
    errors: int
    rate: float
    p50_s: float
    p99_s: float
    max_s: float
    answered: int = 0  # all answers, warm-up included
    first_error: str | None = None


@dataclass(slots=True)
class _Window:
    """Requests that start inside [start, end) are measured; the rest only warm up or keep load on."""

    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    errors: int = 0
    first_error: str | None = None


def upload_body(counter: int, nonce: str, size: int) -> bytes:
    """A multipart body with a ``size``-byte JSON file whose bytes differ per request (no dedup)."""
    head = f'{{"upload": {counter}, "run": "{nonce}", "pad": "'
    content = (head + "x" * max(0, size - len(head) - 2) + '"}').encode()
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="pipeline"\r\n\r\nrecords\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="params"\r\n\r\n{{}}\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="upload-{counter}.json"\r\n'
        "Content-Type: application/json\r\n\r\n",
    ]
    return "".join(parts).encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def _request(spec: LoadSpec, counter: int, nonce: str) -> bytes:
    target = urlsplit(spec.url)
    head = f"Host: {target.netloc}\r\n"
    if spec.kind == "health":
        return f"GET {target.path} HTTP/1.1\r\n{head}\r\n".encode()
    body = upload_body(counter, nonce, spec.upload_bytes)
    head += (
        f"Authorization: Bearer {spec.api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
    )
    return f"POST {target.path} HTTP/1.1\r\n{head}\r\n".encode() + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one HTTP/1.1 response: Content-Length or chunked bodies."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


async def _connection(spec: LoadSpec, window: _Window, lane: int) -> None:
    target = urlsplit(spec.url)
    nonce = uuid.uuid4().hex[:12]
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    sent = 0
    while (started := time.perf_counter()) < window.end:
        sent += 1
        problem: str | None = None
        try:
            if streams is None:
                streams = await asyncio.open_connection(target.hostname, target.port)
            reader, writer = streams
            writer.write(_request(spec, sent * 1000 + lane, nonce))
            status, body, keep_alive = await asyncio.wait_for(_response(reader), timeout=30)
            if status >= 300:
                problem = f"HTTP {status}: {body[:200].decode(errors='replace')}"
            if not keep_alive:
                writer.close()
                streams = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            problem = repr(error)
            streams = None
        window.answered += problem is None
        if started < window.start:
            continue
        if problem is None:
            window.latencies.append(time.perf_counter() - started)
        else:
            window.errors += 1
            window.first_error = window.first_error or problem
    if streams is not None:
        streams[1].close()


async def _generate(spec: LoadSpec) -> LoadOutcome:
    now = time.perf_counter()
    window = _Window(now + spec.warmup_s, now + spec.warmup_s + spec.duration_s)
    await asyncio.gather(*(_connection(spec, window, lane) for lane in range(spec.connections)))
    latencies = sorted(window.latencies)
    if not latencies:
        return LoadOutcome(0, window.errors, 0.0, 0.0, 0.0, 0.0, window.answered, window.first_error)
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return LoadOutcome(
        requests=len(latencies),
        errors=window.errors,
        rate=len(latencies) / spec.duration_s,
        p50_s=quantiles[49],
        p99_s=quantiles[98],
        max_s=latencies[-1],
        answered=window.answered,
        first_error=window.first_error,
    )


def generate_main(spec: LoadSpec, outcomes: Queue[LoadOutcome]) -> None:
    """A spawned process: drive the load, put the outcome on ``outcomes``."""
    outcomes.put(uvloop.run(_generate(spec)))
