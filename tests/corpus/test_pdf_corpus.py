"""Every real PDF of the corpus (valid, edge-case, broken, fuzzed) through the ``document`` pipeline:
each ends as a result or an InputError within the time limit, never a crash, a hang or a traceback,
and the parser pool serves the next file after each one. Passwords from the manifest open the
encrypted files."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.content import Limits, OfflineContext
from conveyor.errors import InputError
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline

SECONDS_PER_FILE = 30.0
LIMITS = Limits(seconds_per_file=SECONDS_PER_FILE, parse_workers=2)
PASSWORD = re.compile(r"(?:user )?password '([^']*)'|user '([^']*)'")


def manifest(corpus_dir: Path) -> dict[str, str]:
    rows = (corpus_dir / "pdf" / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {row.split("\t")[0]: row.split("\t")[5] for row in rows if row.count("\t") >= 5}


def run(path: Path, params: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    document = local_document(path)
    pipeline = get_pipeline("document")
    result = run_pipeline(pipeline, document, pipeline.validate_params(params), OfflineContext(LIMITS))
    return [record.as_json() for record in result.records], result.summary


def test_every_corpus_pdf_ends_as_a_result_or_an_input_error(corpus_dir: Path) -> None:
    notes = manifest(corpus_dir)
    files = sorted((corpus_dir / "pdf").glob("*/*.pdf"))
    assert len(files) > 50
    outcomes: dict[str, str] = {}
    for path in files:
        relative = f"{path.parent.name}/{path.name}"
        match = PASSWORD.search(notes.get(relative, ""))
        params: dict[str, Any] = {"ocr": "never"}
        if match and "empty" not in notes.get(relative, ""):
            params["password"] = match.group(1) or match.group(2)
        started = time.monotonic()
        try:
            records, summary = run(path, params)
        except InputError as error:
            message = str(error)
            assert path.name in message, message
            assert "Traceback" not in message
            outcomes[relative] = f"error: {message}"
        else:
            pages = [record for record in records if record["kind"] == "page"]
            assert len(pages) == summary["pages"] > 0
            outcomes[relative] = f"{summary['pages']} pages"
        finally:
            # A hang is cut off at the file's deadline: nothing may run (much) past it.
            assert time.monotonic() - started < SECONDS_PER_FILE + 5, relative
    print("\n".join(f"{name}: {outcome}" for name, outcome in outcomes.items()))
    valid = {name: outcome for name, outcome in outcomes.items() if name.startswith("valid/")}
    failed_valid = {name: outcome for name, outcome in valid.items() if outcome.startswith("error")}
    assert not failed_valid, failed_valid
    # The sanity check still works after every broken file: the pool was not left broken.
    records, _ = run(corpus_dir / "pdf" / "valid" / "ocrmypdf_trivial.pdf", {})
    assert records[0]["kind"] == "page"


def test_encrypted_pdfs_need_their_password(corpus_dir: Path) -> None:
    path = corpus_dir / "pdf" / "valid" / "unstructured_password.pdf"
    with pytest.raises(InputError, match="encrypted; submit it again with the param 'password'"):
        run(path, {"ocr": "never"})
    records, _ = run(path, {"ocr": "never", "password": "password"})
    assert "File with password" in records[0]["data"]["text"]


def test_text_layer_matches_the_upstream_expectation(corpus_dir: Path) -> None:
    """docling's regression output for a 4-page document: every paragraph's words are in our text."""
    path = corpus_dir / "pdf" / "valid" / "docling_normal_4pages.pdf"
    expected = (corpus_dir / "pdf" / "expected" / "docling_normal_4pages.md").read_text(encoding="utf-8")
    records, summary = run(path, {"ocr": "never", "codes": False})
    assert summary["pages"] == 4 and summary["by_source"]["text-layer"] == 4
    ours = set(" ".join(record["data"]["text"] for record in records).split())
    theirs = [word for word in re.sub(r"[#*|`_]", " ", expected).split() if word.isalpha() and len(word) > 3]
    found = sum(word in ours for word in theirs)
    assert found / len(theirs) > 0.95, (found, len(theirs))
