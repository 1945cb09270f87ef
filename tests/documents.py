"""Documents generated in code for the tests and benchmarks: PDFs with and without a text layer,
text rendered as a scan, QR codes. Nothing here depends on the corpus or on system fonts."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import segno
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

SCAN_DPI = 300
PANGRAM = "The quick brown fox jumps over the lazy dog"
PARAGRAPH = (
    "Conveyor reads every page of the documents it receives.",
    "Invoice number 4711 was paid on the third of March.",
    "Delivery notes arrive as photos and as scanned letters.",
    "Each line of this page is printed in a plain typeface.",
)


def text_image(
    lines: Sequence[str] = PARAGRAPH, *, dpi: int = SCAN_DPI, width_in: float = 8.0
) -> Image.Image:
    """Black text on white, about 12 pt at ``dpi``, like a clean office scan."""
    font = ImageFont.load_default(size=round(dpi / 6))
    line_height = round(dpi / 3.5)
    height = line_height * (len(lines) + 2)
    image = Image.new("L", (round(width_in * dpi), height), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines, 1):
        draw.text((dpi // 3, line_height * number), line, fill=0, font=font)
    return image


def qr_image(text: str, *, scale: int = 8, border: int = 4) -> Image.Image:
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=scale, border=border)
    buffer.seek(0)
    return Image.open(buffer).convert("L")


def png_bytes(image: Image.Image, *, dpi: int = SCAN_DPI) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


def tiff_bytes(frames: Sequence[Image.Image], *, dpi: int = SCAN_DPI) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="TIFF",
        save_all=True,
        append_images=list(frames[1:]),
        dpi=(dpi, dpi),
        compression="tiff_lzw",
    )
    return buffer.getvalue()


def text_pdf(pages: Sequence[Sequence[str]], *, qr_on_page: dict[int, str] | None = None) -> bytes:
    """A PDF with a real text layer; ``qr_on_page`` puts a QR image on those pages (1-based)."""
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_font("helvetica", size=12)
    for number, lines in enumerate(pages, 1):
        pdf.add_page()
        for index, line in enumerate(lines):
            pdf.text(72, 96 + index * 18, line)
        code = (qr_on_page or {}).get(number)
        if code is not None:
            pdf.image(qr_image(code), x=400, y=600, w=144, h=144)
    return bytes(pdf.output())


def scanned_pdf(images: Sequence[Image.Image], *, dpi: int = SCAN_DPI) -> bytes:
    """A PDF whose pages are only images (no text layer), each page sized to its image at ``dpi``."""
    pdf = FPDF(unit="pt")
    for image in images:
        width, height = image.width * 72 / dpi, image.height * 72 / dpi
        pdf.add_page(format=(width, height))
        pdf.image(image, x=0, y=0, w=width, h=height)
    return bytes(pdf.output())


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
