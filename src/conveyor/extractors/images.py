"""Raster images (PNG, JPEG, TIFF with many pages, WebP, BMP, GIF, JPEG 2000) opened safely with Pillow.

The pixel count is checked from the header before anything is decoded (a 50 KB PNG can claim
900 megapixels), transparent pixels are flattened onto white (OCR and QR reading see black
otherwise), and every Pillow error becomes an InputError that names the file and the frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageOps, UnidentifiedImageError

from conveyor.content import Limits
from conveyor.errors import InputError
from conveyor.extractors.limits import check_pixels

DEFAULT_DPI = 300
# Scans claim all sorts of resolutions; below this the claim is metadata noise (72 "dpi" screenshots).
MIN_PLAUSIBLE_DPI = 100
_PILLOW_ERRORS = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
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


def frame_count(image: Image.Image) -> int:
    return int(getattr(image, "n_frames", 1))


def load_frame(image: Image.Image, index: int, subject: str) -> tuple[Image.Image, int]:
    """Frame ``index`` (0-based) as an upright 8-bit grayscale image, and its resolution in dpi."""
    try:
        image.seek(index)
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
