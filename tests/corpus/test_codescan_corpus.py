"""Every real PDF of the corpus (valid, edge-case, broken, fuzzed) through the ``codescan`` pipeline,
text layer only: each ends as a result or an InputError naming the file, and reports every code an
independent reading finds on one line, and nothing that reading cannot find on a line or across
a line end."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pypdfium2 as pdfium

from conveyor.content import Limits, OfflineContext
from conveyor.errors import InputError
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline
from conveyor.pipelines.codescan import DEFAULT_PATTERN, normalise_code

LIMITS = Limits(seconds_per_file=30.0, parse_workers=2)


def plain_reading(path: Path) -> tuple[set[str], set[str]] | None:
    """Codes in the text layer by pypdfium2 and ``re`` alone, as (found on one line, found in the
    last word of a line joined to the first of the next); None when pdfium cannot open the file."""
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return None
    pattern = re.compile(DEFAULT_PATTERN, re.IGNORECASE)
    on_a_line: set[str] = set()
    joined: set[str] = set()
    try:
        for index in range(len(document)):
            text = document[index].get_textpage().get_text_bounded()
            lines = text.replace("\x02", "-\n").replace("\ufffe", "-\n").replace("\t", " ").splitlines()
            for line in lines:
                on_a_line.update(normalise_code(code) for code in pattern.findall(line))
            for first, second in itertools.pairwise(lines):
                pair = "".join(first.split()[-1:] + second.split()[:1])
                joined.update(normalise_code(code) for code in pattern.findall(pair))
    finally:
        document.close()
    return on_a_line, joined


def test_every_corpus_pdf_ends_as_codes_or_an_input_error(corpus_dir: Path) -> None:
    files = sorted((corpus_dir / "pdf").glob("*/*.pdf"))
    assert len(files) > 50
    pipeline = get_pipeline("codescan")
    params = pipeline.validate_params({"ocr": False})
    results = errors = 0
    for path in files:
        try:
            result = run_pipeline(pipeline, local_document(path), params, OfflineContext(LIMITS))
        except InputError as error:
            assert str(error).startswith(f"{path.name}: "), str(error)
            errors += 1
            continue
        results += 1
        summary = result.summary
        codes = [record.data for record in result.records]
        assert summary["codes"] == len(summary["code_list"]) == len({code["code"] for code in codes})
        assert summary["pages"] > 0
        expected = plain_reading(path)
        if expected is not None:
            on_a_line, joined = expected
            assert on_a_line <= set(summary["code_list"]) <= on_a_line | joined, path.name
    assert results > 40
    assert errors > 5
