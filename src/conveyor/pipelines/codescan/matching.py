"""A page's codes matched against the targets: exact on normal forms; for text read by OCR, also
fuzzy, where a reading equals a target only after OCR's usual confusions (O/0, I/1, L/1, S/5, B/8,
Z/2).

Text-layer codes never match fuzzily: the text is what the drawing says. OCR text is searched for
fuzzy readings beyond what the pattern finds, since a confusion usually breaks the pattern itself
("HOLE-1O8" has a letter among its digits): every run of one to three words is a candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from conveyor.pipelines.codescan.codes import Found, normalise_code
from conveyor.pipelines.codescan.reading import PageCodes
from conveyor.pipelines.codescan.targets import TargetSet

MatchKind = Literal["exact", "fuzzy"]
TEXT_LAYER_CONFIDENCE: Final = 1.0
# A fuzzy match's confidence is the page's OCR confidence times this: always under an exact
# match read from the same page.
FUZZY_FACTOR: Final = 0.6
# Words a code read by OCR may be spread over: "HOLE 1O8" is two, "HOLE - 1O8" three.
MAX_WINDOW_WORDS: Final = 3
_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = "()[]{}<>.,;:!?'\"*"


@dataclass(frozen=True, slots=True)
class CodeMatch:
    """One code on one page, as a ``code`` record reports it."""

    found: Found
    page: int
    source: Literal["text-layer", "ocr"]
    target: str | None
    match: MatchKind | None
    confidence: float

    def as_data(self) -> dict[str, object]:
        return {
            "code": self.found.code,
            "as_written": self.found.as_written,
            "page": self.page,
            "source": self.source,
            "target": self.target,
            "match": self.match,
            "confidence": self.confidence,
        }


def text_layer_matches(page: PageCodes, targets: TargetSet | None) -> list[CodeMatch]:
    matches: list[CodeMatch] = []
    for found in page.found:
        target = None if targets is None else targets.exact(found.code)
        kind: MatchKind | None = None if target is None else "exact"
        matches.append(CodeMatch(found, page.number, "text-layer", target, kind, TEXT_LAYER_CONFIDENCE))
    return matches


def ocr_matches(page: PageCodes, targets: TargetSet | None) -> list[CodeMatch]:
    """The pattern's codes, exact or fuzzy, and fuzzy readings the pattern missed; a pattern code
    matching nothing inside a fuzzy reading (HOLE-1 of "HOLE-1O8") is a piece of it and dropped."""
    read = round((page.confidence or 0.0) / 100, 2)
    fuzzy_read = round(read * FUZZY_FACTOR, 2)
    matches: list[CodeMatch] = []
    for found in page.found:
        exact = None if targets is None else targets.exact(found.code)
        if exact is not None:
            matches.append(CodeMatch(found, page.number, "ocr", exact, "exact", read))
            continue
        fuzzy = None if targets is None else targets.fuzzy(found.code)
        if fuzzy is not None:
            matches.append(CodeMatch(found, page.number, "ocr", fuzzy, "fuzzy", fuzzy_read))
        else:
            matches.append(CodeMatch(found, page.number, "ocr", None, None, read))
    if targets is None:
        return matches
    taken = [match.found for match in matches if match.match is not None]
    readings = [
        CodeMatch(found, page.number, "ocr", target, "fuzzy", fuzzy_read)
        for found, target in _fuzzy_readings(page.text, targets, taken)
    ]
    kept = [
        match
        for match in matches
        if match.match is not None or not any(_inside(match.found, reading.found) for reading in readings)
    ]
    return sorted([*kept, *readings], key=lambda match: match.found.start)


def _fuzzy_readings(text: str, targets: TargetSet, taken: list[Found]) -> list[tuple[Found, str]]:
    """Runs of words that equal a target after OCR's confusions and not before, shortest first,
    clear of the codes already matched. A run must hold a digit when its target does: "HOLES" is a
    word, not HOLE-5."""
    words = [(word.start(), word.end()) for word in _WORD.finditer(text)]
    readings: list[tuple[Found, str]] = []
    index = 0
    while index < len(words):
        for count in range(1, min(MAX_WINDOW_WORDS, len(words) - index) + 1):
            found = _trimmed(text, words[index][0], words[index + count - 1][1])
            if found is None or any(found.overlaps(other) for other in taken):
                continue
            target = targets.fuzzy(found.code)
            if target is not None and (_has_digit(found.code) or not _has_digit(target)):
                readings.append((found, target))
                index += count - 1
                break
        index += 1
    return readings


def _trimmed(text: str, start: int, end: int) -> Found | None:
    while start < end and text[start] in _EDGE_PUNCTUATION:
        start += 1
    while end > start and text[end - 1] in _EDGE_PUNCTUATION:
        end -= 1
    if start == end:
        return None
    written = text[start:end]
    if "\n" in written:
        written = "".join(line.strip() for line in written.split("\n"))
    return Found(normalise_code(written), written, start, end)


def _has_digit(code: str) -> bool:
    return any(character.isdigit() for character in code)


def _inside(inner: Found, outer: Found) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end
