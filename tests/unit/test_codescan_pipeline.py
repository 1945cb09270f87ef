"""The ``codescan`` pipeline end to end in-process, through real pdfium and Tesseract in the parser
processes, on drawings generated in tests/drawings.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from conveyor.content import Limits, OfflineContext, PipelineResult
from conveyor.errors import InputError
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline
from conveyor.pipelines.codescan import CodescanPipeline
from conveyor.pipelines.codescan.results import status
from tests.documents import png_bytes, text_image
from tests.drawings import corrupt_pdf, drawing_pdf

PIPELINE = get_pipeline("codescan")
LIMITS = Limits(parse_workers=2)


def scan(
    path: Path, params: dict[str, Any] | None = None
) -> tuple[PipelineResult, list[dict[str, Any]], OfflineContext]:
    context = OfflineContext(LIMITS)
    result = run_pipeline(PIPELINE, local_document(path), PIPELINE.validate_params(params or {}), context)
    records = [record.as_json() for record in result.records]
    assert {record["kind"] for record in records} <= {"code"}
    assert all(record["key"] is None for record in records)
    return result, [record["data"] for record in records], context


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def brief(codes: list[dict[str, Any]]) -> list[tuple[str, int, str | None, str | None]]:
    return [(code["code"], code["page"], code["target"], code["match"]) for code in codes]


def test_the_registry_knows_codescan() -> None:
    assert isinstance(PIPELINE, CodescanPipeline)
    assert PIPELINE.name == "codescan"
    assert PIPELINE.shared_keys is False


def test_text_layer_codes_match_the_targets_exactly_as_generated(tmp_path: Path) -> None:
    written = ["HOLE-123", "HOLE 77", "hole\u20130042", "HOLE-5", "HOLE-6"]
    path = write(tmp_path, "drawing.pdf", drawing_pdf(written, pages=2))
    targets = ["hole-123", "HOLE 0042", "HOLE-6", "HOLE-999"]
    result, codes, _ = scan(path, {"targets": targets})
    assert brief(codes) == [
        ("HOLE-123", 1, "HOLE-123", "exact"),
        ("HOLE-0042", 1, "HOLE-0042", "exact"),
        ("HOLE-6", 1, "HOLE-6", "exact"),
        ("HOLE-77", 2, None, None),
        ("HOLE-5", 2, None, None),
    ]
    assert [code["as_written"] for code in codes] == [
        "HOLE-123",
        "hole\u20130042",
        "HOLE-6",
        "HOLE 77",
        "HOLE-5",
    ]
    assert {code["source"] for code in codes} == {"text-layer"}
    assert {code["confidence"] for code in codes} == {1.0}
    assert result.summary == {
        "pages": 2,
        "ocr_pages": 0,
        "codes": 5,
        "code_list": ["HOLE-0042", "HOLE-123", "HOLE-5", "HOLE-6", "HOLE-77"],
        "matched_targets": ["HOLE-0042", "HOLE-123", "HOLE-6"],
        "matches": 3,
        "fuzzy_matches": 0,
        "status": "5 codes",
    }
    assert result.findings == []
    assert not result.review.required


def test_codes_split_across_a_line_end_are_found_joined(tmp_path: Path) -> None:
    written = ["HOLE-123", "HOLE 7", "hole\u20130042", "HOLE-9"]
    split = ["HOLE 7", "hole\u20130042", "HOLE-9"]
    path = write(tmp_path, "split.pdf", drawing_pdf(written, split=split))
    result, codes, _ = scan(path, {"targets": ["HOLE-7", "HOLE-9", "HOLE-0042"]})
    assert brief(codes) == [
        ("HOLE-123", 1, None, None),
        ("HOLE-7", 1, "HOLE-7", "exact"),
        ("HOLE-0042", 1, "HOLE-0042", "exact"),
        ("HOLE-9", 1, "HOLE-9", "exact"),
    ]
    # The line break is gone from what was written; the dash pdfium turned into a mark is back.
    assert [code["as_written"] for code in codes] == ["HOLE-123", "HOLE7", "hole\u20130042", "HOLE-9"]
    assert result.summary["matches"] == 3


def test_without_targets_every_code_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "drawing.pdf", drawing_pdf(["HOLE-1", "HOLE-2", "HOLE-3"], split=["HOLE-3"]))
    result, codes, _ = scan(path)
    assert brief(codes) == [("HOLE-1", 1, None, None), ("HOLE-2", 1, None, None), ("HOLE-3", 1, None, None)]
    assert result.summary["code_list"] == ["HOLE-1", "HOLE-2", "HOLE-3"]
    assert result.summary["matched_targets"] == []
    assert result.summary["matches"] == 0
    assert result.summary["status"] == "3 codes"


def test_a_code_is_reported_once_per_page_it_is_on(tmp_path: Path) -> None:
    # Code i goes on page i % 2 + 1: HOLE-1 twice on page 1 (two spellings), once on page 2.
    path = write(tmp_path, "repeat.pdf", drawing_pdf(["HOLE-1", "HOLE-1", "hole 1", "HOLE-2"], pages=2))
    result, codes, _ = scan(path, {"targets": ["HOLE-1"]})
    assert brief(codes) == [
        ("HOLE-1", 1, "HOLE-1", "exact"),
        ("HOLE-1", 2, "HOLE-1", "exact"),
        ("HOLE-2", 2, None, None),
    ]
    assert codes[0]["as_written"] == "HOLE-1"  # the first reading on the page is kept
    assert result.summary["codes"] == 2
    assert result.summary["matches"] == 1


@pytest.mark.parametrize(
    ("written", "expected"),
    [([], "no code"), (["HOLE-1"], "1 code"), (["HOLE-1", "HOLE-2", "HOLE-3"], "3 codes")],
)
def test_status_counts_distinct_codes(tmp_path: Path, written: list[str], expected: str) -> None:
    result, _, _ = scan(write(tmp_path, "drawing.pdf", drawing_pdf(written)))
    assert result.summary["status"] == expected
    assert result.summary["codes"] == len(written)


def test_status_words() -> None:
    assert [status(count) for count in (0, 1, 2, 12)] == ["no code", "1 code", "2 codes", "12 codes"]


def test_text_layer_codes_never_match_fuzzily(tmp_path: Path) -> None:
    # HOIE-108 is HOLE-108 with L read as I, but a text layer is what the drawing says.
    path = write(tmp_path, "drawing.pdf", drawing_pdf(["HOIE-108"]))
    result, codes, _ = scan(path, {"targets": ["HOLE-108"]})
    assert brief(codes) == [("HOIE-108", 1, None, None)]
    assert result.summary["fuzzy_matches"] == 0
    assert result.summary["matches"] == 0


def test_a_custom_pattern_finds_only_its_codes(tmp_path: Path) -> None:
    path = write(tmp_path, "valves.pdf", drawing_pdf(["V-101", "HOLE-1", "v\u2013102", "V-1"]))
    result, codes, _ = scan(path, {"pattern": r"\bV-\d{3}\b"})
    assert [(code["code"], code["as_written"]) for code in codes] == [
        ("V-101", "V-101"),
        ("V-102", "v\u2013102"),
    ]
    assert result.summary["status"] == "2 codes"


# --- scans ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scanned_drawing(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineResult, list[dict[str, Any]]]:
    """One scanned page, read once by the tests below: HOLE-IO8 is printed with a letter I and O,
    as a smudged print reads, and Tesseract reads exactly that; HOLE 77 is broken across lines."""
    path = write(
        tmp_path_factory.mktemp("scan"),
        "scan.pdf",
        drawing_pdf(["HOLE-123", "HOLE-IO8", "HOLE 77", "HOLE-555"], split=["HOLE 77"], scanned=True),
    )
    result, codes, context = scan(path, {"targets": ["HOLE-123", "HOLE-108", "HOLE-77", "HOLE-999"]})
    assert context.events[-1] == ("PROGRESS", {"value": 100.0})
    return result, codes


def test_a_scanned_page_is_read_by_ocr_and_its_codes_matched(
    scanned_drawing: tuple[PipelineResult, list[dict[str, Any]]],
) -> None:
    result, codes = scanned_drawing
    exact = [code for code in codes if code["match"] == "exact"]
    assert brief(exact) == [("HOLE-123", 1, "HOLE-123", "exact"), ("HOLE-77", 1, "HOLE-77", "exact")]
    assert [code["as_written"] for code in exact] == ["HOLE-123", "HOLE77"]
    assert {code["source"] for code in codes} == {"ocr"}
    assert all(0.8 < code["confidence"] < 1.0 for code in exact)
    assert ("HOLE-555", 1, None, None) in brief(codes)
    assert result.summary["ocr_pages"] == 1
    assert result.summary["matched_targets"] == ["HOLE-108", "HOLE-123", "HOLE-77"]
    assert result.summary["matches"] == 3


def test_an_ocr_confusion_is_a_fuzzy_match_with_lower_confidence(
    scanned_drawing: tuple[PipelineResult, list[dict[str, Any]]],
) -> None:
    result, codes = scanned_drawing
    [fuzzy] = [code for code in codes if code["match"] == "fuzzy"]
    assert (fuzzy["as_written"], fuzzy["target"], fuzzy["source"]) == ("HOLE-IO8", "HOLE-108", "ocr")
    assert fuzzy["code"] == "HOLE-IO-8"  # what was read, never the target's spelling
    assert fuzzy["confidence"] < min(code["confidence"] for code in codes if code["match"] == "exact")
    assert fuzzy["confidence"] <= 0.6
    assert result.summary["fuzzy_matches"] == 1
    [finding] = [finding for finding in result.findings if finding.rule == "fuzzy_match"]
    assert "HOLE-IO8" in finding.message
    assert "HOLE-108" in finding.message
    assert result.review.reasons == ["fuzzy_match"]


def test_a_scanned_page_with_ocr_off_is_reported_unread(tmp_path: Path) -> None:
    # A tiny scan: the page is never drawn for OCR, so its size costs nothing.
    data = drawing_pdf(["HOLE-1"], scanned=True)
    result, codes, _ = scan(write(tmp_path, "scan.pdf", data), {"ocr": False})
    assert codes == []
    assert result.summary["status"] == "no code"
    assert result.summary["ocr_pages"] == 0
    [finding] = result.findings
    assert finding.rule == "no_text_layer"
    assert "'ocr' is off" in finding.message


# --- bad input --------------------------------------------------------------------------------------


def test_a_corrupt_pdf_fails_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broken drawing.pdf", corrupt_pdf())
    assert local_document(path).media_type == "application/pdf"
    with pytest.raises(InputError, match=r"^broken drawing\.pdf: not a readable PDF"):
        scan(path)


def test_an_encrypted_pdf_fails_naming_the_file(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="user")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.text(20, 20, "HOLE-1")
    with pytest.raises(InputError, match=r"^locked\.pdf: the PDF is encrypted"):
        scan(write(tmp_path, "locked.pdf", bytes(pdf.output())))


def test_a_file_that_is_not_a_pdf_fails_naming_the_file_and_its_type(tmp_path: Path) -> None:
    path = write(tmp_path, "drawing.pdf", png_bytes(text_image(["HOLE-1"])))
    with pytest.raises(InputError, match=r"^drawing\.pdf: the codescan pipeline reads PDFs; .* a PNG image"):
        scan(path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pattern": "HOLE-(\\d+"}, r"^param 'pattern': .*not a regular expression"),
        ({"pattern": "\\d*"}, r"^param 'pattern': .*matches the empty string"),
        ({"pattern": "H" * 501}, r"^param 'pattern': .*at most 500 characters"),
        ({"targets": "HOLE-1"}, r"^param 'targets'"),
        ({"targets": ["HOLE-1", 7]}, r"^param 'targets\.1'"),
        ({"dpi": 1200}, r"^param 'dpi'"),
        ({"languages": "klingon"}, r"^param 'languages': OCR language 'klingon' is not installed"),
        ({"colour": "red"}, r"^param 'colour': Extra inputs are not permitted"),
    ],
)
def test_bad_params_are_refused_by_name(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        PIPELINE.validate_params(params)


def test_params_normalise_the_targets_and_keep_their_order() -> None:
    checked = PIPELINE.validate_params({"targets": ["hole 7", "HOLE-7", "", "HOLE\u20130042", "hole-1"]})
    assert checked["targets"] == ["HOLE-7", "HOLE-0042", "HOLE-1"]
    assert PIPELINE.validate_params({})["targets"] is None
    assert PIPELINE.validate_params({"ocr": False, "languages": "klingon"})["ocr"] is False


def test_run_refuses_targets_that_are_not_a_list_of_codes(tmp_path: Path) -> None:
    path = write(tmp_path, "drawing.pdf", drawing_pdf(["HOLE-1"]))
    with pytest.raises(InputError, match=r"^param 'targets'"):
        run_pipeline(PIPELINE, local_document(path), {"targets": "HOLE-1"}, OfflineContext(LIMITS))
    with pytest.raises(InputError, match=r"^param 'targets'"):
        run_pipeline(PIPELINE, local_document(path), {"targets": [["HOLE-1"]]}, OfflineContext(LIMITS))


# --- several files at once ----------------------------------------------------------------------------


def test_run_many_gives_each_file_the_result_run_gives_it_and_its_own_error(tmp_path: Path) -> None:
    targets = {"targets": ["HOLE-1", "HOLE-7", "HOLE-40"]}
    good = [
        write(tmp_path, f"drawing-{index}.pdf", drawing_pdf([f"HOLE-{index}", "HOLE-40"], split=["HOLE-40"]))
        for index in range(20)
    ]
    named_wrong = write(tmp_path, "notes.txt", drawing_pdf(["HOLE-7"]))
    broken = write(tmp_path, "broken.pdf", corrupt_pdf())
    image = write(tmp_path, "photo.pdf", png_bytes(text_image(["HOLE-1"])))
    paths = [*good[:10], broken, named_wrong, image, *good[10:]]
    documents = [local_document(path) for path in paths]
    pipeline = CodescanPipeline()
    outcomes = list(pipeline.run_many(documents, PIPELINE.validate_params(targets), OfflineContext(LIMITS)))
    assert len(outcomes) == len(paths)
    for path, document, outcome in zip(paths, documents, outcomes, strict=True):
        if path in (broken, image):
            assert isinstance(outcome, InputError)
            assert str(outcome).startswith(f"{path.name}: ")
            continue
        assert isinstance(outcome, PipelineResult), outcome
        alone = run_pipeline(PIPELINE, document, PIPELINE.validate_params(targets), OfflineContext(LIMITS))
        assert [record.as_json() for record in outcome.records] == [
            record.as_json() for record in alone.records
        ]
        assert outcome.summary == alone.summary
        assert [finding.as_json() for finding in outcome.findings] == [
            finding.as_json() for finding in alone.findings
        ]
    first = outcomes[0]
    assert isinstance(first, PipelineResult)
    assert first.summary["matched_targets"] == ["HOLE-40"]
    wrong_name = outcomes[11]
    assert isinstance(wrong_name, PipelineResult)
    assert [finding.rule for finding in wrong_name.findings] == ["extension_mismatch"]


def test_run_many_reads_a_group_again_file_by_file_when_the_group_call_fails(tmp_path: Path) -> None:
    # A file that vanished makes pypdfium2 raise FileNotFoundError, which no reader expects: the
    # parser call for the whole group fails, and only that file fails when each is read alone.
    present = [write(tmp_path, f"drawing-{index}.pdf", drawing_pdf([f"HOLE-{index}"])) for index in range(3)]
    scanned = write(tmp_path, "scan.pdf", drawing_pdf(["HOLE-77"], scanned=True))
    vanished = write(tmp_path, "vanished.pdf", drawing_pdf(["HOLE-9"]))
    documents = [local_document(path) for path in [present[0], vanished, scanned, *present[1:]]]
    vanished.unlink()
    pipeline = CodescanPipeline()
    outcomes = list(pipeline.run_many(documents, PIPELINE.validate_params({}), OfflineContext(LIMITS)))
    assert isinstance(outcomes[1], InputError)
    assert str(outcomes[1]).startswith("vanished.pdf: ")
    results = [outcome for outcome in outcomes if isinstance(outcome, PipelineResult)]
    codes = [result.summary["code_list"] for result in results]
    assert codes == [["HOLE-0"], ["HOLE-77"], ["HOLE-1"], ["HOLE-2"]]
    assert [result.summary["ocr_pages"] for result in results] == [0, 1, 0, 0]
