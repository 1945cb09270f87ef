"""Piping drawings and target lists generated in code for the codescan tests and the batch benchmark.

A drawing is a page with a title block, a few drawn pipes and one note line per code ("Drill HOLE-123
through flange."). The filler words carry no digits, so the default pattern finds exactly the codes
written and nothing else. Nothing here depends on the corpus or on system fonts: text PDFs use the
PDF core font Helvetica, so codes are written in Windows-1252 (an en or em dash can be, a minus sign
U+2212 cannot), and scans are those pages drawn by pdfium and stored as images alone.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence

import pypdfium2 as pdfium
from fpdf import FPDF

from tests.sheets import csv_bytes, xlsx_bytes

# Points. A scan is written bigger and drawn at 200 dpi: Tesseract reads a 20 pt Helvetica letter
# (about 40 px high) without a mistake, and a small page keeps OCR near a second.
TEXT_FONT_PT = 11
SCAN_FONT_PT = 20
SCAN_DPI = 200
_LINE_FACTOR = 1.6
_MARGIN = 48
_FILLER = (
    "General arrangement, see notes.",
    "All dimensions in millimetres unless noted.",
    "Weld and test as per the piping specification.",
)
# A code is split after its last dash or space, else where its letters meet its digits.
_SPLIT_AT = re.compile(r"^(.*[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d])(.+)$|^(\D+)(\d.*)$", re.DOTALL)


def drawing_pdf(
    codes: Sequence[str],
    *,
    title: str = "Piping drawing",
    split: Sequence[str] = (),
    scanned: bool = False,
    pages: int = 1,
) -> bytes:
    """A drawing of ``pages`` pages; code ``i`` is written on page ``i % pages + 1``, one note line
    per code. A code in ``split`` ends its line at the break ("Drill HOLE-" / "123 through flange.").

    ``scanned``: every page is drawn to a grayscale image and the PDF holds only the images (no text
    layer), in a large clear font. Tesseract reads codes in capitals with a hyphen or a space back
    exactly ("HOLE-0042", "HOLE 77"); it reads a zero after "hole-" in lower case, or after an en
    dash, as the letter O now and then, an OCR confusion that codescan reports as a fuzzy match.
    """
    if pages < 1:
        raise ValueError("a drawing has at least one page")
    size_pt = SCAN_FONT_PT if scanned else TEXT_FONT_PT
    on_page: list[list[str]] = [[] for _ in range(pages)]
    for index, code in enumerate(codes):
        on_page[index % pages].extend(_note_lines(code, is_split=code in split))
    text_pdf = _text_drawing(title, on_page, size_pt)
    return _as_scan(text_pdf) if scanned else text_pdf


def _note_lines(code: str, *, is_split: bool) -> list[str]:
    if not is_split:
        return [f"Drill {code} through flange."]
    match = _SPLIT_AT.match(code)
    if match is None:
        head, tail = code[: len(code) // 2], code[len(code) // 2 :]
    else:
        head, tail = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return [f"Drill {head.rstrip()}", f"{tail} through flange."]


def _text_drawing(title: str, on_page: Sequence[Sequence[str]], size_pt: float) -> bytes:
    line_pt = size_pt * _LINE_FACTOR
    lines = max(len(notes) for notes in on_page) + len(_FILLER) + 3
    width = 842.0
    height = max(300.0, 2 * _MARGIN + lines * line_pt)
    pdf = FPDF(unit="pt", format=(width, height))
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_auto_page_break(False)
    for number, notes in enumerate(on_page, 1):
        pdf.add_page()
        pdf.set_line_width(1.5)
        pdf.rect(_MARGIN / 2, _MARGIN / 2, width - _MARGIN, height - _MARGIN)
        # Two pipes and a valve, right of the notes (the notes run to about 520 pt at 20 pt).
        pdf.line(width * 0.72, _MARGIN, width * 0.72, height - _MARGIN)
        pdf.line(width * 0.72, height / 2, width - _MARGIN, height / 2)
        pdf.circle(width * 0.72, height / 2, 12)
        pdf.set_font("helvetica", style="B", size=size_pt)
        page_title = title if len(on_page) == 1 else f"{title}, sheet {_sheet_letters(number)}"
        pdf.text(_MARGIN, _MARGIN + line_pt, page_title)
        pdf.set_font("helvetica", size=size_pt)
        for row, line in enumerate([*_FILLER, *notes], 3):
            pdf.text(_MARGIN, _MARGIN + row * line_pt, line)
    return bytes(pdf.output())


def _sheet_letters(number: int) -> str:
    """Sheets lettered A, B, ..., Z, AA: a title "sheet 2" would itself be a code to the default
    pattern."""
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _as_scan(text_pdf: bytes) -> bytes:
    source = pdfium.PdfDocument(text_pdf)
    try:
        pdf = FPDF(unit="pt")
        for page in source:
            width, height = page.get_size()
            # to_pil shares pdfium's buffer; the copy outlives the page.
            image = page.render(scale=SCAN_DPI / 72, grayscale=True).to_pil().copy()
            pdf.add_page(format=(width, height))
            pdf.image(image, x=0, y=0, w=width, h=height)
            page.close()
        return bytes(pdf.output())
    finally:
        source.close()


def corrupt_pdf() -> bytes:
    """Sniffed as a PDF (it starts with the magic ``%PDF-``) but has no body pdfium can parse."""
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf\n"


def targets_xlsx(targets: Sequence[str], *, header: str = "Hole code") -> bytes:
    """One sheet: a description column first, the targets in column B under ``header``."""
    rows: list[list[object]] = [["Description", header]]
    rows += [[f"Item {index}", target] for index, target in enumerate(targets, 1)]
    return xlsx_bytes({"Targets": rows})


def targets_csv(targets: Sequence[str], *, header: str = "Hole code") -> bytes:
    """Like ``targets_xlsx``, as UTF-8 CSV."""
    rows: list[list[object]] = [["Description", header]]
    rows += [[f"Item {index}", target] for index, target in enumerate(targets, 1)]
    return csv_bytes(rows)


def zipped(members: dict[str, bytes]) -> bytes:
    """A zip of ``members`` (name -> bytes), names as given, even unsafe ones (``../x``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
