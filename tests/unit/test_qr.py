"""read_codes on images made here with segno and zxing-cpp's own writer."""

from __future__ import annotations

import io

import numpy as np
import pytest
import segno
import zxingcpp
from PIL import Image, ImageDraw

from conveyor.content import Barcode
from conveyor.extractors.qr import RETRY_ALL_MAX_PIXELS, read_codes

POSITION_TOLERANCE_PX = 3.0


def symbol(code: segno.QRCode, *, module_px: int = 4, border: int = 0) -> Image.Image:
    """A segno symbol as an 8-bit grayscale image, ``border`` modules of quiet zone around it."""
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=module_px, border=border)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return image.convert("L")


def qr(content: str | bytes, *, module_px: int = 4, border: int = 4) -> Image.Image:
    return symbol(segno.make_qr(content), module_px=module_px, border=border)


def on_page(
    code: Image.Image, size: tuple[int, int], at: tuple[int, int], background: int = 255
) -> Image.Image:
    page = Image.new("L", size, background)
    page.paste(code, at)
    return page


def noisy(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    noise = np.random.default_rng(seed).normal(0.0, sigma, (image.height, image.width))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def written(text: str, barcode_format: zxingcpp.BarcodeFormat) -> Image.Image:
    pixels = np.asarray(zxingcpp.create_barcode(text, barcode_format).to_image(scale=3, add_quiet_zones=True))
    return Image.fromarray(pixels.astype(np.uint8))


def texts(codes: list[Barcode]) -> list[str]:
    return [code.text for code in codes]


def test_utf8_text_comes_back_exactly_with_its_bytes() -> None:
    text = "Grüße aus Zürich, 東京 ✓\r\nline two"
    [code] = read_codes(qr(text))
    assert code.text == text
    assert code.raw == text.encode("utf-8")
    assert code.format == "QRCode"
    assert code.decoded_by == "plain"


def test_binary_payload_comes_back_byte_for_byte() -> None:
    payload = bytes(range(256))
    [code] = read_codes(qr(payload))
    assert code.raw == payload
    # Plain text mode: control characters stay themselves (zxing's default would write "<NUL>").
    assert code.text == payload.decode("latin-1")


def test_several_codes_are_found_where_they_were_pasted() -> None:
    places = {"first": (40, 50), "second": (500, 80), "third": (300, 350)}
    page = Image.new("L", (900, 600), 255)
    sizes = {}
    for text, at in places.items():
        code = qr(text, module_px=5, border=0)
        page.paste(code, at)
        sizes[text] = code.size
    codes = {code.text: code for code in read_codes(page)}
    assert sorted(codes) == sorted(places)
    for text, (left, top) in places.items():
        width, height = sizes[text]
        box = codes[text].box
        assert box.unit == "px"
        assert box.left == pytest.approx(left, abs=POSITION_TOLERANCE_PX)
        assert box.top == pytest.approx(top, abs=POSITION_TOLERANCE_PX)
        assert box.right == pytest.approx(left + width, abs=POSITION_TOLERANCE_PX)
        assert box.bottom == pytest.approx(top + height, abs=POSITION_TOLERANCE_PX)
        assert codes[text].corners[0] == pytest.approx((left, top), abs=POSITION_TOLERANCE_PX)


def test_a_tiny_code_the_plain_pass_misses_is_read_upscaled_in_original_pixels() -> None:
    text = "https://example.com/tiny"
    sharp = qr(text, module_px=4, border=16)
    modules = sharp.width // 4
    side = round(modules * 1.2)  # 1.2 px a module, antialiased: a code printed small and scanned
    tiny = sharp.resize((side, side), Image.Resampling.BOX)
    assert zxingcpp.read_barcodes(tiny) == []
    [code] = read_codes(tiny)
    assert code.text == text
    assert code.decoded_by == "upscaled"
    symbol_px = (modules - 32) * 1.2
    assert code.box.left == pytest.approx(16 * 1.2, abs=2.0)
    assert code.box.right - code.box.left == pytest.approx(symbol_px, abs=2.0)


def test_a_light_on_dark_code_on_a_noisy_low_contrast_background_is_read() -> None:
    code = qr("INVERTED-42", border=0).point(lambda value: 90 if value else 150)  # modules light
    image = noisy(on_page(code, (300, 300), (60, 60), background=90), sigma=18.0, seed=1)
    assert zxingcpp.read_barcodes(image) == []
    [found] = read_codes(image)
    assert found.text == "INVERTED-42"
    assert found.decoded_by != "plain"
    assert found.box.left == pytest.approx(60, abs=POSITION_TOLERANCE_PX)


@pytest.mark.parametrize("angle", [90, 30])
def test_a_rotated_code_is_read_and_its_corners_follow_the_symbol(angle: int) -> None:
    image = qr("ROTATED", module_px=5).rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    [code] = read_codes(image)
    assert code.text == "ROTATED"
    top_left, top_right, _, _ = code.corners
    # PIL turns counter-clockwise: the printed top edge now climbs to the right at ``angle``.
    climb = np.degrees(np.arctan2(top_left[1] - top_right[1], top_right[0] - top_left[0]))
    assert climb == pytest.approx(angle, abs=3.0)


def test_scale_and_unit_map_pixels_to_points() -> None:
    dpi = 200
    page = on_page(qr("ON A PAGE", border=0), (1000, 1000), (400, 600))
    [in_pixels] = read_codes(page)
    [in_points] = read_codes(page, unit="pt", scale=72 / dpi)
    assert in_points.box.unit == "pt"
    assert in_points.box.left == pytest.approx(in_pixels.box.left * 72 / dpi)
    assert in_points.box.bottom == pytest.approx(in_pixels.box.bottom * 72 / dpi)
    assert in_points.box.left == pytest.approx(400 * 72 / dpi, abs=1.0)
    assert in_points.corners[2] == pytest.approx(
        (in_pixels.corners[2][0] * 72 / dpi, in_pixels.corners[2][1] * 72 / dpi)
    )


def test_an_image_without_a_code_gives_nothing() -> None:
    page = Image.new("L", (600, 400), 255)
    draw = ImageDraw.Draw(page)
    for row in range(10):
        draw.rectangle((30, 30 + row * 35, 30 + 50 * (row % 7 + 3), 42 + row * 35), fill=0)
    assert read_codes(page) == []
    assert read_codes(noisy(page, sigma=40.0, seed=3)) == []


@pytest.mark.parametrize("size", [(1, 1), (0, 0), (1, 500)])
def test_degenerate_images_give_nothing(size: tuple[int, int]) -> None:
    assert read_codes(Image.new("RGB", size, "white")) == []


@pytest.mark.parametrize(
    ("image", "expected_format", "text"),
    [
        (symbol(segno.make_micro("12345"), border=2), "MicroQRCode", "12345"),
        (written("DM-123", zxingcpp.BarcodeFormat.DataMatrix), "DataMatrix", "DM-123"),
        (written("CODE128-42", zxingcpp.BarcodeFormat.Code128), "Code128", "CODE128-42"),
        (written("5901234123457", zxingcpp.BarcodeFormat.EAN13), "EAN13", "5901234123457"),
    ],
    ids=["micro-qr", "datamatrix", "code128", "ean13"],
)
def test_other_formats_are_named(image: Image.Image, expected_format: str, text: str) -> None:
    [code] = read_codes(image)
    assert (code.format, code.text) == (expected_format, text)


def in_mode(gray: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.asarray(gray).astype(np.uint16) * 200)
    if mode == "LAB":
        neutral = Image.new("L", gray.size, 128)
        return Image.merge("LAB", (gray, neutral, neutral))
    return gray.convert(mode)


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "I", "I;16", "F"]
)
def test_every_image_mode_is_read(mode: str) -> None:
    image = in_mode(qr("MODES"), mode)
    assert image.mode == mode
    assert texts(read_codes(image)) == ["MODES"]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_a_code_drawn_on_a_transparent_background_is_read(mode: str) -> None:
    ink = np.asarray(qr("SEE-THROUGH")) == 0
    alpha = np.where(ink, 255, 0).astype(np.uint8)
    black = np.zeros_like(alpha)
    channels = [black, black, black, alpha] if mode == "RGBA" else [black, alpha]
    image = Image.fromarray(np.stack(channels, axis=-1))
    assert image.mode == mode
    assert zxingcpp.read_barcodes(image.convert("L")) == []  # dropping alpha leaves black on black
    assert texts(read_codes(image)) == ["SEE-THROUGH"]


