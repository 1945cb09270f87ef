"""QR codes and barcodes on one image: zxing-cpp's default pass, then retries for what it misses.

Which retries, measured on the corpus's qr/ images (115 with the negatives; the plain pass misses 10)
and on 300 generated ones (it misses 47), each retry alone on the images where retries run:

    histogram            global threshold       corpus 3, generated 1   (cheap)
    denoised             Gaussian blur, local   corpus 2, generated 18  noise on low contrast
    denoised-histogram   Gaussian blur, global  corpus 3, generated 4   dithered or textured modules
    threshold            fixed threshold        corpus 0, generated 4   (cheap)
    upscaled             2x or 3x Lanczos       corpus 1, generated 23  modules about a pixel wide

Together they recover 5 of the corpus's 10 misses (the other five are codes on crumpled cloth) and 34
of the generated 47. An inverted pass earned nothing (zxing already tries light-on-dark codes), a
contrast stretch nothing, a median filter no more than the blur at twice its cost; none of the
retries read a wrong text.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

from conveyor.content import Barcode, Box, Unit

logger = logging.getLogger(__name__)

# Upscaling is 3x, or 2x, while the result stays within this, else skipped: every code it recovered
# was on a small image, and a page drawn at 150 dpi (2.2 MP) has no code with modules a pixel wide.
UPSCALE_MAX_PIXELS = 6_000_000
# Above this size the retries run only when the plain pass located a symbol it could not decode: every
# code they recovered without that was on a small image, while on a page without any code (a blank A4
# at 200 dpi is 3.9 MP) they would cost 0.3 s beside the plain pass's 0.05 s. Pages drawn at 200 dpi
# or more, and camera photos, get one pass unless something was located; a 150 dpi page gets them all.
RETRY_ALL_MAX_PIXELS = 3_000_000
# Two readings are of the same symbol when their centres are closer than this fraction of its size.
SAME_PLACE = 0.5

Prepared = tuple[Image.Image, float]


@dataclass(frozen=True, slots=True)
class Pass:
    """One way of reading the image: a transformation of its grayscale version, returning the new
    image and the factor its coordinates grew by (None: the pass does not apply), and a binarizer."""

    name: str
    prepare: Callable[[Image.Image], Prepared | None]
    binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage


@dataclass(slots=True)
class _Reading:
    """What the passes so far found: the codes, and the places of symbols none of them decoded."""

    codes: list[Barcode] = field(default_factory=list)
    unreadable: list[Box] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        return bool(self.codes) and not self.unreadable

    def add(self, codes: list[Barcode], unreadable: list[Box]) -> None:
        """Keep a pass's new codes (a pass's own results are never merged with each other: a code can
        sit inside another one) and forget the unreadable places a code now covers."""
        known = list(self.codes)
        self.codes.extend(code for code in codes if not any(_same_code(code, other) for other in known))
        self.unreadable.extend(unreadable)
        self.unreadable = [
            box for box in self.unreadable if not any(_same_place(box, code.box) for code in self.codes)
        ]


def _unchanged(image: Image.Image) -> Prepared:
    return image, 1.0


def _blurred(image: Image.Image) -> Prepared:
    return image.filter(ImageFilter.GaussianBlur(1)), 1.0


def _upscaled(image: Image.Image) -> Prepared | None:
    pixels = image.width * image.height
    factor = next((f for f in (3, 2) if pixels * f * f <= UPSCALE_MAX_PIXELS), None)
    if factor is None:
        return None
    size = (image.width * factor, image.height * factor)
    return image.resize(size, Image.Resampling.LANCZOS), float(factor)


PLAIN = Pass("plain", _unchanged)
RETRIES = (
    Pass("histogram", _unchanged, zxingcpp.Binarizer.GlobalHistogram),
    Pass("denoised", _blurred),
    Pass("denoised-histogram", _blurred, zxingcpp.Binarizer.GlobalHistogram),
    Pass("threshold", _unchanged, zxingcpp.Binarizer.FixedThreshold),
    Pass("upscaled", _upscaled),
)


def read_codes(image: Image.Image, *, unit: Unit = "px", scale: float = 1.0) -> list[Barcode]:
    """Every code zxing-cpp can read on ``image``; positions in its pixels times ``scale``.

    The retries run, in order, only while they can add something: when no pass so far read a code, or
    one located a symbol that no pass has decoded yet (zxing reports those with ``return_errors``). So
    the common image whose codes all read at once costs one pass. A reading of the same format and text
    at about the same place as an earlier one is the same code. Decoding failures are logged, never
    raised.
    """
    gray = grayscale(image)
    if gray.width == 0 or gray.height == 0:
        return []
    reading = _Reading()
    reading.add(*_decode((gray, 1.0), PLAIN))
    is_large = gray.width * gray.height > RETRY_ALL_MAX_PIXELS
    if not reading.unreadable and (reading.codes or is_large):
        return _scaled(reading.codes, scale, unit)
    prepared: dict[Callable[[Image.Image], Prepared | None], Prepared | None] = {}
    for retry in RETRIES:
        if retry.prepare not in prepared:  # two passes read the same blurred image
            prepared[retry.prepare] = retry.prepare(gray)
        reading.add(*_decode(prepared[retry.prepare], retry))
        if reading.is_complete:
            break
    return _scaled(reading.codes, scale, unit)


def grayscale(image: Image.Image) -> Image.Image:
    """The image as 8-bit grayscale: transparent areas white (a code drawn on a transparent background
    is black on black once the alpha channel is dropped), 16-bit and float samples stretched to their
    own range."""
    if image.mode == "L":
        return image
    if image.mode == "LAB":  # CIELab TIFFs; Pillow has no conversion from it
        return image.getchannel("L")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        samples = np.asarray(image, dtype=np.float64)
        low, high = float(samples.min(initial=math.inf)), float(samples.max(initial=-math.inf))
        span = high - low if high > low else 1.0
        return Image.fromarray(((samples - low) * (255.0 / span)).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


def _decode(prepared: Prepared | None, reading: Pass) -> tuple[list[Barcode], list[Box]]:
    """The codes one pass reads and the places of symbols it located but could not decode, both in
    the original image's pixels."""
    if prepared is None:
        return [], []
    image, factor = prepared
    try:
        results = zxingcpp.read_barcodes(
            image, binarizer=reading.binarizer, text_mode=zxingcpp.TextMode.Plain, return_errors=True
        )
    except (RuntimeError, ValueError) as error:  # how zxing-cpp's C++ exceptions arrive
        logger.warning("zxing-cpp failed in the %s pass: %s", reading.name, error)
        return [], []
    codes = [_barcode(result, factor, reading.name) for result in results if result.valid]
    unreadable = [_barcode(result, factor, reading.name).box for result in results if not result.valid]
    return codes, unreadable


