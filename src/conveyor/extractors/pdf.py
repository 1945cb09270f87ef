"""PDF pages with pypdfium2: the text layer with word boxes, which pages need OCR, page rendering.

Every function here opens the file itself and is safe to call in a parser process: a PDF is never
passed between processes, only its path, and each process keeps pdfium to itself (pdfium is not
thread-safe, and one process per parse keeps a hostile file's damage contained).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from conveyor.content import Box, Limits, Page, PageSource, Word
from conveyor.errors import InputError, LimitExceeded

POINTS_PER_INCH = 72
# A page whose text layer has fewer characters than this, and that is mostly one image, is a scan
# with a stray caption or page number: it is read by OCR.
SCAN_TEXT_CHARS = 20
SCAN_IMAGE_SHARE = 0.5
_PDFIUM_PASSWORD_ERROR = 4
_GRAPHICS = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_SHADING)


class EncryptedPdf(InputError):
    """The PDF is encrypted and no (or a wrong) password was given."""

    code = "encrypted_pdf"


@dataclass(slots=True)
class TextLayerPage:
    """One page as its text layer shows it, with what the caller needs to decide on rendering."""

    page: Page
    needs_ocr: bool
    has_graphics: bool


@contextmanager
def open_pdf(path: str, password: str | None, subject: str) -> Iterator[pdfium.PdfDocument]:
    """The document, with pdfium's load errors turned into InputErrors that name the file."""
    try:
        document = pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as error:
        if getattr(error, "err_code", None) == _PDFIUM_PASSWORD_ERROR:
            if password:
                raise EncryptedPdf(f"{subject}: the password given does not open this PDF") from None
            raise EncryptedPdf(
                f"{subject}: the PDF is encrypted; submit it again with the param 'password'"
            ) from None
        raise InputError(f"{subject}: not a readable PDF ({_reason(error)})") from None
    try:
        yield document
    finally:
        document.close()


def _reason(error: Exception) -> str:
    """pdfium's own words for the failure; it says "Success" for some failures, which helps nobody."""
    text = str(error)
    start = text.find("(PDFium: ")
    reason = text[start + 9 : -2] if start >= 0 and text.endswith(").") else text
    return "pdfium cannot parse its structure" if reason in {"", "Success"} else reason


def read_text_layer(
    path: str,
    password: str | None,
    subject: str,
    limits: Limits,
    first: int,
    count: int,
    words: bool,
    graphics: bool = True,
) -> tuple[int, list[TextLayerPage]]:
    """The page count and pages ``first`` .. ``first + count - 1`` (0-based) of the text layer.

    ``graphics``: look at every page's objects for pictures and drawings (where codes may be). Without
    it only pages with little text are looked at, to tell scans from text pages.
    """
    with open_pdf(path, password, subject) as document:
        total = len(document)
        if total > limits.pages:
            raise LimitExceeded("pages", total, limits.pages, subject)
        if total == 0:
            raise InputError(f"{subject}: the PDF has no pages")
        pages = [
            _text_layer_page(document, index, subject, words, graphics)
            for index in range(first, min(first + count, total))
        ]
        return total, pages


def _text_layer_page(
    document: pdfium.PdfDocument, index: int, subject: str, words: bool, look: bool
) -> TextLayerPage:
    page = _page(document, index, subject)
    try:
        width, height = page.get_size()
        textpage = page.get_textpage()
        try:
            text = _clean(textpage.get_text_bounded())
            boxes = _words(textpage, height) if words else []
        finally:
            textpage.close()
        graphics, image_share = False, 0.0
        if look or len(text.strip()) < SCAN_TEXT_CHARS:
            graphics, image_share = _graphics(page, width * height)
    except pdfium.PdfiumError as error:
        raise InputError(f"{subject}: page {index + 1} cannot be read ({_reason(error)})") from None
    finally:
        page.close()
    stripped = len(text.strip())
    needs_ocr = stripped == 0 or (stripped < SCAN_TEXT_CHARS and image_share >= SCAN_IMAGE_SHARE)
    source: PageSource = "text-layer" if stripped else "none"
    return TextLayerPage(
        page=Page(index + 1, width, height, "pt", text=text, source=source, words=boxes),
        needs_ocr=needs_ocr,
        has_graphics=graphics,
    )


