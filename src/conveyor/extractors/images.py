"""Raster images (PNG, JPEG, TIFF with many pages, WebP, BMP, GIF, JPEG 2000) opened safely with Pillow.

The pixel count is checked from the header before anything is decoded (a 50 KB PNG can claim
900 megapixels), transparent pixels are flattened onto white (OCR and QR reading see black
otherwise), and every Pillow error becomes an InputError that names the file and the frame.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageOps, UnidentifiedImageError

from conveyor.content import Limits
from conveyor.errors import InputError
from conveyor.extractors.limits import check_pixels

DEFAULT_DPI = 300
# Scans claim all sorts of resolutions; below this the claim is metadata noise (72 "dpi" screenshots).
MIN_PLAUSIBLE_DPI = 100
# What Pillow raises on malformed and fuzzed files (its plugins let struct, index and key errors out).
_PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
    Image.DecompressionBombError,
)


@contextmanager
def open_image(path: str, subject: str, limits: Limits) -> Iterator[Image.Image]:
    """The image, header checked against the pixel limit, not yet decoded."""
    # Pillow's own bomb check would fire first with its own numbers; ours names the limit instead.
    Image.MAX_IMAGE_PIXELS = None
    try:
        image = Image.open(path)
    except _PILLOW_ERRORS as error:
        raise InputError(f"{subject}: not a readable image ({_describe(error)})") from None
    with image:
        check_pixels(image.width, image.height, limits, subject)
        yield image


def frame_count(image: Image.Image, subject: str) -> int:
    """Frames (pages) in the file; counting walks a TIFF's chain of directories, which can be broken."""
    try:
        return int(getattr(image, "n_frames", 1))
    except _PILLOW_ERRORS as error:
        raise InputError(f"{subject}: the pages cannot be counted ({_describe(error)})") from None


def load_frame(image: Image.Image, index: int, subject: str, limits: Limits) -> tuple[Image.Image, int]:
    """Frame ``index`` (0-based) as an upright 8-bit grayscale image, and its resolution in dpi.

    Every frame's size is checked again: a TIFF's later pages may claim any size of their own."""
    try:
        image.seek(index)
        check_pixels(image.width, image.height, limits, f"{subject} (page {index + 1})")
        frame = ImageOps.exif_transpose(image) if index == 0 else image.copy()
        frame.load()
        gray = _flatten(frame)
    except _PILLOW_ERRORS as error:
        raise InputError(f"{subject}: frame {index + 1} cannot be decoded ({_describe(error)})") from None
    return gray, _dpi(image)


def _flatten(frame: Image.Image) -> Image.Image:
    if frame.mode in {"RGBA", "LA", "PA"} or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    if frame.mode in {"I;16", "I;16B", "I;16L", "I"}:
        return frame.point(lambda value: value / 256).convert("L")
    return frame.convert("L")


def _dpi(image: Image.Image) -> int:
    claimed = image.info.get("dpi")
    try:
        value = round(float(claimed[0])) if claimed else 0
    except (TypeError, ValueError, IndexError):
        value = 0
    return value if value >= MIN_PLAUSIBLE_DPI else DEFAULT_DPI


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
