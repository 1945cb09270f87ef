"""The units of work the ``document`` pipeline sends to parser processes: one text-layer chunk of a
PDF, one page drawn and read (OCR, codes), one image frame.

Tasks are small frozen dataclasses and the functions are module-level so both pickle; each opens
the file by path in the parser process, so no page image ever crosses a process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from conveyor.content import Barcode, Limits, Page, Unit, Word
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors import images, ocr, pdf, qr

POINTS_PER_INCH = 72
# Codes are looked for on pages with graphics at this resolution when the page is not drawn for
# OCR anyway: a printed QR module of 0.5 mm is 4 pixels at 200 dpi, plenty for zxing.
CODES_DPI = 200


@dataclass(frozen=True, slots=True)
class FileTask:
    """What every task needs to open the file."""

    path: str
    subject: str
    limits: Limits
    password: str | None = None


@dataclass(frozen=True, slots=True)
class TextChunk:
    file: FileTask
    first: int
    count: int
    words: bool
    graphics: bool


@dataclass(frozen=True, slots=True)
class PageTask:
    file: FileTask
    index: int
    ocr: bool
    codes: bool
    words: bool
    languages: str
    dpi: int


@dataclass(slots=True)
class Reading:
    """What drawing a page added: OCR text (``None`` when not read) and the codes found."""

    index: int
    text: str | None = None
    confidence: float | None = None
    words: list[Word] = field(default_factory=list)
    codes: list[Barcode] = field(default_factory=list)
    rotation: int = 0
    skew: float = 0.0
    dpi: float = 0.0


def read_text_chunk(task: TextChunk) -> tuple[int, list[pdf.TextLayerPage]]:
    file = task.file
    return pdf.read_text_layer(
        file.path, file.password, file.subject, file.limits, task.first, task.count, task.words, task.graphics
    )


def read_pdf_page(task: PageTask) -> Reading:
    """Draw one PDF page and read it; positions come back in PDF points, like the text layer's."""
    file = task.file
    dpi = task.dpi if task.ocr else CODES_DPI
    image, dpi_used = pdf.render_page(file.path, file.password, file.subject, file.limits, task.index, dpi)
    return _read(image, task, dpi_used, POINTS_PER_INCH / dpi_used, "pt")


def read_image_frame(task: PageTask) -> tuple[int, Page, Reading]:
    """One frame of an image file, with the frame count (the first task learns how many follow)."""
    file = task.file
    with images.open_image(file.path, file.subject, file.limits) as image:
        frames = images.frame_count(image, file.subject)
        if frames > file.limits.pages:
            raise LimitExceeded("pages", frames, file.limits.pages, file.subject)
        frame, dpi = images.load_frame(image, task.index, file.subject, file.limits)
    page = Page(task.index + 1, float(frame.width), float(frame.height), "px")
    return frames, page, _read(frame, task, dpi, 1.0, "px")


def _read(image: Image.Image, task: PageTask, dpi: float, scale: float, unit: Unit) -> Reading:
    image, dpi, scale = _within_ocr_bounds(image, dpi, scale)
    reading = Reading(task.index, dpi=dpi)
    if task.ocr:
        try:
            recognised = ocr.recognize(image, languages=task.languages, dpi=max(1, round(dpi)))
        except InputError as error:
            raise InputError(f"{task.file.subject}: page {task.index + 1}: {error}") from None
        reading.text = recognised.text
        reading.confidence = recognised.confidence
        reading.rotation = recognised.rotation
        reading.skew = recognised.skew
        if task.words:
            reading.words = [
                Word(word.text, word.box.scaled(scale, unit), word.confidence) for word in recognised.words
            ]
    if task.codes:
        reading.codes = qr.read_codes(image, unit=unit, scale=scale)
    return reading


def _within_ocr_bounds(image: Image.Image, dpi: float, scale: float) -> tuple[Image.Image, float, float]:
    """A page longer than Tesseract can take (32,767 px a side: a 9-foot receipt roll at 300 dpi)
    is shrunk to fit rather than refused; positions are scaled back to the page's own units."""
    longest = max(image.size)
    if longest <= ocr.MAX_SIDE_PX:
        return image, dpi, scale
    factor = ocr.MAX_SIDE_PX / longest
    size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS), dpi * factor, scale / factor
