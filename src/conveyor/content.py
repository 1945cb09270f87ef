"""The nouns extractors produce and pipelines consume, free of any database or web types."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from conveyor.ai.model import LanguageModel

Severity = Literal["info", "warning", "error"]
PageSource = Literal["text-layer", "ocr", "none"]
Unit = Literal["pt", "px"]


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """One file to process. ``open`` gives a fresh binary stream, so large files are never read whole."""

    filename: str
    media_type: str
    sha256: str
    size: int
    open: Callable[[], IO[bytes]]
    # A local file with these bytes, when there is one (the local blob store, the CLI): parsers in
    # other processes read it directly instead of a spooled copy.
    path: Path | None = None

    def describe(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "media_type": self.media_type,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound an untrusted file must stay within; exceeding one is a ``LimitExceeded``.

    Built from ``Settings`` by the edges and handed to pipelines through their context, so extractors
    never read configuration themselves.
    """

    file_bytes: int = 1024 * 1024 * 1024
    pages: int = 5000
    image_pixels: int = 150_000_000
    zip_member_bytes: int = 512 * 1024 * 1024
    zip_total_bytes: int = 2 * 1024 * 1024 * 1024
    zip_ratio: float = 200.0
    zip_members: int = 100_000
    json_depth: int = 512
    seconds_per_file: float = 900.0
    memory_bytes: int = 3 * 1024 * 1024 * 1024
    # Processes that parse untrusted files for one job; 0 means one per CPU core.
    parse_workers: int = 0


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle, origin at the top left of its page, in ``unit`` (PDF points or
    image pixels)."""

    left: float
    top: float
    right: float
    bottom: float
    unit: Unit = "pt"

    def scaled(self, factor: float, unit: Unit) -> Box:
        return Box(self.left * factor, self.top * factor, self.right * factor, self.bottom * factor, unit)

    def as_json(self) -> dict[str, Any]:
        return {
            "left": round(self.left, 2),
            "top": round(self.top, 2),
            "right": round(self.right, 2),
            "bottom": round(self.bottom, 2),
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    box: Box
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Barcode:
    """One decoded code: ``corners`` run clockwise from the top left of the symbol as printed;
    ``decoded_by`` names the pass that found it (``plain``, ``upscaled``, ``inverted``, ...)."""

    format: str
    text: str
    raw: bytes
    box: Box
    corners: tuple[tuple[float, float], ...]
    decoded_by: str = "plain"


@dataclass(slots=True)
class Page:
    """The content of one page (a PDF page or an image frame), numbered from 1."""

    number: int
    width: float
    height: float
    unit: Unit
    text: str = ""
    source: PageSource = "none"
    confidence: float | None = None
    words: list[Word] = field(default_factory=list)
    codes: list[Barcode] = field(default_factory=list)
    # Degrees clockwise the page was turned, then deskewed, to be read by OCR.
    rotation: int = 0
    skew: float = 0.0


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

    @property
    def limits(self) -> Limits: ...

    @property
    def language_model(self) -> LanguageModel | None:
        """The configured model for the few readings that may ask one (None: no provider, offline)."""
        ...

    def emit(self, event_type: str, **data: Any) -> None: ...

    def is_cancelled(self) -> bool: ...

    def progress(self, value: float) -> None: ...


class OfflineContext:
    """The context for in-process runs (``conveyor extract``, tests): events are kept in a list."""

    def __init__(self, limits: Limits | None = None, language_model: LanguageModel | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.limits = limits or Limits()
        self.language_model = language_model

    def emit(self, event_type: str, **data: Any) -> None:
        self.events.append((event_type, data))

    def is_cancelled(self) -> bool:
        return False

    def progress(self, value: float) -> None:
        self.events.append(("PROGRESS", {"value": value}))
