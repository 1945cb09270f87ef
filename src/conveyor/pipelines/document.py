"""The ``document`` pipeline: the text of every page and every code on it, from PDFs and images.

    PDF:   text layer of every page, in chunks, on all parser processes
           -> pages without one (or every page with ``ocr=always``) drawn at ``dpi`` and OCR'd
           -> pages with graphics drawn and searched for codes (the OCR drawing is reused)
    image: every frame OCR'd and searched for codes

Pages are spread over the parser processes (extractors.isolation), so one 200-page scan uses every
core; the whole file shares one deadline and one memory limit per process. Records: ``page`` (key
the page number) and ``code`` (key ``page:n``). Pages read by OCR below ``min_confidence`` are
findings and put the job up for review.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.content import (
    Barcode,
    DocumentInput,
    Finding,
    Page,
    PipelineContext,
    PipelineResult,
    Record,
)
from conveyor.errors import Cancelled, InputError
from conveyor.extractors.isolation import Deadline, Sandbox, sandbox_for
from conveyor.extractors.pdf import TextLayerPage
from conveyor.extractors.spooling import local_file
from conveyor.pipelines.page_reading import (
    FileTask,
    PageTask,
    Reading,
    TextChunk,
    read_image_frame,
    read_pdf_page,
    read_text_chunk,
)
from conveyor.pipelines.params import checked_languages, checked_params

PDF: Final = "application/pdf"
IMAGE_TYPES: Final = frozenset(
    {"image/png", "image/jpeg", "image/tiff", "image/webp", "image/bmp", "image/gif", "image/jp2"}
)
# Text-layer pages per task: big enough that opening the file again is noise, small enough that a
# long document still spreads over every process.
TEXT_CHUNK_PAGES: Final = 25


class DocumentParams(BaseModel):
    """The ``document`` pipeline's params; anything else is refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ocr: Literal["auto", "always", "never"] = "auto"
    languages: str = Field(default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$", max_length=200)
    dpi: int = Field(default=300, ge=72, le=600)
    codes: bool = True
    words: bool = False
    password: str | None = Field(default=None, max_length=1024)
    min_confidence: float = Field(default=60.0, ge=0, le=100)


class DocumentPipeline:
    """PDFs and images in; ``page`` and ``code`` records out."""

    name = "document"
    shared_keys = False

    # Kept with the job (the worker needs it) but never shown by the API.
    secret_params = frozenset({"password"})

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        checked = checked_params(DocumentParams, params)
        if checked.ocr != "never":
            checked_languages(checked.languages)
        return checked.model_dump()

    def run(
        self, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
    ) -> PipelineResult:
        options = DocumentParams.model_validate(self.validate_params(params))
        if document.media_type != PDF and document.media_type not in IMAGE_TYPES:
            raise InputError(
                f"{document.filename}: the document pipeline reads PDFs and images (PNG, JPEG, TIFF,"
                f" WebP, BMP, GIF); this file's content is {document.media_type}"
            )
        result = PipelineResult(
            summary={
                "media_type": document.media_type,
                "pages": 0,
                "by_source": {"text-layer": 0, "ocr": 0, "none": 0},
                "codes": 0,
            }
        )
        # Read eagerly (bounded by the page limit): the caller writes records in a transaction, and
        # on SQLite parsing inside it would hold the only write lock for the whole OCR run.
        result.records = list(self._records(document, options, context, result))
        return result

    def _records(
        self,
        document: DocumentInput,
        options: DocumentParams,
        context: PipelineContext,
        result: PipelineResult,
    ) -> Iterator[Record]:
        limits = context.limits
        deadline = Deadline.start(limits.seconds_per_file)
        sandbox = sandbox_for(limits)
        confidences: list[float] = []
        with local_file(document, limits) as path:
            file = FileTask(path, document.filename, limits, options.password)
            reader = _PdfReader if document.media_type == PDF else _ImageReader
            for page in reader(sandbox, file, options, context, deadline).pages():
                if page.source == "ocr" and page.confidence is not None:
                    confidences.append(page.confidence)
                yield from _page_records(page, options, result)
        if confidences:
            result.summary["ocr_confidence_mean"] = round(sum(confidences) / len(confidences), 1)


class _Reader:
    def __init__(
        self,
        sandbox: Sandbox,
        file: FileTask,
        options: DocumentParams,
        context: PipelineContext,
        deadline: Deadline,
    ) -> None:
        self.sandbox = sandbox
        self.file = file
        self.options = options
        self.context = context
        self.deadline = deadline

    def task(self, index: int, *, ocr: bool, codes: bool) -> PageTask:
        options = self.options
        return PageTask(self.file, index, ocr, codes, options.words, options.languages, options.dpi)

    def check_cancelled(self) -> None:
        if self.context.is_cancelled():
            raise Cancelled

    def report(self, done: int, total: int) -> None:
        self.context.progress(100.0 * done / total)


class _PdfReader(_Reader):
    def pages(self) -> Iterator[Page]:
        self.check_cancelled()
        first = TextChunk(self.file, 0, TEXT_CHUNK_PAGES, self.options.words, self.options.codes)
        total, layer = self.sandbox.run(
            read_text_chunk, first, deadline=self.deadline, subject=self.file.subject
        )
        chunks = [
            TextChunk(self.file, start, TEXT_CHUNK_PAGES, self.options.words, self.options.codes)
            for start in range(TEXT_CHUNK_PAGES, total, TEXT_CHUNK_PAGES)
        ]
        for _, more in self._map(read_text_chunk, chunks):
            layer.extend(more)
        tasks = [task for task in map(self._drawing, layer) if task is not None]
        readings = self._map(read_pdf_page, tasks)
        pending = next(readings, None)
        for done, item in enumerate(layer, 1):
            page = item.page
            if pending is not None and pending.index == page.number - 1:
                _merge(page, pending)
                pending = next(readings, None)
            self.report(done, total)
            yield page

    def _drawing(self, item: TextLayerPage) -> PageTask | None:
        """The page's drawing task, if it needs one: OCR when it has no text, codes when it has
        graphics (a scan is one big image, so a page read by OCR is searched for codes too)."""
        mode = self.options.ocr
        ocr = mode == "always" or (mode == "auto" and item.needs_ocr)
        codes = self.options.codes and (item.has_graphics or ocr)
        if not (ocr or codes):
            return None
        return self.task(item.page.number - 1, ocr=ocr, codes=codes)

    def _map(self, function: Any, items: list[Any]) -> Iterator[Any]:
        return self.sandbox.map(
            function,
            items,
            deadline=self.deadline,
            subject=self.file.subject,
            is_cancelled=self.context.is_cancelled,
        )


class _ImageReader(_Reader):
    def pages(self) -> Iterator[Page]:
        self.check_cancelled()
        ocr = self.options.ocr != "never"
        first = self.task(0, ocr=ocr, codes=self.options.codes)
        total, page, reading = self.sandbox.run(
            read_image_frame, first, deadline=self.deadline, subject=self.file.subject
        )
        _merge(page, reading)
        self.report(1, total)
        yield page
        rest = [self.task(index, ocr=ocr, codes=self.options.codes) for index in range(1, total)]
        results = self.sandbox.map(
            read_image_frame,
            rest,
            deadline=self.deadline,
            subject=self.file.subject,
            is_cancelled=self.context.is_cancelled,
        )
        for done, (_, page, reading) in enumerate(results, 2):
            _merge(page, reading)
            self.report(done, total)
            yield page


def _merge(page: Page, reading: Reading) -> None:
    """OCR's reading replaces the text layer, unless OCR found nothing where the layer had text
    (an image-heavy page with a short caption keeps its caption)."""
    page.codes = reading.codes
    if reading.text is None or (not reading.text.strip() and page.text.strip()):
        return
    page.text = reading.text
    page.words = reading.words
    page.source = "ocr" if reading.text.strip() else "none"
    page.confidence = reading.confidence
    page.rotation = reading.rotation
    page.skew = reading.skew


def _page_records(page: Page, options: DocumentParams, result: PipelineResult) -> Iterator[Record]:
    summary = result.summary
    summary["pages"] += 1
    summary["by_source"][page.source] += 1
    data: dict[str, Any] = {
        "page": page.number,
        "text": page.text,
        "source": page.source,
        "confidence": None if page.confidence is None else round(page.confidence, 1),
        "width": round(page.width, 2),
        "height": round(page.height, 2),
        "unit": page.unit,
    }
    if page.confidence is not None:  # read by OCR, whatever it found
        data["rotation"] = page.rotation
        data["skew"] = round(page.skew, 2)
    if options.words:
        data["words"] = [
            {"text": word.text, "box": word.box.as_json(), "confidence": word.confidence}
            for word in page.words
        ]
    if page.source == "ocr" and page.confidence is not None and page.confidence < options.min_confidence:
        result.findings.append(
            Finding(
                rule="low_ocr_confidence",
                severity="warning",
                message=(
                    f"page {page.number} was read by OCR with mean confidence {page.confidence:.0f},"
                    f" under the {options.min_confidence:g} asked for: check its text"
                ),
                ref=f"page:{page.number}",
            )
        )
        result.review.ask("low_ocr_confidence")
    yield Record(kind="page", key=str(page.number), data=data)
    for number, code in enumerate(page.codes, 1):
        summary["codes"] += 1
        yield Record(kind="code", key=f"{page.number}:{number}", data=_code_data(page, code))


def _code_data(page: Page, code: Barcode) -> dict[str, Any]:
    return {
        "page": page.number,
        "format": code.format,
        # JSON columns refuse NUL; the exact payload is in "bytes".
        "text": code.text.replace("\x00", "\ufffd"),
        "bytes": base64.b64encode(code.raw).decode("ascii"),
        "position": {
            **code.box.as_json(),
            "corners": [[round(x, 2), round(y, 2)] for x, y in code.corners],
        },
        "decoded_by": code.decoded_by,
    }
