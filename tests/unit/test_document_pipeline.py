"""The ``document`` pipeline end to end in-process, on files generated here: text PDFs, scans,
images with QR codes, multi-page TIFFs, hostile input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.content import Limits, OfflineContext, PipelineResult
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline
from tests.documents import (
    PANGRAM,
    PARAGRAPH,
    png_bytes,
    qr_image,
    scanned_pdf,
    text_image,
    text_pdf,
    tiff_bytes,
    write,
)

PIPELINE = get_pipeline("document")


def extract(
    path: Path, params: dict[str, Any] | None = None, limits: Limits | None = None
) -> tuple[PipelineResult, list[dict[str, Any]]]:
    result = run_pipeline(
        PIPELINE, local_document(path), PIPELINE.validate_params(params or {}), OfflineContext(limits)
    )
    records = [record.as_json() for record in result.records]
    return result, records


def kinds(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [record["data"] for record in records if record["kind"] == kind]


def words(text: str) -> list[str]:
    return text.split()


def test_text_pdf_pages_come_from_the_text_layer_and_its_qr_code_is_found(tmp_path: Path) -> None:
    path = write(
        tmp_path / "letter.pdf", text_pdf([[PANGRAM], ["second page"], ["third"]], qr_on_page={2: "INV-4711"})
    )
    result, records = extract(path)
    pages = kinds(records, "page")
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert pages[0]["text"].strip() == PANGRAM
    assert {page["source"] for page in pages} == {"text-layer"}
    [code] = kinds(records, "code")
    assert (code["page"], code["text"], code["format"]) == (2, "INV-4711", "QRCode")
    # The QR image was placed at x=400..544, y=600..744 pt (a 4-module quiet zone inside it).
    position = code["position"]
    assert position["unit"] == "pt"
    assert 400 <= position["left"] < position["right"] <= 544
    assert 600 <= position["top"] < position["bottom"] <= 744
    assert [record["key"] for record in records if record["kind"] == "code"] == ["2:1"]
    assert result.summary["pages"] == 3
    assert result.summary["by_source"] == {"text-layer": 3, "ocr": 0, "none": 0}
    assert result.summary["codes"] == 1
    assert not result.review.required


def test_scanned_pdf_pages_are_read_by_ocr(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.pdf", scanned_pdf([text_image(), text_image([PANGRAM])]))
    result, records = extract(path)
    first, second = kinds(records, "page")
    assert first["source"] == second["source"] == "ocr"
    assert words(first["text"]) == words(" ".join(PARAGRAPH))
    assert words(second["text"]) == words(PANGRAM)
    assert first["confidence"] > 80
    assert result.summary["by_source"]["ocr"] == 2
    assert result.summary["ocr_confidence_mean"] > 80


def test_ocr_never_leaves_a_scan_without_text_and_always_reads_text_pages_too(tmp_path: Path) -> None:
    scan = write(tmp_path / "scan.pdf", scanned_pdf([text_image([PANGRAM])]))
    _, records = extract(scan, {"ocr": "never", "codes": False})
    [page] = kinds(records, "page")
    assert (page["source"], page["text"].strip()) == ("none", "")
    typed = write(tmp_path / "typed.pdf", text_pdf([[PANGRAM]]))
    _, records = extract(typed, {"ocr": "always"})
    [page] = kinds(records, "page")
    assert page["source"] == "ocr" and words(page["text"]) == words(PANGRAM)


def test_png_with_text_and_two_codes(tmp_path: Path) -> None:
    image = text_image([PANGRAM])
    canvas = image.resize((image.width, image.height + 400))
    canvas.paste(255, (0, 0, canvas.width, canvas.height))
    canvas.paste(image, (0, 0))
    canvas.paste(qr_image("first"), (100, image.height + 20))
    canvas.paste(qr_image("second"), (1200, image.height + 20))
    path = write(tmp_path / "photo.png", png_bytes(canvas))
    _result, records = extract(path)
    [page] = kinds(records, "page")
    assert page["source"] == "ocr" and PANGRAM in " ".join(words(page["text"]))
    assert page["unit"] == "px"
    codes = sorted(kinds(records, "code"), key=lambda code: code["position"]["left"])
    assert [code["text"] for code in codes] == ["first", "second"]
    assert 100 <= codes[0]["position"]["left"] < 400
    assert 1200 <= codes[1]["position"]["left"] < 1500


def test_multipage_tiff_is_one_page_per_frame(tmp_path: Path) -> None:
    frames = [text_image([f"Page number {n} of three"]) for n in ("one", "two", "three")]
    path = write(tmp_path / "fax.tif", tiff_bytes(frames))
    result, records = extract(path, {"codes": False})
    pages = kinds(records, "page")
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert [words(page["text"])[2] for page in pages] == ["one", "two", "three"]
    assert result.summary["pages"] == 3


def test_word_boxes_on_request(tmp_path: Path) -> None:
    path = write(tmp_path / "typed.pdf", text_pdf([[PANGRAM]]))
    _, records = extract(path, {"words": True})
    [page] = kinds(records, "page")
    assert [word["text"] for word in page["words"]] == words(PANGRAM)
    assert page["words"][0]["box"]["unit"] == "pt"
    _, records = extract(path)
    assert "words" not in kinds(records, "page")[0]


def test_low_ocr_confidence_asks_for_review(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.png", png_bytes(text_image([PANGRAM])))
    result, _ = extract(path, {"min_confidence": 100, "codes": False})
    assert result.review.required and result.review.reasons == ["low_ocr_confidence"]
    [finding] = result.findings
    assert (finding.rule, finding.severity, finding.ref) == ("low_ocr_confidence", "warning", "page:1")
    assert "under the 100 asked for" in finding.message


def test_a_misnamed_file_gets_a_finding_and_is_read_by_its_content(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.pdf", png_bytes(text_image([PANGRAM])))
    result, records = extract(path, {"codes": False})
    assert kinds(records, "page")[0]["source"] == "ocr"
    mismatch = [finding for finding in result.findings if finding.rule == "extension_mismatch"]
    assert len(mismatch) == 1 and mismatch[0].severity == "warning"
    assert "scan.pdf" in mismatch[0].message


def test_unsupported_content_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path / "data.json", b'{"not": "a document"}')
    with pytest.raises(InputError, match=r"data\.json: the document pipeline reads PDFs and images"):
        extract(path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ocr": "sometimes"}, "param 'ocr'"),
        ({"dpi": 5000}, "param 'dpi'"),
        ({"languages": "eng; rm -rf /"}, "param 'languages'"),
        ({"colour": True}, "param 'colour'"),
    ],
)
def test_bad_params_are_named(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        PIPELINE.validate_params(params)


def test_unknown_language_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "scan.png", png_bytes(text_image([PANGRAM])))
    with pytest.raises(InputError, match="xyz"):
        extract(path, {"languages": "xyz"})


def test_limits_are_named_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path / "long.pdf", text_pdf([["x"]] * 4))
    with pytest.raises(LimitExceeded, match=r"long\.pdf: pages is 4, over the limit of 2"):
        extract(path, limits=Limits(pages=2))
    with pytest.raises(LimitExceeded, match="file_bytes"):
        extract(path, limits=Limits(file_bytes=100))
    big = write(tmp_path / "big.png", png_bytes(text_image([PANGRAM])))
    with pytest.raises(LimitExceeded, match=r"big\.png: image_pixels"):
        extract(big, limits=Limits(image_pixels=10_000))


def test_corrupt_files_are_input_errors(tmp_path: Path) -> None:
    truncated = write(tmp_path / "cut.png", png_bytes(text_image([PANGRAM]))[:3000])
    with pytest.raises(InputError, match=r"cut\.png"):
        extract(truncated)
    broken = write(tmp_path / "broken.pdf", b"%PDF-1.7\n" + b"garbage " * 100)
    with pytest.raises(InputError, match=r"broken\.pdf: not a readable PDF"):
        extract(broken)


def test_a_page_longer_than_tesseract_takes_is_shrunk_and_read(tmp_path: Path) -> None:
    strip = text_image([PANGRAM + " " + PANGRAM], width_in=120)  # 36,000 px wide at 300 dpi
    assert strip.width > 32767
    path = write(tmp_path / "receipt.png", png_bytes(strip))
    _, records = extract(path, {"codes": False})
    [page] = kinds(records, "page")
    assert page["source"] == "ocr"
    assert words(page["text"]) == words(PANGRAM + " " + PANGRAM)
    assert page["width"] == strip.width, "the page keeps its own size; only OCR saw it smaller"


def test_a_truncated_multipage_tiff_is_an_input_error(tmp_path: Path) -> None:
    data = tiff_bytes([text_image([f"page {n}"]) for n in range(3)])
    path = write(tmp_path / "fax.tif", data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match=r"fax\.tif"):
        extract(path, {"codes": False})


def test_a_text_layer_is_kept_when_ocr_finds_nothing(tmp_path: Path) -> None:
    """An invisible caption over a blank picture: the page looks like a scan, OCR reads nothing, the
    text layer stays."""
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF(unit="pt", format="A4")
    pdf.add_page()
    pdf.image(Image.new("L", (600, 800), 255), x=0, y=0, w=595, h=842)
    pdf.set_font("helvetica", size=10)
    pdf.text_mode = "INVISIBLE"
    pdf.text(40, 820, "Fig. 1")
    path = write(tmp_path / "figure.pdf", bytes(pdf.output()))
    _, records = extract(path, {"codes": False})
    [page] = kinds(records, "page")
    assert (page["source"], page["text"].strip()) == ("text-layer", "Fig. 1")
