"""JSONTestSuite through the records pipeline, on the whole-file path (orjson) and the streaming
path (ijson): what must be accepted lands, what must be rejected is an InputError, and nothing
ever fails with any other exception."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from conveyor.content import DocumentInput, OfflineContext
from conveyor.errors import InputError
from conveyor.pipelines.records import RecordsPipeline

pytestmark = pytest.mark.corpus

OUTCOMES = ("landed", "input error", "input error (scalar)")
PIPELINES = {
    "whole": RecordsPipeline(),
    "streaming": RecordsPipeline(whole_file_max_bytes=0),
}


@pytest.fixture(scope="module")
def json_corpus(corpus_dir: Path) -> tuple[Path, list[tuple[str, str]]]:
    """The JSON set's folder and its (file, expected) rows, from MANIFEST.tsv."""
    folder = corpus_dir / "json"
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.skip(f"no JSON corpus manifest at {manifest}")
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = [(row["file"], row["expected"]) for row in csv.DictReader(handle, delimiter="\t")]
    return folder, [row for row in rows if row[0].endswith(".json")]


def _outcome(pipeline: RecordsPipeline, path: Path) -> str:
    """ "landed", "input error", "input error (scalar)", or "crashed: ..." for any other exception."""
    data = path.read_bytes()
    document = DocumentInput(
        filename=path.name,
        media_type="application/json",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        open=lambda: io.BytesIO(data),
    )
    try:
        result = pipeline.run(document, {}, OfflineContext())
        keys = [record.key for record in result.records]
    except InputError as error:
        return "input error (scalar)" if "top-level value is" in error.message else "input error"
    except Exception as error:  # the point of the test: name it instead of stopping at it
        return f"crashed: {error!r}"
    return "landed" if None not in keys else "landed without a key"


def _is_scalar(path: Path) -> bool:
    return not isinstance(json.loads(path.read_bytes()), dict | list)


@pytest.mark.parametrize("path_name", PIPELINES)
def test_valid_json_lands_or_is_a_refused_scalar(
    json_corpus: tuple[Path, list[tuple[str, str]]], path_name: str
) -> None:
    folder, rows = json_corpus
    files = [folder / name for name, expected in rows if expected.startswith("ACCEPT")]
    assert files, "the manifest lists no ACCEPT files"
    wrong = []
    for path in files:
        outcome = _outcome(PIPELINES[path_name], path)
        wanted = "input error (scalar)" if _is_scalar(path) else "landed"
        if outcome != wanted:
            wrong.append(f"{path.name}: {outcome}, expected {wanted}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path_name", PIPELINES)
def test_invalid_json_is_an_input_error(
    json_corpus: tuple[Path, list[tuple[str, str]]], path_name: str
) -> None:
    folder, rows = json_corpus
    files = [folder / name for name, expected in rows if expected.startswith("REJECT")]
    assert files, "the manifest lists no REJECT files"
    wrong = [
        f"{path.name}: {outcome}"
        for path in files
        if (outcome := _outcome(PIPELINES[path_name], path)) != "input error"
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path_name", PIPELINES)
def test_ambiguous_json_never_fails_otherwise(
    json_corpus: tuple[Path, list[tuple[str, str]]], path_name: str
) -> None:
    folder, rows = json_corpus
    files = [
        folder / name
        for name, expected in rows
        if not expected.startswith(("ACCEPT", "REJECT")) and (folder / name).is_file()
    ]
    assert files, "the manifest lists no implementation-defined files"
    wrong = [
        f"{path.name}: {outcome}"
        for path in files
        if (outcome := _outcome(PIPELINES[path_name], path)) not in OUTCOMES
    ]
    assert not wrong, "\n".join(wrong)
