"""Character error rate of OCR on the corpus scans that have ground truth, per file; ``-s`` prints the
table (file, pages, CER, rotation) when the module ends.

Bounds come from measurements with tesserocr 5.5.4 and ``eng`` (CER of each page, whitespace
collapsed):

| files | measured | read without orientation / deskew | bound |
|---|---|---|---|
| docling_ocr_test*.pdf (one sentence; as given, 90, 180, 270) | 0.000 | 0.904 (90 and 180) | 0.05 |
| linn png, skew, rotated_skew, cardinal | 0.010 | 0.851 cardinal 180/270; skews 0.045, 0.143 | 0.03 |
| tesseract phototest turned right, tesseract.js testocr | 0.000 | - | 0.02 |
| tesseract.js simple-90/180/270, cosmic, escape_chars | 0.000 | simple-180: 's[r10e19s59 ]' | 0.10 |
| unlv_8087_054.3B, its 11 zones read one by one | 0.018 | 0.078 read as one page (reading order) | 0.04 |

The linn truth is itself OCR output (bullets read as '0'), so 1% is the floor there, and the bound
sits under the 4.5% of reading the skewed page without straightening it. Left out: the files without
truth, ocrmypdf_2400dpi.pdf and ocrmypdf_enormous.pdf (slow, no truth), ocrmypdf_jbig2.pdf (the linn
page again: a test of the PDF decoder, 0.010, not of OCR), tesseractjs_chinese.png (needs ``chi_tra``)
and the pytesseract images (their truth is only a phrase they contain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from PIL import Image

from conveyor.content import OfflineContext
from conveyor.extractors import ocr
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline
from tests.text_metrics import character_error_rate

DPI = 300
# tesseract-ocr/test testing/phototest.txt, which tesseract.js's TESTOCR_TEXT repeats.
PHOTOTEST = """This is a lot of 12 point text to test the
ocr code and see if it works on all types
of file format.

