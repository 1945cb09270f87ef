"""QR and barcode decoding: ``read_codes`` (plain pass plus retries) beside one bare zxing-cpp call per
image, on the corpus's qr/images when CONVEYOR_CORPUS has them, else on generated images."""

from __future__ import annotations

import io
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segno
import zxingcpp
from PIL import Image, ImageFilter

from bench import report
from bench.environment import REPO_ROOT
from conveyor.extractors.qr import read_codes

# "expected/NAME.txt", the first on a MANIFEST row that is not a ".result.txt" (zxing's metadata).
EXPECTED_FILE = re.compile(r"expected/[^ ;]+\.txt")
# qrcode-2_16 is a "double QR": a large code printed around the small one the sample expects.
ALSO_ON_IMAGE = {"images/qrcode-2_16.webp": ("[外側QRコード]\r\n \r\n*ﾀﾞﾌﾞﾙQR*\r\nhttp://d-qr.net/ex/",)}
GENERATED = 300
BLANK_PAGE_DPI = (150, 200, 300)
QUICK_GENERATED = 60
# read_codes may be slower than one bare call (it retries on images where that call finds nothing),
# but no slower than this on the same images.
TARGET_SLOWDOWN = 4.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One image and the texts that must come out of it (empty for an image without a code)."""

    name: str
    image: Image.Image
    expected: tuple[str, ...]
    also: tuple[str, ...] = ()  # texts of other codes on the image, not wrong when read


@dataclass(frozen=True, slots=True)
class Outcome:
    seconds: float
    decoded: int  # images on which every expected text was read (or, for a negative, nothing)
    wrong: int  # texts read that are not expected


def corpus_samples(root: Path) -> list[Sample]:
    """The images under qr/ with their expected texts, and the negatives; not the structured-append
    symbols, each of which holds a part of a message."""
    samples = []
    for line in (root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 6 or not fields[0].startswith(("images/", "negatives/")):
            continue
        expected: tuple[str, ...] = ()
        if fields[0].startswith("images/"):
            if "structured-append" in fields[5]:
                continue
            [first, *_] = [n for n in EXPECTED_FILE.findall(fields[5]) if not n.endswith(".result.txt")]
            text = (root / first).read_bytes().decode("utf-8")
            expected = tuple(text.split("\n\n=====\n\n")) if ".DERIVED." in first else (text,)
        samples.append(
            Sample(fields[0], _loaded(root / fields[0]), expected, ALSO_ON_IMAGE.get(fields[0], ()))
        )
    return samples


def _loaded(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def generated_samples(count: int, seed: int = 7) -> list[Sample]:
    """QR codes as they come in documents, about one in three made hard: tiny modules, blur, low
    contrast, light on dark, noise, rotation, JPEG; plus Micro QR, DataMatrix and pages without code."""
    rng = random.Random(seed)
    makers: list[Callable[[random.Random, str], Image.Image]] = [
        _clean,
        _clean,
        _clean,
        _clean,
        _tiny,
        _blurred,
        _low_contrast,
        _inverted_noisy,
        _rotated,
        _jpeg,
    ]
    samples = []
    for index in range(count):
        text = f"https://example.com/doc/{rng.randrange(10**9)}?n={index}" + "x" * rng.randrange(0, 60)
        if index % 20 == 19:
            samples.append(Sample(f"none-{index}", _no_code(rng), ()))
        elif index % 20 == 9:
            fmt = rng.choice([zxingcpp.BarcodeFormat.MicroQRCode, zxingcpp.BarcodeFormat.DataMatrix])
            short = str(rng.randrange(10**6, 10**7))
            samples.append(Sample(f"{fmt.name}-{index}", _symbol(short, fmt, rng), (short,)))
        else:
            maker = makers[index % len(makers)]
            samples.append(Sample(f"{maker.__name__[1:]}-{index}", maker(rng, text), (text,)))
    return samples


def _qr(text: str, module_px: int) -> Image.Image:
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=module_px, border=4)
    buffer.seek(0)
    return _loaded_bytes(buffer).convert("L")


def _loaded_bytes(buffer: io.BytesIO) -> Image.Image:
    with Image.open(buffer) as image:
        image.load()
        return image.copy()


def _page(rng: random.Random, code: Image.Image, size: int = 800, background: int = 255) -> Image.Image:
    page = Image.new("L", (max(size, code.width + 40), max(size, code.height + 40)), background)
    page.paste(code, (rng.randrange(0, page.width - code.width), rng.randrange(0, page.height - code.height)))
    return page


def _clean(rng: random.Random, text: str) -> Image.Image:
    return _page(rng, _qr(text, rng.randrange(2, 7)))


def _tiny(rng: random.Random, text: str) -> Image.Image:
    code = _qr(text, 4)
    side = round(code.width / 4 * rng.uniform(1.1, 1.4))
    return _page(rng, code.resize((side, side), Image.Resampling.BOX), 300)


def _blurred(rng: random.Random, text: str) -> Image.Image:
    return _page(rng, _qr(text, 3)).filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 1.8)))


def _low_contrast(rng: random.Random, text: str) -> Image.Image:
    code = _qr(text, rng.randrange(3, 6)).point(lambda v: 150 if v else 110)
    return _noisy(_page(rng, code, background=150), rng, 12.0)


def _inverted_noisy(rng: random.Random, text: str) -> Image.Image:
    code = _qr(text, rng.randrange(3, 6)).point(lambda v: 60 if v else 200)
    return _noisy(_page(rng, code, background=60), rng, 20.0)


def _rotated(rng: random.Random, text: str) -> Image.Image:
    code = _qr(text, rng.randrange(3, 6))
    angle = rng.uniform(10, 80)
    return _page(rng, code.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=255), 900)


def _jpeg(rng: random.Random, text: str) -> Image.Image:
    buffer = io.BytesIO()
    _page(rng, _qr(text, rng.randrange(2, 4))).save(buffer, format="JPEG", quality=rng.randrange(15, 35))
    buffer.seek(0)
    return _loaded_bytes(buffer)


def _noisy(image: Image.Image, rng: random.Random, sigma: float) -> Image.Image:
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, sigma, (image.height, image.width))
    samples = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(samples)


def _symbol(text: str, fmt: zxingcpp.BarcodeFormat, rng: random.Random) -> Image.Image:
    symbol = np.asarray(zxingcpp.create_barcode(text, fmt).to_image(scale=rng.randrange(3, 6)))
    return _page(rng, Image.fromarray(symbol.astype(np.uint8)), 400)


def _no_code(rng: random.Random) -> Image.Image:
    page = Image.new("L", (800, 800), 255)
    samples = np.asarray(page, dtype=np.uint8).copy()
    for _ in range(60):  # text-like bars
        top, left = rng.randrange(0, 780), rng.randrange(0, 600)
        samples[top : top + 8, left : left + rng.randrange(20, 200)] = rng.randrange(0, 80)
    return Image.fromarray(samples)


def bare(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def ours(image: Image.Image) -> list[str]:
    return [code.text for code in read_codes(image)]


def measure(samples: list[Sample], decode: Callable[[Image.Image], list[str]]) -> Outcome:
    decoded = wrong = 0
    started = time.perf_counter()
    texts = [decode(sample.image) for sample in samples]
    seconds = time.perf_counter() - started
    for sample, found in zip(samples, texts, strict=True):
        decoded += all(text in found for text in sample.expected) and (bool(sample.expected) or not found)
        wrong += sum(text not in sample.expected + sample.also for text in found)
    return Outcome(seconds, decoded, wrong)


def passes_used(samples: list[Sample]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for sample in samples:
        counts.update(code.decoded_by for code in read_codes(sample.image) if code.text in sample.expected)
    return dict(counts)


def blank_page_seconds(dpi: int, repeats: int) -> dict[str, float]:
    """Both decoders on an A4 page without any code, the common page in a document: the retries'
    worst case below RETRY_ALL_MAX_PIXELS, one pass above it."""
    page = Image.new("L", (round(8.27 * dpi), round(11.69 * dpi)), 255)
    seconds: dict[str, float] = {}
    for name, decode in (("baseline", bare), ("read_codes", ours)):
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            decode(page)
            runs.append(time.perf_counter() - started)
        seconds[name] = report.median(runs)
    return seconds


def _samples(quick: bool) -> tuple[str, list[Sample]]:
    configured = os.environ.get("CONVEYOR_CORPUS")
    root = Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "corpus").resolve()
    if (root / "qr" / "MANIFEST.tsv").is_file():
        return "corpus qr/", corpus_samples(root / "qr")
    count = QUICK_GENERATED if quick else GENERATED
    return "generated", generated_samples(count)


def run(*, quick: bool) -> report.BenchReport:
    source, samples = _samples(quick)
    negatives = sum(not sample.expected for sample in samples)
    repeats = 1 if quick else 3
    bench = report.BenchReport(
        name="qr",
        title=f"QR/barcode decoding, {len(samples)} {source} images, {negatives} of them without a code"
        f" (median of {repeats})",
        columns=["decoder", "images", "images/s", "decoded", "decode rate", "wrong texts", "vs baseline"],
    )
    runs: dict[str, list[Outcome]] = {"baseline": [], "read_codes": []}
    for attempt in range(repeats):
        for name, decode in (("baseline", bare), ("read_codes", ours)):
            report.progress(f"qr {name} run {attempt + 1}/{repeats}")
            runs[name].append(measure(samples, decode))
    rates = {
        name: report.median([len(samples) / o.seconds for o in outcomes]) for name, outcomes in runs.items()
    }
    labels = {"baseline": "zxingcpp.read_barcodes, one call", "read_codes": "read_codes (plain + retries)"}
    for name, outcomes in runs.items():
        first = outcomes[0]
        bench.rows.append(
            [
                labels[name],
                f"{len(samples):,}",
                report.rate(rates[name]),
                f"{first.decoded:,}",
                f"{first.decoded / len(samples):.1%}",
                f"{first.wrong:,}",
                report.ratio(rates[name] / rates["baseline"]),
            ]
        )
    passes = passes_used(samples)
    report.progress("qr: blank pages")
    blank = {dpi: blank_page_seconds(dpi, repeats) for dpi in BLANK_PAGE_DPI}
    bench.data = {
        "source": source,
        "images": len(samples),
        "runs": {name: [o.seconds for o in outcomes] for name, outcomes in runs.items()},
        "decoded": {name: outcomes[0].decoded for name, outcomes in runs.items()},
        "wrong": {name: outcomes[0].wrong for name, outcomes in runs.items()},
        "median_rates": rates,
        "codes_by_pass": passes,
        "blank_page_seconds": blank,
    }
    ours_first, bare_first = runs["read_codes"][0], runs["baseline"][0]
    slowdown = rates["baseline"] / rates["read_codes"]
    bench.targets = [
        report.Target(
            f"decode rate >= the bare call's: {ours_first.decoded} vs {bare_first.decoded}",
            ours_first.decoded >= bare_first.decoded,
        ),
        report.Target(f"no wrong texts: {ours_first.wrong}", ours_first.wrong == 0),
        report.Target(
            f"at most {TARGET_SLOWDOWN:.0f}x slower than the bare call: {slowdown:.2f}x",
            slowdown <= TARGET_SLOWDOWN,
        ),
    ]
    bench.notes.append(f"codes read, by the pass that read them: {passes}")
    bench.notes.append(
        "a blank A4 page, bare call / read_codes: "
        + ", ".join(
            f"{dpi} dpi {report.millis(times['baseline'])} / {report.millis(times['read_codes'])}"
            for dpi, times in blank.items()
        )
    )
    bench.notes.append(
        "decoded: every expected text read (negatives: nothing read); images are decoded in memory"
        " (opening and decompressing them is not timed); one process"
    )
    return bench
