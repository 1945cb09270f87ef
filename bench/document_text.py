"""Text PDFs through the ``document`` pipeline beside a bare pypdfium2 loop over the same files.

The pipeline does what the bare loop does (open, text of every page) plus what a service must:
the sniffed-file checks, a look at each page's objects (has it graphics to search for codes, is it
a scan), the parse in a separate process under limits, and the page records. With one parser process the
two are compared core for core (a document's text-layer chunks of 25 pages spread over more
processes when there are more; the OCR benchmark shows that scaling).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pypdfium2 as pdfium
from tests.documents import text_pdf

from bench import report
from conveyor.content import DocumentInput, Limits, OfflineContext
from conveyor.extractors.isolation import sandbox_for
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline

TARGET_OVERHEAD = 0.10
LINES_PER_PAGE = 40
WORDS = [
    "invoice",
    "delivery",
    "pallet",
    "order",
    "shipment",
    "customer",
    "total",
    "amount",
    "due",
    "warehouse",
]


def page_lines(document: int, page: int) -> list[str]:
    return [
        f"{document:04d}-{page:03d}-{line:02d} "
        + " ".join(WORDS[(document + page + line + k) % len(WORDS)] for k in range(9))
        for line in range(LINES_PER_PAGE)
    ]


def write_files(folder: Path, files: int, pages: int) -> list[Path]:
    paths = []
    for number in range(files):
        path = folder / f"text-{number:04d}.pdf"
        path.write_bytes(text_pdf([page_lines(number, page) for page in range(pages)]))
        paths.append(path)
    return paths


def bare_loop(paths: list[Path]) -> int:
    pages = 0
    for path in paths:
        document = pdfium.PdfDocument(str(path))
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            textpage.get_text_bounded()
            textpage.close()
            page.close()
            pages += 1
        document.close()
    return pages


def pipeline_loop(documents: list[DocumentInput], workers: int, codes: bool = True) -> int:
    pipeline = get_pipeline("document")
    context = OfflineContext(Limits(parse_workers=workers))
    params = pipeline.validate_params({"codes": codes})
    pages = 0
    for document in documents:
        result = run_pipeline(pipeline, document, params, context)
        pages += sum(record.kind == "page" for record in result.records)
    return pages


def timed(function: object, *args: object) -> tuple[float, int]:
    started = time.perf_counter()
    pages: int = function(*args)  # type: ignore[operator]
    return time.perf_counter() - started, pages


def run(quick: bool) -> report.BenchReport:
    files, pages_each, repeats = (4, 10, 1) if quick else (40, 25, 5)
    outcome = report.BenchReport(
        name="document_text",
        title=f"Text PDFs: {files} files x {pages_each} pages ({LINES_PER_PAGE} lines each), pages/s",
        columns=["method", "pages/s (median)", "vs bare pypdfium2", "runs"],
    )
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as folder:
        paths = write_files(Path(folder), files, pages_each)
        # Hashing and sniffing happen on intake, before a job exists: not part of the pipeline.
        documents = [local_document(path) for path in paths]
        pipeline_loop(documents[:1], 1)  # start the parser pool (and its forkserver) untimed
        rates: dict[str, list[float]] = {"bare": [], "pipeline": [], "pipeline-codes": []}
        for run_number in range(repeats):
            report.progress(f"text PDFs: run {run_number + 1} of {repeats}")
            for name, function, args in (
                ("bare", bare_loop, (paths,)),
                ("pipeline", pipeline_loop, (documents, 1, False)),
                ("pipeline-codes", pipeline_loop, (documents, 1, True)),
            ):
                seconds, pages = timed(function, *args)
                assert pages == files * pages_each, (name, pages)
                rates[name].append(pages / seconds)
        sandbox_for(Limits(parse_workers=1)).close()
    bare = report.median(rates["bare"])
    labels = {
        "bare": "bare pypdfium2 loop, 1 process",
        "pipeline": "document pipeline, text only (codes=false), 1 parser process",
        "pipeline-codes": "document pipeline, default (looks for codes), 1 parser process",
    }
    for name, label in labels.items():
        value = report.median(rates[name])
        outcome.rows.append(
            [
                label,
                report.rate(value),
                report.ratio(value / bare),
                ", ".join(f"{r:,.0f}" for r in rates[name]),
            ]
        )
    one = report.median(rates["pipeline"])
    overhead = 1 - one / bare
    outcome.targets.append(
        report.Target(
            f"pipeline overhead at most {TARGET_OVERHEAD:.0%} against the bare loop, core for core,"
            f" doing the same work (text only): measured {overhead:.1%}",
            None if quick else overhead <= TARGET_OVERHEAD,
        )
    )
    with_codes = 1 - report.median(rates["pipeline-codes"]) / bare
    outcome.notes.append(
        f"the default also walks every page's objects for pictures and drawings where codes may be"
        f" (none here, so no page is drawn): {with_codes:.1%} under the bare loop"
    )
    outcome.data = {"rates": rates, "files": files, "pages_per_file": pages_each, "overhead": overhead}
    return outcome
