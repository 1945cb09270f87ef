"""One file's result from its pages' codes: ``code`` records, findings, and the summary a batch
counts (codes, matched targets, the status "no code" / "1 code" / "N codes")."""

from __future__ import annotations

from conveyor.content import Finding, PipelineResult, Record
from conveyor.pipelines.codescan.matching import CodeMatch, ocr_matches, text_layer_matches
from conveyor.pipelines.codescan.params import CodescanParams
from conveyor.pipelines.codescan.reading import PageCodes
from conveyor.pipelines.codescan.targets import TargetSet


def file_result(pages: list[PageCodes], targets: TargetSet | None, options: CodescanParams) -> PipelineResult:
    """Readings of one page (its text layer, and OCR when it had too little text) merge into one
    set of codes: each code once per page, the text layer's reading first."""
    by_page: dict[int, dict[str, CodeMatch]] = {}
    for page in pages:
        kept = by_page.setdefault(page.number, {})
        found = text_layer_matches(page, targets) if page.source != "ocr" else ocr_matches(page, targets)
        for match in found:
            kept.setdefault(match.found.code, match)
    matches = [match for number in sorted(by_page) for match in by_page[number].values()]
    result = PipelineResult(records=[Record(kind="code", data=match.as_data()) for match in matches])
    _add_findings(result, pages, matches, options)
    codes = sorted({match.found.code for match in matches})
    matched = sorted({match.target for match in matches if match.target is not None})
    result.summary = {
        "pages": len(by_page),
        "ocr_pages": sum(1 for page in pages if page.source == "ocr"),
        "codes": len(codes),
        "code_list": codes,
        "matched_targets": matched,
        "matches": len(matched),
        "fuzzy_matches": sum(1 for match in matches if match.match == "fuzzy"),
        "status": status(len(codes)),
    }
    return result


def status(codes: int) -> str:
    """A file's status by its distinct codes: "no code", "1 code", "2 codes"."""
    if codes == 0:
        return "no code"
    return "1 code" if codes == 1 else f"{codes} codes"


def _add_findings(
    result: PipelineResult, pages: list[PageCodes], matches: list[CodeMatch], options: CodescanParams
) -> None:
    unread = sorted({page.number for page in pages if page.needs_ocr and page.source != "ocr"})
    if unread and not options.ocr:
        listed = ", ".join(map(str, unread[:20])) + (", ..." if len(unread) > 20 else "")
        result.findings.append(
            Finding(
                rule="no_text_layer",
                severity="warning",
                message=f"page(s) {listed} have no text layer and were not read: the param 'ocr' is off",
                ref=f"page:{unread[0]}",
            )
        )
    for match in matches:
        if match.match == "fuzzy":
            result.findings.append(
                Finding(
                    rule="fuzzy_match",
                    severity="warning",
                    message=(
                        f"page {match.page}: OCR read {match.found.as_written!r}, which matches the target"
                        f" {match.target} only if it misread letters and digits (O/0, I/1, S/5, B/8...)"
                    ),
                    ref=f"page:{match.page}",
                )
            )
            result.review.ask("fuzzy_match")