def _barcode(result: zxingcpp.Barcode, factor: float, pass_name: str) -> Barcode:
    position = result.position
    points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    corners = tuple((point.x / factor, point.y / factor) for point in points)
    xs = [x for x, _ in corners]
    ys = [y for _, y in corners]
    return Barcode(
        format=result.format.name,
        text=result.text,
        raw=bytes(result.bytes),
        box=Box(min(xs), min(ys), max(xs), max(ys), "px"),
        corners=corners,
        decoded_by=pass_name,
    )


def _same_code(a: Barcode, b: Barcode) -> bool:
    return a.format == b.format and a.text == b.text and _same_place(a.box, b.box)


def _same_place(a: Box, b: Box) -> bool:
    size = max(a.right - a.left, a.bottom - a.top, b.right - b.left, b.bottom - b.top, 1.0)
    dx = (a.left + a.right - b.left - b.right) / 2
    dy = (a.top + a.bottom - b.top - b.bottom) / 2
    return math.hypot(dx, dy) < SAME_PLACE * size


def _scaled(codes: list[Barcode], scale: float, unit: Unit) -> list[Barcode]:
    return [
        Barcode(
            format=code.format,
            text=code.text,
            raw=code.raw,
            box=code.box.scaled(scale, unit),
            corners=tuple((x * scale, y * scale) for x, y in code.corners),
            decoded_by=code.decoded_by,
        )
        for code in codes
    ]
