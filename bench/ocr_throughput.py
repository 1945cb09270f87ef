"""OCR throughput: pages/s of ``ocr.recognize`` beside the bare ``tesseract`` command on the same
generated 300 dpi pages, in one process and in two, and what orientation and deskew detection cost.

Pages are paragraph text drawn with Pillow's bundled font (no corpus needed), written once as PNG
files; every reader opens the files itself. Each reader runs ``OMP_THREAD_LIMIT=1``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tests.documents import scanned_pdf
from tests.text_metrics import character_error_rate

from bench import report
from conveyor.content import Limits, OfflineContext
from conveyor.extractors import ocr
from conveyor.extractors.isolation import Deadline, sandbox_for
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline

DPI = 300
PAGE_PX = (2480, 3508)  # A4 at 300 dpi
MARGIN_PX = 240
LINES_PER_PAGE = 34
TARGET_SCALING = 1.8
VOCABULARY = (
    "invoice",
    "delivery",
    "order",
    "customer",
    "payment",
    "account",
    "number",
    "date",
    "total",
    "amount",
    "received",
    "shipped",
    "warehouse",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "for",
    "on",
    "with",
    "by",
    "from",
    "at",
    "as",
    "is",
    "was",
    "be",
    "this",
    "that",
    "which",
    "will",
    "please",
    "return",
    "signed",
    "copy",
    "within",
    "days",
    "contract",
    "page",
    "section",
    "item",
    "quantity",
    "price",
    "tax",
    "net",
    "gross",
    "balance",
    "due",
    "reference",
    "letter",
    "office",
    "March",
    "April",
    "Utrecht",
    "Lyon",
    "2026",
    "4711",
    "review",
)


@dataclass(frozen=True, slots=True)
class Sizes:
    pages: int
    repeats: int


@dataclass(frozen=True, slots=True)
class Run:
    """One pass of a reader over every page."""

    seconds: float
    pages: int
    cer: float  # median over pages

    @property
    def rate(self) -> float:
        return self.pages / self.seconds


def page_text(seed: int) -> list[str]:
    """Sentences of office words, wrapped to the page width in the bundled font at 12 pt."""
    rng = random.Random(seed)
    font = ImageFont.load_default(size=DPI // 6)
    width = PAGE_PX[0] - 2 * MARGIN_PX
    lines: list[str] = []
    current: list[str] = []
    while len(lines) < LINES_PER_PAGE:
        word = rng.choice(VOCABULARY)
        if not current:
            word = word.capitalize()
        elif rng.random() < 0.12:
            current[-1] += "."
            word = word.capitalize()
        if font.getlength(" ".join([*current, word])) > width:
            lines.append(" ".join(current))
            current = []
        current.append(word)
    return lines


def write_pages(folder: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` PNG pages (with their 300 dpi stated) and the text drawn on each."""
    font = ImageFont.load_default(size=DPI // 6)
    pages = []
    for index in range(count):
        lines = page_text(index)
        image = Image.new("L", PAGE_PX, 255)
        draw = ImageDraw.Draw(image)
        for number, line in enumerate(lines):
            draw.text((MARGIN_PX, MARGIN_PX + number * 88), line, font=font, fill=0)
        path = folder / f"page-{index + 1:02d}.png"
        image.save(path, dpi=(DPI, DPI))
        pages.append((path, "\n".join(lines)))
    return pages


# --- readers -------------------------------------------------------------------------------------


def _start_worker(tessdata: str | None) -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"
    if tessdata:
        os.environ["TESSDATA_PREFIX"] = tessdata


def _warm(_: int) -> float:
    """Creates the engines (``eng`` and ``osd``) in this worker; returns how long that took."""
    started = time.perf_counter()
    ocr.recognize(Image.new("L", (64, 64), 255))
    time.sleep(0.2)  # keeps this worker busy so the pool hands the next warm-up to the other one
    return time.perf_counter() - started


def _recognize_file(path: str, orientation: bool, deskew: bool) -> str:
    with Image.open(path) as image:
        return ocr.recognize(image, dpi=DPI, detect_orientation=orientation, deskew=deskew).text


class Pool:
    """Spawned processes, each with its engines made before any page is timed."""

    def __init__(self, workers: int, tessdata: str | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.executor = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(tessdata,))
        self.startup_s = list(self.executor.map(_warm, range(workers)))

    def read(self, paths: list[Path], *, orientation: bool = True, deskew: bool = True) -> list[str]:
        count = len(paths)
        texts = self.executor.map(
            _recognize_file, [str(p) for p in paths], [orientation] * count, [deskew] * count
        )
        return list(texts)

    def close(self) -> None:
        self.executor.shutdown()


def tesseract_command(paths: list[Path], tessdata: Path | None) -> list[str]:
    """One ``tesseract PAGE stdout`` per page, as a shell pipeline or OCRmyPDF would run it."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    extra = ["--tessdata-dir", str(tessdata)] if tessdata else []
    texts = []
    for path in paths:
        done = subprocess.run(
            ["tesseract", str(path), "stdout", *extra], env=env, capture_output=True, text=True, check=True
        )
        texts.append(done.stdout)
    return texts


def timed(read: Callable[[], list[str]], truths: list[str]) -> Run:
    started = time.perf_counter()
    texts = read()
    seconds = time.perf_counter() - started
    rates = [character_error_rate(text, truth) for text, truth in zip(texts, truths, strict=True)]
    return Run(seconds, len(texts), report.median(rates))


# --- the benchmark -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    label: str
    processes: int
    read: Callable[[list[Path]], list[str]]


def pipeline_reader(workers: int) -> Callable[[list[Path]], list[str]]:
    """The product's path: the pages as one scanned PDF through the ``document`` pipeline, its
    pages spread over ``workers`` parser processes (started, with their engines, before timing)."""
    pipeline = get_pipeline("document")
    context = OfflineContext(Limits(parse_workers=workers))
    params = pipeline.validate_params({"codes": False, "dpi": DPI})

    def read(paths: list[Path]) -> list[str]:
        scan = paths[0].parent / f"scan-{len(paths)}.pdf"
        if not scan.exists():
            scan.write_bytes(scanned_pdf([Image.open(path) for path in paths], dpi=DPI))
        result = run_pipeline(pipeline, local_document(scan), params, context)
        return [record.data["text"] for record in result.records if record.kind == "page"]

    sandbox = sandbox_for(context.limits)
    list(sandbox.map(_warm, range(workers), deadline=Deadline.start(120), subject="warm-up"))
    return read


def plans(one: Pool, two: Pool) -> list[Plan]:
    """The readers, the tesseract command first (the baseline) when it is installed."""
    found: list[Plan] = []
    if shutil.which("tesseract"):
        found += [
            Plan(
                "command",
                "tesseract command, Debian 5.3 + its eng",
                1,
                partial(tesseract_command, tessdata=None),
            ),
            Plan(
                "command-wheel-eng",
                "tesseract command, the wheel's eng",
                1,
                partial(tesseract_command, tessdata=ocr.tessdata_dir()),
            ),
        ]
    found += [
        Plan(
            "recognize-plain",
            "recognize, no orientation/deskew",
            1,
            partial(one.read, orientation=False, deskew=False),
        ),
        Plan("recognize-deskew", "recognize, deskew only", 1, partial(one.read, orientation=False)),
        Plan("recognize", "recognize", 1, one.read),
        Plan("recognize-2", "recognize", 2, two.read),
        Plan("pipeline", "document pipeline, one scanned PDF", 1, pipeline_reader(1)),
        Plan("pipeline-2", "document pipeline, one scanned PDF", 2, pipeline_reader(2)),
    ]
    return found


def run(*, quick: bool) -> report.BenchReport:
    sizes = Sizes(pages=2, repeats=1) if quick else Sizes(pages=8, repeats=3)
    bench = report.BenchReport(
        name="ocr",
        title=f"OCR throughput, {sizes.pages} generated A4 pages at {DPI} dpi (median of {sizes.repeats})",
        columns=["reader", "processes", "pages/s", "s/page", "CER", "vs tesseract command"],
    )
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-ocr-") as scratch:
        report.progress(f"ocr: drawing {sizes.pages} pages")
        pages = write_pages(Path(scratch), sizes.pages)
        paths = [path for path, _ in pages]
        truths = [truth for _, truth in pages]
        one, two = Pool(1), Pool(2)
        readers = plans(one, two)
        runs: dict[str, list[Run]] = {plan.name: [] for plan in readers}
        try:
            for attempt in range(sizes.repeats):
                for plan in readers:
                    report.progress(f"ocr {plan.name} run {attempt + 1}/{sizes.repeats}")
                    runs[plan.name].append(timed(partial(plan.read, paths), truths))
        finally:
            for pool in (one, two):
                pool.close()
            for workers in (1, 2):
                sandbox_for(Limits(parse_workers=workers)).close()
    rates = {name: report.median([r.rate for r in outcomes]) for name, outcomes in runs.items()}
    baseline = rates.get("command")
    for plan in readers:
        outcomes = runs[plan.name]
        bench.rows.append(
            [
                plan.label,
                str(plan.processes),
                f"{rates[plan.name]:.2f}",
                f"{1 / rates[plan.name]:.2f}",
                f"{report.median([r.cer for r in outcomes]):.3f}",
                report.ratio(rates[plan.name] / baseline) if baseline else "-",
            ]
        )
    scaling = rates["pipeline-2"] / rates["pipeline"]
    bare_scaling = rates["recognize-2"] / rates["recognize"]
    detection_s = 1 / rates["recognize"] - 1 / rates["recognize-plain"]
    deskew_s = 1 / rates["recognize-deskew"] - 1 / rates["recognize-plain"]
    bench.targets = [
        report.Target(
            f"the pipeline on 2 parser processes >= {TARGET_SCALING}x one: {scaling:.2f}x"
            f" (recognize alone: {bare_scaling:.2f}x)",
            None if quick else scaling >= TARGET_SCALING,
        ),
    ]
    bench.notes += [
        f"orientation + deskew detection cost {detection_s:.2f} s a page"
        f" ({detection_s * rates['recognize']:.0%} of recognize's time) on these upright, straight pages;"
        f" of which the deskew measurement {deskew_s:.2f} s (its layout analysis is reused by recognition)",
        f"engine start (eng + osd) in a fresh process: {report.median(one.startup_s):.2f} s, paid once",
        "the command starts a process and loads its model for every page; recognize keeps one engine",
        "CER: median over pages of the Levenshtein distance / truth length, whitespace collapsed",
    ]
    if baseline is None:
        bench.notes.append("no tesseract command (scripts/system-packages.sh installs it): no baseline")
    bench.data = {
        "sizes": asdict(sizes),
        "runs": {name: [asdict(r) for r in outcomes] for name, outcomes in runs.items()},
        "median_rates": rates,
        "engine_start_s": {"1": one.startup_s, "2": two.startup_s},
        "detection_s_per_page": detection_s,
        "deskew_measurement_s_per_page": deskew_s,
        "python": sys.version,
    }
    return bench
