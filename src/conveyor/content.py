"""The nouns extractors produce and pipelines consume, free of any database or web types."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """One file to process. ``open`` gives a fresh binary stream, so large files are never read whole."""

    filename: str
    media_type: str
    sha256: str
    size: int
    open: Callable[[], IO[bytes]]

    def describe(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "media_type": self.media_type,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(slots=True)
class Record:
    kind: str
    data: Any
    key: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "data": self.data}


@dataclass(slots=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    ref: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "ref": self.ref,
        }


@dataclass(slots=True)
class Review:
    required: bool = False
    reasons: list[str] = field(default_factory=list)

    def ask(self, reason: str) -> None:
        self.required = True
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass(slots=True)
class PipelineResult:
    """What a pipeline returns.

    ``records`` may be a lazy iterator so that a 1 GB file never sits in memory: the caller consumes it
    exactly once, and only after it is exhausted are ``findings``, ``review`` and ``summary`` complete
    (a streaming pipeline fills them as it goes).
    """

    records: Iterable[Record] = ()
    findings: list[Finding] = field(default_factory=list)
    review: Review = field(default_factory=Review)
    summary: dict[str, Any] = field(default_factory=dict)


class PipelineContext(Protocol):
    """What a running pipeline may ask of its surroundings."""

    def emit(self, event_type: str, **data: Any) -> None: ...

    def is_cancelled(self) -> bool: ...

    def progress(self, value: float) -> None: ...


class OfflineContext:
    """The context for in-process runs (``conveyor extract``, tests): events are kept in a list."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event_type: str, **data: Any) -> None:
        self.events.append((event_type, data))

    def is_cancelled(self) -> bool:
        return False

    def progress(self, value: float) -> None:
        self.events.append(("PROGRESS", {"value": value}))
