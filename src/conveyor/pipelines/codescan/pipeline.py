"""The ``codescan`` pipeline: the codes a PDF drawing carries, matched against a target list.

    text layer of every page + the codes in it + which pages need OCR   (one parser call per
                                                                         25 pages: one for a drawing)
    -> pages without text drawn at ``dpi`` and OCR'd, on every parser process
    -> codes matched: exact on normal forms; fuzzy for OCR readings only
    -> one ``code`` record per code and page, the file's status ("no code", "1 code", "3 codes")

Records are built eagerly (bounded by the page limit): the caller writes them in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.content import DocumentInput, Finding, PipelineContext, PipelineResult, Record
from conveyor.errors import Cancelled, InputError
from conveyor.extractors.isolation import Deadline, Sandbox, sandbox_for
from conveyor.extractors.ocr import check_languages
from conveyor.extractors.pdf import EncryptedPdf
from conveyor.extractors.sniff import describe_media_type
from conveyor.extractors.spooling import local_file
from conveyor.pipelines.codescan.codes import DEFAULT_PATTERN, compiled
from conveyor.pipelines.codescan.matching import CodeMatch, ocr_matches, text_layer_matches
from conveyor.pipelines.codescan.reading import (
    OcrTask,
    PageCodes,
    TextLayerTask,
    scan_ocr_page,
    scan_text_layer,
)
from conveyor.pipelines.codescan.targets import TargetSet, normalised_targets, target_set
from conveyor.pipelines.page_reading import FileTask, PageTask
from conveyor.pipelines.params import checked_params

PDF: Final = "application/pdf"
MAX_PATTERN_CHARS: Final = 500
MAX_TARGETS: Final = 1_000_000
# Text-layer pages per parser call: a drawing is one call; a long document still spreads over
# every process.
TEXT_CHUNK_PAGES: Final = 25


class CodescanParams(BaseModel):
    """The ``codescan`` pipeline's params; anything else is refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Matched ignoring case, on text whose dashes and spaces are plain "-" and " " (codes.py).
    pattern: str = Field(default=DEFAULT_PATTERN, max_length=MAX_PATTERN_CHARS)
    # Normalised target codes (``read_targets`` reads them from a spreadsheet); None reports every
    # code found.
    targets: list[str] | None = Field(default=None, max_length=MAX_TARGETS)
    ocr: bool = True
    languages: str = Field(default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$", max_length=200)
    dpi: int = Field(default=300, ge=72, le=600)

    @field_validator("pattern")
    @classmethod
    def _usable_pattern(cls, value: str) -> str:
        try:
            pattern = compiled(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        if pattern.search("") is not None:
            raise ValueError("the pattern matches the empty string, so it would find a code everywhere")
        return value

    @field_validator("targets")
    @classmethod
    def _normal_targets(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            return normalised_targets(value)
        except InputError as error:
            raise ValueError(str(error)) from None


class CodescanPipeline:
    """PDF drawings in; ``code`` records (what was found where, and the target it matches) out."""

    name = "codescan"
    shared_keys = False

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        checked = checked_params(CodescanParams, params)
        if checked.ocr:
            try:
                check_languages(checked.languages)
            except InputError as error:
                raise InputError(f"param 'languages': {error}") from None
        return checked.model_dump()

    def run(
        self, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
    ) -> PipelineResult:
        # The targets, the same for every file of a batch, are checked once and cached (target_set);
        # the rest of the params is checked here each time, as cheap as it is.
        options = checked_params(CodescanParams, {k: v for k, v in params.items() if k != "targets"})
        targets = _targets(params.get("targets"))
        if document.media_type != PDF:
            raise InputError(
                f"{document.filename}: the codescan pipeline reads PDFs; this file's content is"
                f" {describe_media_type(document.media_type)}"
            )
        if context.is_cancelled():
            raise Cancelled
        limits = context.limits
        with local_file(document, limits) as path:
            scan = _Scan(sandbox_for(limits), FileTask(path, document.filename, limits), options, context)
            try:
                pages = scan.pages()
            except EncryptedPdf:
                raise EncryptedPdf(
                    f"{document.filename}: the PDF is encrypted; codescan reads only PDFs without a password"
                ) from None
        return _result(pages, targets, options)


def _targets(value: object) -> TargetSet | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value[:1]):
        raise InputError("param 'targets': a list of codes is expected")
    try:
        return target_set(tuple(value))
    except (TypeError, AttributeError):
        raise InputError("param 'targets': a list of codes is expected") from None
    except InputError as error:
        raise InputError(f"param 'targets': {error}") from None


class _Scan:
    """One file's reading: the text layer in chunks, then the pages that need OCR."""

    def __init__(
        self, sandbox: Sandbox, file: FileTask, options: CodescanParams, context: PipelineContext
    ) -> None:
        self.sandbox = sandbox
        self.file = file
        self.options = options
        self.context = context
        self.deadline = Deadline.start(file.limits.seconds_per_file)

    def pages(self) -> list[PageCodes]:
        pattern = self.options.pattern
        first = TextLayerTask(self.file, 0, TEXT_CHUNK_PAGES, pattern)
        total, pages = self.sandbox.run(
            scan_text_layer,
            first,
            deadline=self.deadline,
            subject=self.file.subject,
            is_cancelled=self.context.is_cancelled,
        )
        chunks = [
            TextLayerTask(self.file, start, TEXT_CHUNK_PAGES, pattern)
            for start in range(TEXT_CHUNK_PAGES, total, TEXT_CHUNK_PAGES)
        ]
        for _, more in self._map(scan_text_layer, chunks):
            pages.extend(more)
        scanned = [page for page in pages if page.needs_ocr] if self.options.ocr else []
        done = total - len(scanned)
        self.context.progress(100.0 * done / total)
        for reading in self._map(scan_ocr_page, [self._ocr_task(page) for page in scanned]):
            pages.append(reading)
            done += 1
            self.context.progress(100.0 * done / total)
        return pages

    def _ocr_task(self, page: PageCodes) -> OcrTask:
        options = self.options
        task = PageTask(self.file, page.number - 1, True, False, False, options.languages, options.dpi)
        return OcrTask(task, options.pattern)

    def _map(self, function: Any, items: Sequence[Any]) -> Iterator[Any]:
        return self.sandbox.map(
            function,
            items,
            deadline=self.deadline,
            subject=self.file.subject,
            is_cancelled=self.context.is_cancelled,
        )


def _result(pages: list[PageCodes], targets: TargetSet | None, options: CodescanParams) -> PipelineResult:
    """Readings of one page (its text layer, and OCR when it had too little text) merge into one
    set of codes: each code once per page, the text layer's reading first."""
    by_page: dict[int, dict[str, CodeMatch]] = {}
    for page in pages:
        kept = by_page.setdefault(page.number, {})
        found = text_layer_matches(page, targets) if page.source != "ocr" else ocr_matches(page, targets)
        for match in found:
            kept.setdefault(match.found.code, match)
    matches = [match for number in sorted(by_page) for match in by_page[number].values()]
    result = PipelineResult(records=[Record(kind="code", data=match.as_data()) for match in matches])
    _add_findings(result, pages, matches, options)
    codes = sorted({match.found.code for match in matches})
    matched = sorted({match.target for match in matches if match.target is not None})
    result.summary = {
        "pages": len(by_page),
        "ocr_pages": sum(1 for page in pages if page.source == "ocr"),
        "codes": len(codes),
        "code_list": codes,
        "matched_targets": matched,
        "matches": len(matched),
        "fuzzy_matches": sum(1 for match in matches if match.match == "fuzzy"),
        "status": status(len(codes)),
    }
    return result


def status(codes: int) -> str:
    """A file's status by its distinct codes: "no code", "1 code", "2 codes"."""
    if codes == 0:
        return "no code"
    return "1 code" if codes == 1 else f"{codes} codes"


def _add_findings(
    result: PipelineResult, pages: list[PageCodes], matches: list[CodeMatch], options: CodescanParams
) -> None:
    unread = sorted({page.number for page in pages if page.needs_ocr and page.source != "ocr"})
    if unread and not options.ocr:
        listed = ", ".join(map(str, unread[:20])) + (", ..." if len(unread) > 20 else "")
        result.findings.append(
            Finding(
                rule="no_text_layer",
                severity="warning",
                message=f"page(s) {listed} have no text layer and were not read: the param 'ocr' is off",
                ref=f"page:{unread[0]}",
            )
        )
    for match in matches:
        if match.match == "fuzzy":
            result.findings.append(
                Finding(
                    rule="fuzzy_match",
                    severity="warning",
                    message=(
                        f"page {match.page}: OCR read {match.found.as_written!r}, which matches the target"
                        f" {match.target} only if it misread letters and digits (O/0, I/1, S/5, B/8...)"
                    ),
                    ref=f"page:{match.page}",
                )
            )
            result.review.ask("fuzzy_match")
