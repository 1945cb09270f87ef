"""Logging setup for the edges; job and document ids ride along on every line via a context variable."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator

import orjson

job_context: contextvars.ContextVar[tuple[tuple[str, object], ...]] = contextvars.ContextVar(
    "job_context", default=()
)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Attach fields (job_id, document_id) to every log line inside the block."""
    token = job_context.set(tuple({**dict(job_context.get()), **fields}.items()))
    try:
        yield
    finally:
        job_context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = dict(job_context.get())
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = getattr(record, "context", {})
        if context:
            line += " " + " ".join(f"{k}={v}" for k, v in context.items())
        return line


def configure(level: str = "INFO", fmt: str = "console") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else _ConsoleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Migrations announce every step at INFO; only problems are worth a line at start-up.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