def test_a_code_read_by_several_passes_is_one_code() -> None:
    # Beside a good code, a symbol damaged beyond repair: zxing locates it but cannot decode it, so
    # every retry runs, and each reads the good code again.
    good = qr("GOOD", module_px=5, border=0)
    page = on_page(good, (700, 400), (30, 30))
    page.paste(damaged_symbol(), (350, 30))
    located = zxingcpp.read_barcodes(page, return_errors=True)
    assert any(not result.valid for result in located)
    assert [(code.text, code.decoded_by) for code in read_codes(page)] == [("GOOD", "plain")]


def test_the_same_code_twice_on_a_page_is_two_codes() -> None:
    code = qr("TWICE", module_px=4, border=0)
    page = on_page(code, (600, 300), (40, 40))
    page.paste(code, (400, 120))
    found = read_codes(page)
    assert texts(found) == ["TWICE", "TWICE"]
    assert sorted(round(code.box.left) for code in found) == pytest.approx(
        [40, 400], abs=POSITION_TOLERANCE_PX
    )


def test_structured_append_symbols_are_separate_codes() -> None:
    message = "The quick brown fox jumps over the lazy dog. " * 6
    page = Image.new("L", (1200, 400), 255)
    for index, part in enumerate(segno.make_sequence(message, symbol_count=3)):
        page.paste(symbol(part, module_px=3, border=4), (10 + index * 390, 10))
    found = sorted(read_codes(page), key=lambda code: code.box.left)
    assert len(found) == 3
    assert "".join(texts(found)) == message


def damaged_symbol() -> Image.Image:
    """A QR code with its middle erased: zxing locates it but cannot decode it."""
    damaged = symbol(segno.make_qr("DAMAGED " * 6, error="L"), module_px=5)
    side = damaged.width
    ImageDraw.Draw(damaged).rectangle((side * 0.35, side * 0.35, side * 0.75, side * 0.75), fill=255)
    return damaged


def test_a_large_image_gets_the_retries_only_when_a_symbol_was_located() -> None:
    side = 1800
    assert side * side > RETRY_ALL_MAX_PIXELS
    faint = qr("LOW-CONTRAST-7", border=0).point(lambda value: 150 if value else 110)
    scan = noisy(on_page(faint, (side, side), (160, 160), background=150), sigma=18.0, seed=0)
    assert zxingcpp.read_barcodes(scan, return_errors=True) == []  # not even located
    assert read_codes(scan) == []  # so a large image costs one pass
    assert texts(read_codes(scan.crop((0, 0, 500, 500)))) == ["LOW-CONTRAST-7"]  # a small one gets all
    scan.paste(damaged_symbol(), (1200, 1200))
    assert [(code.text, code.decoded_by) for code in read_codes(scan)] == [("LOW-CONTRAST-7", "denoised")]
