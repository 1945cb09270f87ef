"""The PDF extractor on PDFs generated here: text layer and word boxes, scans told apart from text
pages, encryption, broken files, rendering within the pixel limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from conveyor.content import Limits
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors import pdf
from tests.documents import PANGRAM, scanned_pdf, text_image, text_pdf, write

LIMITS = Limits()


def read(
    path: Path, *, words: bool = False, password: str | None = None, limits: Limits = LIMITS
) -> tuple[int, list[pdf.TextLayerPage]]:
    return pdf.read_text_layer(str(path), password, path.name, limits, 0, 100, words)


def test_text_layer_per_page_with_word_boxes(tmp_path: Path) -> None:
    path = write(tmp_path / "two.pdf", text_pdf([[PANGRAM, "second line"], ["page two"]]))
    total, pages = read(path, words=True)
    assert total == 2
    first, second = pages
    assert first.page.text.splitlines() == [PANGRAM, "second line"]
    assert first.page.source == "text-layer"
    assert (first.page.number, second.page.number) == (1, 2)
    assert not first.needs_ocr and not first.has_graphics
    assert [word.text for word in first.page.words][:3] == ["The", "quick", "brown"]
    the, quick = first.page.words[:2]
    # fpdf2 puts the baseline of the first line at y=96 pt from the top; glyphs sit just above it.
    assert 84 < the.box.top < the.box.bottom <= 99
    assert the.box.left == pytest.approx(72, abs=1.5)
    assert the.box.right < quick.box.left
    assert first.page.width == pytest.approx(595.28, abs=0.1)


def test_a_scanned_page_needs_ocr_and_a_page_with_a_picture_has_graphics(tmp_path: Path) -> None:
    scan = write(tmp_path / "scan.pdf", scanned_pdf([text_image()]))
    (_, [page]) = read(scan)
    assert page.needs_ocr and page.has_graphics
    assert page.page.source == "none" and page.page.text.strip() == ""
    mixed = write(tmp_path / "mixed.pdf", text_pdf([[PANGRAM]], qr_on_page={1: "hello"}))
    (_, [page]) = read(mixed)
    assert page.has_graphics and not page.needs_ocr


def test_encrypted_pdf_needs_its_password(tmp_path: Path) -> None:
    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.text(20, 20, "secret text")
    document.set_encryption(owner_password="owner", user_password="open-sesame")
    path = write(tmp_path / "locked.pdf", bytes(document.output()))
    with pytest.raises(pdf.EncryptedPdf, match=r"locked\.pdf: the PDF is encrypted; .*'password'"):
        read(path)
    with pytest.raises(pdf.EncryptedPdf, match="the password given does not open"):
        read(path, password="wrong")
    (_, [page]) = read(path, password="open-sesame")
    assert "secret text" in page.page.text


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.7\n%%EOF\n",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer <<>>\n",
        b"\x00" * 100,
    ],
)
def test_broken_pdfs_are_input_errors_naming_the_file(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "broken.pdf", data)
    with pytest.raises(InputError, match=r"broken\.pdf: "):
        read(path)


def test_page_count_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "long.pdf", text_pdf([["x"]] * 5))
    with pytest.raises(LimitExceeded, match=r"long\.pdf: pages is 5, over the limit of 3"):
        read(path, limits=Limits(pages=3))


def test_rendering_stays_within_the_pixel_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "a4.pdf", text_pdf([[PANGRAM]]))
    image, dpi = pdf.render_page(str(path), None, "a4.pdf", LIMITS, 0, 300)
    assert dpi == 300
    assert image.size[0] == pytest.approx(2480, abs=1) and image.size[1] == pytest.approx(3508, abs=1)
    assert image.mode == "L"
    small, dpi = pdf.render_page(str(path), None, "a4.pdf", Limits(image_pixels=1_000_000), 0, 300)
    assert small.width * small.height <= 1_000_000
    assert 95 < dpi < 102  # sqrt(1e6 px / (8.27 in x 11.69 in))
