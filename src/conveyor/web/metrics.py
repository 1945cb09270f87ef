"""Prometheus metrics of one app: HTTP requests by route, and job gauges refreshed at each scrape.

Each app has its own registry (no process globals, so tests can build many apps). Counters are per
process: with several API processes, Prometheus sums their scrapes; the job gauges come from the
database and are the same whichever process answers.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "conveyor_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "conveyor_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.jobs = Gauge("conveyor_jobs", "Jobs by status.", ["status"], registry=self.registry)
        self.queue_depth = Gauge(
            "conveyor_queue_depth", "Jobs waiting to run (status queued).", registry=self.registry
        )
        self.dead_lettered = Gauge(
            "conveyor_dead_lettered_jobs", "Jobs in the dead-letter queue.", registry=self.registry
        )

    def observe_queue(self, stats: dict[str, Any]) -> None:
        for status, count in stats["by_status"].items():
            self.jobs.labels(status=status).set(count)
        self.queue_depth.set(stats["by_status"].get("queued", 0))
        self.dead_lettered.set(stats["dead_lettered"])

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request by its route template (``/api/jobs/{job_id}``), never by raw path,
    so that scanners probing random URLs cannot blow up the label set."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
