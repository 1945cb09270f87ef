"""The OCR extractor on pages rendered here at 300 dpi: exact words, turned and tilted pages read
with their rotation and skew reported, word boxes on the image as given, blank pages, languages."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from conveyor.content import Box
from conveyor.errors import InputError
from conveyor.extractors import ocr

DPI = 300
LINES = (
    "The quick brown fox jumps over the lazy dog.",
    "Invoice 4711 was paid on the third of March.",
    "Delivery notes arrive as photos and letters.",
    "Please return the signed copy within ten days.",
)
WORDS = [word for line in LINES for word in line.split()]
DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")


@dataclass(frozen=True)
class Drawn:
    """A rendered page and where each of its words was drawn (ink boxes, in its pixels)."""

    image: Image.Image
    boxes: tuple[Box, ...]


def draw_page(lines: tuple[str, ...] = LINES) -> Drawn:
    """12 pt text at 300 dpi (50 px) on a page 8 inches wide, as from a clean office scan."""
    font = ImageFont.load_default(size=DPI // 6)
    image = Image.new("L", (8 * DPI, DPI * (len(lines) + 3) // 3), 255)
    draw = ImageDraw.Draw(image)
    space = font.getlength(" ")
    boxes = []
    top = DPI // 2
    for line in lines:
        left = DPI / 2
        for word in line.split():
            draw.text((left, top), word, font=font, fill=0)
            boxes.append(Box(*draw.textbbox((left, top), word, font=font), unit="px"))
            left += font.getlength(word) + space
        top += DPI // 3
    return Drawn(image, tuple(boxes))


@pytest.fixture(scope="module")
def page() -> Drawn:
    return draw_page()


@pytest.fixture(scope="module")
def upright(page: Drawn) -> ocr.OcrPage:
    return ocr.recognize(page.image)


def overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    area = (a.right - a.left) * (a.bottom - a.top) + (b.right - b.left) * (b.bottom - b.top)
    return inter / (area - inter)


def turned_box(box: Box, size: tuple[int, int], counterclockwise: float) -> Box:
    """Where ``box`` lands when its image of ``size`` is turned by ``Image.rotate(angle, expand=True)``:
    the box around its turned corners, computed independently of the code under test."""
    width, height = size
    theta = math.radians(counterclockwise)
    cos, sin = math.cos(theta), math.sin(theta)
    new_width = abs(width * cos) + abs(height * sin)
    new_height = abs(width * sin) + abs(height * cos)
    points = []
    for x, y in ((box.left, box.top), (box.right, box.top), (box.right, box.bottom), (box.left, box.bottom)):
        dx, dy = x - width / 2, y - height / 2
        # Counterclockwise on screen, with y pointing down.
        points.append((new_width / 2 + dx * cos + dy * sin, new_height / 2 - dx * sin + dy * cos))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return Box(min(xs), min(ys), max(xs), max(ys), "px")


def assert_boxes_land(result: ocr.OcrPage, expected: tuple[Box, ...], minimum: float) -> None:
    assert [word.text for word in result.words] == WORDS
    scores = [overlap(word.box, box) for word, box in zip(result.words, expected, strict=True)]
    assert min(scores) >= minimum, list(zip(WORDS, scores, strict=True))


def test_clean_text_is_read_word_for_word(upright: ocr.OcrPage) -> None:
    assert [word.text for word in upright.words] == WORDS
    assert upright.text.split() == WORDS
    assert [line for line in upright.text.splitlines() if line] == list(LINES)
    assert (upright.rotation, upright.skew) == (0, 0.0)
    assert 80 < upright.confidence <= 100
    mean = sum(word.confidence or 0 for word in upright.words) / len(upright.words)
    assert upright.confidence == pytest.approx(mean)


def test_word_boxes_land_where_the_words_were_drawn(page: Drawn, upright: ocr.OcrPage) -> None:
    assert all(word.box.unit == "px" for word in upright.words)
    assert_boxes_land(upright, page.boxes, minimum=0.75)


@pytest.mark.parametrize("counterclockwise", [90, 180, 270])
def test_turned_page_is_read_and_its_rotation_reported(page: Drawn, counterclockwise: int) -> None:
    turned = page.image.rotate(counterclockwise, expand=True)
    result = ocr.recognize(turned)
    # ``rotation`` is the clockwise turn that made the page readable: it undoes the drawing's turn.
    assert result.rotation == counterclockwise
    expected = tuple(turned_box(box, page.image.size, counterclockwise) for box in page.boxes)
    assert_boxes_land(result, expected, minimum=0.75)
    assert all(
        0 <= word.box.right <= turned.width and 0 <= word.box.bottom <= turned.height for word in result.words
    )


@pytest.mark.parametrize("counterclockwise", [3.0, -3.0])
def test_tilted_page_is_straightened_and_its_skew_reported(page: Drawn, counterclockwise: float) -> None:
    tilted = page.image.rotate(
        counterclockwise, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255
    )
    result = ocr.recognize(tilted)
    assert result.rotation == 0
    assert result.skew == pytest.approx(counterclockwise, abs=1.0)
    expected = tuple(turned_box(box, page.image.size, counterclockwise) for box in page.boxes)
    # Boxes around tilted words are looser than the words, on both sides: a lower bar.
    assert_boxes_land(result, expected, minimum=0.7)


@pytest.mark.parametrize("counterclockwise", [90, 180])
def test_single_word_too_short_for_orientation_detection_is_still_turned(counterclockwise: int) -> None:
    font = ImageFont.load_default(size=DPI // 6)
    label = Image.new("L", (DPI * 2, DPI // 2), 255)
    ImageDraw.Draw(label).text((DPI // 4, DPI // 8), "Conveyor", font=font, fill=0)
    result = ocr.recognize(label.rotate(counterclockwise, expand=True))
    assert (result.text, result.rotation) == ("Conveyor", counterclockwise)


def test_without_deskew_the_skew_is_not_measured(page: Drawn) -> None:
    tilted = page.image.rotate(3, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    result = ocr.recognize(tilted, deskew=False, detect_orientation=False)
    assert (result.rotation, result.skew) == (0, 0.0)
    assert result.text.split()[:4] == WORDS[:4]


def test_blank_page_has_no_text_and_no_confidence() -> None:
    result = ocr.recognize(Image.new("RGB", (8 * DPI, 3 * DPI), "white"))
    assert result == ocr.OcrPage(text="", confidence=0.0, words=(), rotation=0, skew=0.0)


def test_transparent_background_reads_as_white(page: Drawn) -> None:
    line = page.image.crop((0, 0, page.image.width, DPI // 2 + DPI // 4))
    # Black ink on a fully transparent canvas: flattened onto black, the page would be all black.
    clear = Image.new("RGBA", line.size, (0, 0, 0, 0))
    clear.putalpha(line.point(lambda value: 255 - value))
    result = ocr.recognize(clear)
    assert result.text.split() == LINES[0].split()


def test_unknown_language_names_it_and_lists_the_installed_ones(page: Drawn) -> None:
    with pytest.raises(InputError, match=r"'qaa' is not installed; installed: .*\beng\b"):
        ocr.recognize(page.image, languages="eng+qaa")
    with pytest.raises(InputError, match="not a language name"):
        ocr.recognize(page.image, languages="eng+../eng")
    with pytest.raises(InputError, match="not a language name"):
        ocr.recognize(page.image, languages="")


def test_installed_languages_leave_out_orientation_data() -> None:
    installed = ocr.installed_languages()
    assert "eng" in installed
    assert "osd" not in installed
    assert installed == sorted(installed)


def test_tessdata_prefix_overrides_the_installed_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert ocr.tessdata_dir() == tmp_path
    assert ocr.installed_languages() == []
    with pytest.raises(InputError, match=r"'eng' is not installed; installed: none"):
        ocr.recognize(Image.new("L", (10, 10), 255))


def test_bad_resolution_and_empty_image_are_input_errors(page: Drawn) -> None:
    with pytest.raises(InputError, match="dpi"):
        ocr.recognize(page.image, dpi=0)
    with pytest.raises(InputError, match="empty"):
        ocr.recognize(Image.new("L", (0, 10)))
    with pytest.raises(InputError, match="40000x10 pixels; OCR reads at most 32767"):
        ocr.recognize(Image.new("L", (40000, 10), 255))


def test_one_engine_per_language_set_is_kept(upright: ocr.OcrPage) -> None:
    assert ocr._engine("eng") is ocr._engine("eng")


@pytest.mark.skipif(not (DEBIAN_TESSDATA / "eng.traineddata").is_file(), reason="Debian's tesseract-ocr-eng")
def test_orientation_works_with_models_lacking_the_legacy_classifier(page: Drawn, tmp_path: Path) -> None:
    """Debian's eng is a tessdata_fast model: DetectOS on an engine loaded with it aborts the process
    (tesseract-ocr/tesseract#1167), so OSD must run on an engine of its own."""
    image = tmp_path / "upside-down.png"
    page.image.rotate(180).save(image)
    script = (
        "import sys; from PIL import Image; from conveyor.extractors import ocr;"
        "page = ocr.recognize(Image.open(sys.argv[1])); print(page.rotation, page.text.split()[0])"
    )
    env = {**os.environ, "TESSDATA_PREFIX": str(DEBIAN_TESSDATA)}
    done = subprocess.run([sys.executable, "-c", script, str(image)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["180", WORDS[0]]


def test_tesseract_threads_are_limited_before_it_loads() -> None:
    script = (
        "import os; from PIL import Image; from conveyor.extractors import ocr;"
        "ocr.recognize(Image.new('L', (20, 20), 255)); print(os.environ['OMP_THREAD_LIMIT'])"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_THREAD_LIMIT"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"
