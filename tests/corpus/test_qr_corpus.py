"""The corpus's qr/ set: our decoding reads at least every image a plain zxing-cpp call reads, every
text it reads is the expected one, negatives give nothing, and the Swiss QR-bill PDFs read once drawn.

Expected files are compared exactly, as bytes decoded from UTF-8: their trailing line ends belong to
the payload (qrcode-3_18's code ends in "\\r\\n", qrcode-5_16's in "\\n"; the others end without one),
and ``*.result.txt`` files hold zxing's metadata, not text. Run with ``-s`` for a per-file table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image

from conveyor.content import OfflineContext
from conveyor.extractors.qr import read_codes
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline

pytestmark = pytest.mark.corpus

EXPECTED_FILE = re.compile(r"expected/[^ ;()]+\.txt")
DERIVED_SEPARATOR = "\n\n=====\n\n"
# qrcode-2_16 is a "double QR": a large code printed around the small one the sample expects.
ALSO_ON_IMAGE = {"images/qrcode-2_16.webp": ("[外側QRコード]\r\n \r\n*ﾀﾞﾌﾞﾙQR*\r\nhttp://d-qr.net/ex/",)}
# HARD images (the plain call reads nothing) that the retries read; the other five HARD ones are codes
# on crumpled cloth that no pass reads.
RECOVERED = {
    "images/qrcode-2_12.webp",
    "images/qrcode-2_13.webp",
    "images/qrcode-2_28.webp",
    "images/qrcode-4_09.webp",
    "images/qrcode-4_14.webp",
}
RENDER_DPI = (200, 300)
# The QR-bill standard prints its code 46 mm square, 67 mm from the page's left edge.
SWISS_QR_SIDE_PT = 46 / 25.4 * 72
SWISS_QR_LEFT_PT = 67 / 25.4 * 72


def _texts_by_pipeline(path: Path) -> list[str]:
    document = local_document(path)
    pipeline = get_pipeline("document")
    result = pipeline.run(document, pipeline.validate_params({"ocr": "never"}), OfflineContext())
    return [record.data["text"] for record in result.records if record.kind == "code"]


def decoded_texts(path: Path) -> list[str]:
    """What the `document` pipeline decodes (the issue measures the pipeline, not the extractor)."""
    return _texts_by_pipeline(path)


def plain_texts(path: Path) -> list[str]:
    """The baseline: one zxing-cpp call with its defaults."""
    with Image.open(path) as image:
        return [result.text for result in zxingcpp.read_barcodes(image)]


@dataclass(frozen=True, slots=True)
class Row:
    file: str
    expected: tuple[str, ...]  # every text that must be read; empty for a negative
    note: str

    @property
    def is_hard(self) -> bool:
        return "HARD:" in self.note

    @property
    def is_structured_append(self) -> bool:
        return "structured-append" in self.note

    def is_decoded(self, texts: list[str]) -> bool:
        if self.is_structured_append:  # one symbol of several: its text is a piece of the message
            return len(texts) == 1 and texts[0] != "" and texts[0] in self.expected[0]
        return all(text in texts for text in self.expected)

    def unexpected(self, texts: list[str]) -> list[str]:
        if self.is_structured_append:
            return [text for text in texts if text not in self.expected[0]]
        allowed = (*self.expected, *ALSO_ON_IMAGE.get(self.file, ()))
        return [text for text in texts if text not in allowed]


def _expected_texts(folder: Path, note: str) -> tuple[str, ...]:
    """The texts of the row's first expected file; none for a negative, or where that file is not in
    the corpus (two of the QR-bill PDFs)."""
    names = [name for name in EXPECTED_FILE.findall(note) if not name.endswith(".result.txt")]
    if not names or not (folder / names[0]).is_file():
        return ()
    text = (folder / names[0]).read_bytes().decode("utf-8")
    return tuple(text.split(DERIVED_SEPARATOR)) if ".DERIVED." in names[0] else (text,)


@pytest.fixture(scope="module")
def qr_corpus(corpus_dir: Path) -> tuple[Path, list[Row]]:
    """The qr/ folder and its MANIFEST rows for images, negatives and PDFs."""
    folder = corpus_dir / "qr"
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip(f"no QR corpus manifest at {manifest}")
    rows = []
    for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
        fields = line.split("\t")
        if fields[0].startswith(("images/", "negatives/", "pdf/")):
            note = fields[5] if len(fields) > 5 else ""
            rows.append(Row(fields[0], _expected_texts(folder, note), note))
    return folder, rows


def _show(line: list[str]) -> None:
    print(f"{line[0]:<72} {line[1]:<34} {line[2]:<8} {line[3]:<8}")


def _summary(row: Row) -> str:
    texts = ", ".join(repr(text[:12]) for text in row.expected)
    return ("HARD " if row.is_hard else "") + (texts if len(texts) < 29 else texts[:26] + "...")


def test_decoding_reads_what_a_plain_call_reads_and_more_and_only_expected_texts(
    qr_corpus: tuple[Path, list[Row]],
) -> None:
    folder, rows = qr_corpus
    images = [row for row in rows if row.file.startswith("images/")]
    assert len(images) >= 100
    assert [row.file for row in images if not row.expected] == []
    plain_decoded: set[str] = set()
    ours_decoded: set[str] = set()
    wrong: list[tuple[str, str]] = []
    print()
    _show(["file", "expected", "plain", "ours"])
    for row in images:
        plain, ours = plain_texts(folder / row.file), decoded_texts(folder / row.file)
        if row.is_decoded(plain):
            plain_decoded.add(row.file)
        if row.is_decoded(ours):
            ours_decoded.add(row.file)
        wrong.extend((row.file, text) for text in row.unexpected(ours))
        marks = ["ok" if row.is_decoded(texts) else f"MISS({len(texts)})" for texts in (plain, ours)]
        _show([row.file, _summary(row), *marks])
    print(
        f"decoded: plain {len(plain_decoded)}/{len(images)} ({len(plain_decoded) / len(images):.1%}),"
        f" ours {len(ours_decoded)}/{len(images)} ({len(ours_decoded) / len(images):.1%})"
    )
    assert wrong == []
    assert len(ours_decoded) >= len(plain_decoded)
    assert plain_decoded - ours_decoded == set()
    assert RECOVERED - ours_decoded == set()
    assert [row.file for row in images if not row.is_hard and row.file not in ours_decoded] == []


def test_negatives_give_no_code(qr_corpus: tuple[Path, list[Row]]) -> None:
    folder, rows = qr_corpus
    negatives = [row.file for row in rows if row.file.startswith("negatives/")]
    assert negatives
    assert {name: decoded_texts(folder / name) for name in negatives} == {name: [] for name in negatives}


def test_the_four_codes_of_multi_qr_are_read(qr_corpus: tuple[Path, list[Row]]) -> None:
    folder, rows = qr_corpus
    [row] = [row for row in rows if row.file == "images/multi-1_multi-qr.png"]
    assert len(row.expected) == 4
    assert sorted(decoded_texts(folder / row.file)) == sorted(row.expected)


def test_structured_append_parts_are_pieces_of_the_message_in_order(
    qr_corpus: tuple[Path, list[Row]],
) -> None:
    # Three of the message's four symbols are in the corpus (01, 02, 04): each is read alone; 01 and 02
    # begin the message and 04 ends it.
    folder, rows = qr_corpus
    parts = {row.file: row for row in rows if row.is_structured_append}
    assert sorted(parts) == [f"images/qrcode-7_01-0{n}.png" for n in (1, 2, 4)]
    [message] = parts["images/qrcode-7_01-01.png"].expected
    [first], [second], [last] = (decoded_texts(folder / name) for name in sorted(parts))
    assert message.startswith(first + second)
    assert message.endswith(last)
    assert len(first) + len(second) + len(last) < len(message)


def is_qr_bill(text: str) -> bool:
    """The QR-bill payload's frame (version 2.0): 31 lines from "SPC" to the "EPD" trailer, a Swiss or
    Liechtenstein IBAN on the fourth."""
    lines = text.split("\n")
    return (
        lines[:3] == ["SPC", "0200", "1"]
        and re.fullmatch(r"(CH|LI)\d{19}", lines[3]) is not None
        and (lines[30:31] == ["EPD"])
    )


@pytest.mark.parametrize("dpi", RENDER_DPI)
def test_swiss_qr_bill_pdfs_read_once_drawn(qr_corpus: tuple[Path, list[Row]], dpi: int) -> None:
    folder, rows = qr_corpus
    bills = [row for row in rows if row.file.startswith("pdf/")]
    assert len(bills) == 6
    assert sum(bool(row.expected) for row in bills) >= 4
    for row in bills:
        document = pdfium.PdfDocument(folder / row.file)
        try:
            image = document[0].render(scale=dpi / 72).to_pil()
        finally:
            document.close()
        [code] = read_codes(image, unit="pt", scale=72 / dpi)
        assert (row.file, code.format) == (row.file, "QRCode")
        assert is_qr_bill(code.text), (row.file, code.text)
        if row.expected:
            assert code.text == row.expected[0], row.file
        if "special-chars" in row.file:
            assert "München" in code.text
        box = code.box
        assert box.unit == "pt"
        assert box.right - box.left == pytest.approx(SWISS_QR_SIDE_PT, abs=2.0)
        assert box.bottom - box.top == pytest.approx(SWISS_QR_SIDE_PT, abs=2.0)
        assert box.left == pytest.approx(SWISS_QR_LEFT_PT, abs=2.0)