def _page(document: pdfium.PdfDocument, index: int, subject: str) -> pdfium.PdfPage:
    try:
        return document[index]
    except pdfium.PdfiumError as error:
        raise InputError(f"{subject}: page {index + 1} cannot be loaded ({_reason(error)})") from None


def _clean(text: str) -> str:
    """pdfium ends lines with CRLF and pads with NULs on some files; callers want plain newlines. A
    hyphen that ended a line comes back as U+FFFE (or 0x02) with the lines joined: it is put back
    as the page shows it, a hyphen and a line break (``HOLE-`` / ``123`` is not ``HOLE123``)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.replace("\ufffe", "-\n").replace("\x02", "-\n")


def _words(textpage: pdfium.PdfTextPage, page_height: float) -> list[Word]:
    """Words as runs of non-space characters, each boxed by the union of its characters' boxes."""
    found: list[Word] = []
    letters: list[str] = []
    left = top = math.inf
    right = bottom = -math.inf
    # Character by character through pdfium's own index: the text of a range may differ in length
    # from the character count (pypdfium2 says so), which would shift every box after the first gap.
    raw = textpage.raw
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(raw, index)
        # Characters outside the BMP come as two UTF-16 halves; a lone half would not encode.
        char = "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)
        if char.isspace() or char in "\x00\ufffe\uffff":
            if letters:
                found.append(Word("".join(letters), Box(left, top, right, bottom)))
                letters = []
                left = top = math.inf
                right = bottom = -math.inf
            continue
        x0, y0, x1, y1 = textpage.get_charbox(index)
        letters.append(char)
        left, right = min(left, x0), max(right, x1)
        top, bottom = min(top, page_height - y1), max(bottom, page_height - y0)
    if letters:
        found.append(Word("".join(letters), Box(left, top, right, bottom)))
    return found


def _graphics(page: pdfium.PdfPage, area: float) -> tuple[bool, float]:
    """Whether the page draws anything but text, and the largest share of it one image covers.

    Walks pdfium's object list through the raw API: pypdfium2's object wrappers cost a quarter of
    the whole text extraction on a text-only page, where every object must be looked at.
    """
    graphics = False
    share = 0.0
    for item in _objects(page.raw, pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject, depth=2):
        kind = pdfium_c.FPDFPageObj_GetType(item)
        if kind not in _GRAPHICS:
            continue
        graphics = True
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE and area > 0:
            share = max(share, _covered(item) / area)
            if share >= SCAN_IMAGE_SHARE:
                break
    return graphics, share


def _objects(parent: Any, count: Any, get: Any, depth: int) -> Iterator[Any]:
    for index in range(count(parent)):
        item = get(parent, index)
        if depth > 0 and pdfium_c.FPDFPageObj_GetType(item) == pdfium_c.FPDF_PAGEOBJ_FORM:
            yield from _objects(
                item, pdfium_c.FPDFFormObj_CountObjects, pdfium_c.FPDFFormObj_GetObject, depth - 1
            )
        else:
            yield item


def _covered(item: Any) -> float:
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not pdfium_c.FPDFPageObj_GetBounds(item, left, bottom, right, top):
        return 0.0
    return abs(right.value - left.value) * abs(top.value - bottom.value)


def render_page(
    path: str, password: str | None, subject: str, limits: Limits, index: int, dpi: int
) -> tuple[Image.Image, float]:
    """Page ``index`` as a grayscale image and the dpi it was drawn at.

    Pages so large that ``dpi`` would pass the pixel limit (posters, a 200-inch page) are drawn at
    the highest resolution that fits instead of failing: the text is usually still legible.
    """
    with open_pdf(path, password, subject) as document:
        page = _page(document, index, subject)
        try:
            width, height = page.get_size()
            dpi_used = float(dpi)
            pixels = (width / POINTS_PER_INCH * dpi) * (height / POINTS_PER_INCH * dpi)
            if pixels > limits.image_pixels:
                # pdfium rounds each side up to whole pixels: stay a little under.
                dpi_used = dpi * math.sqrt(limits.image_pixels / pixels) * 0.995
            bitmap = page.render(scale=dpi_used / POINTS_PER_INCH, grayscale=True)
            # to_pil shares the bitmap's buffer; the copy lets pdfium free it now.
            return bitmap.to_pil().copy(), dpi_used
        except pdfium.PdfiumError as error:
            raise InputError(f"{subject}: page {index + 1} cannot be drawn ({_reason(error)})") from None
        finally:
            page.close()
