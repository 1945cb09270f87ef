"""What codescan sends to parser processes: the text layer of a run of pages with the codes found
in it, and one page drawn, OCR'd and searched.

The pattern runs here too, not in the job worker: a pattern that backtracks without end (``(a+)+$``
on a long line) then meets the file's deadline and its process is killed, like a hostile PDF. Only
the codes come back for text-layer pages; OCR pages bring their text as well, for fuzzy matching.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conveyor.content import PageSource
from conveyor.errors import InputError
from conveyor.extractors import pdf
from conveyor.pipelines.codescan.codes import Found, compiled, find_codes, ocr_lines, plain_text
from conveyor.pipelines.page_reading import FileTask, PageTask, read_pdf_page


@dataclass(frozen=True, slots=True)
class TextLayerTask:
    file: FileTask
    first: int
    count: int
    pattern: str


@dataclass(frozen=True, slots=True)
class OcrTask:
    page: PageTask
    pattern: str


@dataclass(slots=True)
class PageCodes:
    """One page's codes as its text gives them. ``text`` is kept for OCR pages only."""

    number: int
    source: PageSource
    needs_ocr: bool
    found: list[Found] = field(default_factory=list)
    text: str = ""
    confidence: float | None = None


def scan_text_layer(task: TextLayerTask) -> tuple[int, list[PageCodes]]:
    """The page count, and pages ``first`` .. ``first + count - 1`` (0-based) with their codes and
    whether each needs OCR (no text, or a scan with a stray caption)."""
    file = task.file
    total, pages = pdf.read_text_layer(
        file.path, file.password, file.subject, file.limits, task.first, task.count, False, False
    )
    pattern = compiled(task.pattern)
    return total, [
        PageCodes(
            item.page.number,
            item.page.source,
            item.needs_ocr,
            find_codes(plain_text(item.page.text), pattern) if item.page.source == "text-layer" else [],
        )
        for item in pages
    ]


def scan_text_layers(tasks: list[TextLayerTask]) -> list[tuple[int, list[PageCodes]] | InputError]:
    """``scan_text_layer`` for several files in one call, each file's InputError (a corrupt or
    encrypted file) returned in its place so that it fails alone. Any other error fails the call,
    and the caller reads its files one by one to find which file it was."""
    outcomes: list[tuple[int, list[PageCodes]] | InputError] = []
    for task in tasks:
        try:
            outcomes.append(scan_text_layer(task))
        except InputError as error:
            outcomes.append(error)
    return outcomes


def scan_ocr_page(task: OcrTask) -> PageCodes:
    reading = read_pdf_page(task.page)
    text = ocr_lines(plain_text(reading.text or ""))
    found = find_codes(text, compiled(task.pattern))
    source: PageSource = "ocr" if text.strip() else "none"
    return PageCodes(task.page.index + 1, source, False, found, text, reading.confidence)