The quick brown dog jumped over the
lazy fox. The quick brown dog jumped
over the lazy fox. The quick brown dog
jumped over the lazy fox. The quick
brown dog jumped over the lazy fox."""
# The truths the manifest quotes from tesseract.js's tests/constants.mjs.
SIMPLE = "Tesseract.js"
COSMIC = "HellO World\nfrom beyond\nthe Cosmic Void"
ESCAPE_CHARS = '"Double Quotes"\nBack \\ Slash'


class PageText(NamedTuple):
    text: str
    rotation: int | None  # None when the reader does not say


def read_text(path: Path) -> list[PageText]:
    """The text of every page of a scan, as the product reads it: the ``document`` pipeline with
    OCR on every page (the scanned PDFs here have no text layer; ``always`` also reads the one that
    has a bad one)."""
    pipeline = get_pipeline("document")
    params = pipeline.validate_params({"ocr": "always", "codes": False, "dpi": DPI})
    result = pipeline.run(local_document(path), params, OfflineContext())
    pages = [record.data for record in result.records if record.kind == "page"]
    return [PageText(page["text"], page.get("rotation")) for page in pages]


def read_zones(image_path: Path, zone_path: Path) -> str:
    """UNLV pages: each zone of the ``.uzn`` file (x y w h type) read on its own and joined, the way
    the UNLV truth is written. Stays on ``recognize``: the pipeline reads whole pages only."""
    texts = []
    with Image.open(image_path) as image:
        for line in zone_path.read_text().splitlines():
            if line.strip():
                left, top, width, height = (int(value) for value in line.split()[:4])
                texts.append(ocr.recognize(image.crop((left, top, left + width, top + height))).text)
    return "\n".join(texts)


def _dpi(image: Image.Image) -> int:
    """The resolution the file states, else 300; Tesseract judges text sizes by it."""
    stated = image.info.get("dpi")
    return round(stated[0]) if stated and stated[0] > 1 else DPI


@dataclass(frozen=True)
class Case:
    file: str
    truth: Callable[[Path], str]
    max_cer: float
    rotations: tuple[int, ...] | None = None  # per page, when the file is known to be turned


def _truth_file(name: str) -> Callable[[Path], str]:
    return lambda corpus: (corpus / "ocr" / "truth" / name).read_text(encoding="utf-8")


def _text(value: str) -> Callable[[Path], str]:
    return lambda corpus: value


LINN = _truth_file("ocrmypdf_linn.txt")
CASES = [
    Case("scanned_pdf/docling_ocr_test.pdf", _truth_file("docling_ocr_test.md"), 0.05, (0,)),
    Case(
        "scanned_pdf/docling_ocr_test_rotated_90.pdf",
        _truth_file("docling_ocr_test_rotated_90.md"),
        0.05,
        (90,),
    ),
    Case(
        "scanned_pdf/docling_ocr_test_rotated_180.pdf",
        _truth_file("docling_ocr_test_rotated_180.md"),
        0.05,
        (180,),
    ),
    Case(
        "scanned_pdf/docling_ocr_test_rotated_270.pdf",
        _truth_file("docling_ocr_test_rotated_270.md"),
        0.05,
        (270,),
    ),
    Case("images/ocrmypdf_linn.png", LINN, 0.03, (0,)),
    Case("scanned_pdf/ocrmypdf_skew.pdf", LINN, 0.03),
    Case("scanned_pdf/ocrmypdf_rotated_skew.pdf", LINN, 0.03),
    Case("scanned_pdf/ocrmypdf_cardinal.pdf", LINN, 0.03, (0, 270, 180, 90)),
    Case("images/tesseract_phototest-rotated-R.png", _text(PHOTOTEST), 0.02, (270,)),
    Case("images/tesseractjs_testocr.png", _text(PHOTOTEST), 0.02, (0,)),
    # These three carry an EXIF orientation tag (6, 3, 8) that turns them upright, as every viewer
    # shows them: the pipeline honours it, so OCR finds them upright (rotation 0) and reads them.
    Case("images/tesseractjs_simple-90.jpg", _text(SIMPLE), 0.10, (0,)),
    Case("images/tesseractjs_simple-180.jpg", _text(SIMPLE), 0.10, (0,)),
    Case("images/tesseractjs_simple-270.jpg", _text(SIMPLE), 0.10, (0,)),
    Case("images/tesseractjs_cosmic.png", _text(COSMIC), 0.10),
    Case("images/tesseractjs_escape_chars.png", _text(ESCAPE_CHARS), 0.10),
]
ROWS: list[tuple[str, int, float, str]] = []


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    """Prints the rows of this module's tests when it ends (shown with ``-s``)."""
    yield
    width = max((len(row[0]) for row in ROWS), default=4)
    print(f"\n{'file':<{width}}  pages    CER  rotation")
    for file, pages, cer, rotations in ROWS:
        print(f"{file:<{width}}  {pages:>5}  {cer:5.3f}  {rotations}")


@pytest.mark.parametrize("case", CASES, ids=[Path(case.file).name for case in CASES])
def test_character_error_rate(corpus_dir: Path, case: Case) -> None:
    path = corpus_dir / "ocr" / case.file
    truth = case.truth(corpus_dir)
    pages = read_text(path)
    rates = [character_error_rate(page.text, truth) for page in pages]
    rotations = [page.rotation for page in pages]
    ROWS.append((path.name, len(pages), max(rates), ",".join(str(r) for r in rotations)))
    assert max(rates) <= case.max_cer, list(zip(rates, rotations, strict=True))
    if case.rotations is not None:
        assert tuple(rotations) == case.rotations


def test_unlv_zones_character_error_rate(corpus_dir: Path) -> None:
    ocr_dir = corpus_dir / "ocr"
    read = read_zones(ocr_dir / "images" / "unlv_8087_054.3B.tif", ocr_dir / "truth" / "unlv_8087_054.3B.uzn")
    rate = character_error_rate(
        read, (ocr_dir / "truth" / "unlv_8087_054.3B.txt").read_text(encoding="latin-1")
    )
    ROWS.append(("unlv_8087_054.3B.tif (11 zones)", 1, rate, "-"))
    assert rate <= 0.04


def test_picture_without_text_reads_as_nothing(corpus_dir: Path) -> None:
    """ocrmypdf's lichtenstein.pdf is a photograph: no words, and no turn taken on a guess."""
    [page] = read_text(corpus_dir / "ocr" / "scanned_pdf" / "ocrmypdf_lichtenstein.pdf")
    ROWS.append(("ocrmypdf_lichtenstein.pdf (no text)", 1, 0.0, str(page.rotation)))
    assert len(page.text) < 20
    assert page.rotation == 0
