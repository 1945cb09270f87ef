"""Codes in text: the default pattern, the normal form that makes one code of its spellings, codes
broken across a line end, and the skeleton that OCR's usual confusions cannot change.

The normal form (``normalise_code``) reads a code as a sequence of letter runs and digit runs and
writes them upper case, joined by ``-``::

    "HOLE-123", "HOLE 123", "hole\\u2013123", "HOLE-\\n123", "HOLE123"  ->  "HOLE-123"
    "P-101A", "p 101 a"                                                  ->  "P-101-A"

so a space, any dash (hyphen, en or em dash, minus sign, full-width hyphen...), a line break, or no
separator at all where letters meet digits, all mean the same thing. Other characters (``/``, ``.``,
``#``) are kept as written, and zeros are significant (``HOLE-0042`` is not ``HOLE-42``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

# Every dash a drawing or a spreadsheet writes between a code's parts: hyphen-minus, soft hyphen,
# hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar, minus sign, small em
# dash, small and full-width hyphen-minus.
DASHES: Final = "-\u00ad\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
# Spaces that may stand between a code's letters and digits within one line.
SPACES: Final = " \u00a0\u2007\u2009\u202f"

# Letters, at most one space or dash of any kind, digits; whole words on both sides, so that
# "HOLE-123A", "XHOLE-1O8" or "1HOLE-2" give no truncated code (OCR's "HOLE-1O8" is left to fuzzy
# matching rather than read as HOLE-1). ASCII letters and digits only: codes are identifiers, and
# Unicode letters would add every accented word before a number. The pipeline matches it (and any
# pattern given) ignoring case, on text whose dashes and spaces were made plain "-" and " " first,
# so a pattern written with "-" finds "HOLE\u2013123" (an en dash) too; the variants are spelled
# out here for use on raw text. It also finds ordinary words before a number ("REV 2", "DN 150"):
# give a narrower pattern (``HOLE[- ]?\d+``) where that matters.
DEFAULT_PATTERN: Final = (
    r"\b[A-Z]+[ \u00a0\u2007\u2009\u202f\-\u00ad\u2010-\u2015\u2212\ufe58\ufe63\uff0d]?[0-9]+\b"
)

_PIECES = re.compile(rf"[^\W\d_]+|\d+|[^\s{re.escape(DASHES)}]")
_PLAIN_SEPARATORS = str.maketrans(dict.fromkeys(DASHES, "-") | dict.fromkeys(SPACES + "\t", " "))
# OCR's usual confusions, each letter mapped to the digit it is mistaken for (and back).
_CONFUSIONS = str.maketrans("OILSBZ", "011582")
# pdfium marks a hyphen that ends a line as a soft hyphen and joins the two lines: get_text_bounded
# gives "\x02", get_text_range "\ufffe". Both are put back as the hyphen and the line break they were.
_PDFIUM_LINE_HYPHENS = ("\x02", "\ufffe")
_MAX_PASSES = 4
_BLANK_LINES = re.compile(r"\n[^\S\n]*(?:\n[^\S\n]*)+")
# The last word of a line and the first of the next (looked ahead at, so that a one-word line is
# the second word of one junction and the first of the next).
_JUNCTION = re.compile(r"(?<!\S)(\S*+) *+\n *+(?=(\S*+))")


def normalise_code(text: str) -> str:
    """The code's normal form (see the module docstring); idempotent, "" for text with no
    letter, digit or symbol."""
    code = _normal_once(text)
    if code.isascii():
        return code
    # Dropping a separator can put a combining mark after a letter, and NFKC then composes or
    # reorders them: again until nothing changes (once more at most, in practice).
    for _ in range(_MAX_PASSES):
        again = _normal_once(code)
        if again == code:
            break
        code = again
    return code


def _normal_once(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).upper())
    else:
        text = text.upper()
    out: list[str] = []
    previous_alphanumeric = False
    for piece in _PIECES.findall(text):
        alphanumeric = piece.isalnum()
        if alphanumeric and previous_alphanumeric:
            out.append("-")
        out.append(piece)
        previous_alphanumeric = alphanumeric
    joined = "".join(out)
    return joined if joined.isascii() else unicodedata.normalize("NFKC", joined)


def skeleton(code: str) -> str:
    """A normalised code with its separators dropped and every confusable letter read as the digit
    OCR mistakes it for: "HOLE-108" and "HOLE-IO-8" (read from "HOLE-IO8") share "H01E108"."""
    return code.replace("-", "").translate(_CONFUSIONS)


@dataclass(frozen=True, slots=True)
class Found:
    """A code found in a page's text; ``start`` and ``end`` index the text ``plain_text`` gives."""

    code: str
    as_written: str
    start: int
    end: int

    def overlaps(self, other: Found) -> bool:
        return self.start < other.end and other.start < self.end


@functools.lru_cache(maxsize=64)
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def plain_text(text: str) -> str:
    """Page text with plain line breaks: pdfium's CRLF and its line-end hyphen marks undone."""
    for mark in _PDFIUM_LINE_HYPHENS:
        if mark in text:
            text = text.replace(mark, "-\n")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def ocr_lines(text: str) -> str:
    """OCR text with its blank lines dropped: Tesseract puts them between blocks it sees, and a code
    broken across a line end ("HOLE-" / "123") often comes back with one in the break."""
    return _BLANK_LINES.sub("\n", text)


def plain_separators(text: str) -> str:
    """Every dash as "-", every space and tab as " "; character for character, so positions hold."""
    return text if text.isascii() and "\t" not in text else text.translate(_PLAIN_SEPARATORS)


def find_codes(text: str, pattern: re.Pattern[str]) -> list[Found]:
    """Every code ``pattern`` finds in ``text`` (from ``plain_text``), in reading order.

    A code broken across a line end is found joined: "HOLE-" / "123", "HOLE" / "123", and a break
    inside the letters or digits when the pieces only match joined. The last word of the line and
    the first of the next are joined when the pattern finds a code across the join and neither word
    is a code where it touches the line end on its own: "see" / "HOLE-12" stays two words, and so
    does "HOLE-12" / "40 mm" (two codes, or a code and a number, are never fused into one).
    """
    searched = plain_separators(text)
    found = [
        _found(text, match.start(), match.end())
        for match in pattern.finditer(searched)
        if match.end() > match.start()
    ]
    joined = _joined_across_lines(text, searched, pattern)
    if not joined:
        return found
    kept = [item for item in found if not any(item.overlaps(join) for join in joined)]
    return sorted([*kept, *joined], key=lambda item: item.start)


def _found(text: str, start: int, end: int) -> Found:
    written = text[start:end]
    if "\n" in written:
        written = "".join(line.strip() for line in written.split("\n"))
    return Found(normalise_code(written), written, start, end)


def _joined_across_lines(text: str, searched: str, pattern: re.Pattern[str]) -> list[Found]:
    joined: list[Found] = []
    for junction in _JUNCTION.finditer(searched):
        before, after = junction.group(1), junction.group(2)
        if not before or not after:
            continue
        cut = len(before)
        for match in pattern.finditer(before + after):
            if match.end() <= cut:
                continue
            if (
                match.start() < cut
                and not _touches_end(pattern, before)
                and not _touches_start(pattern, after)
            ):
                start = junction.start() + match.start()
                after_start = junction.start(2)
                end = after_start + match.end() - cut
                written = text[start : junction.start() + cut] + text[after_start:end]
                joined.append(Found(normalise_code(written), written, start, end))
            break
    return joined


def _touches_end(pattern: re.Pattern[str], word: str) -> bool:
    return any(match.end() == len(word) > match.start() for match in pattern.finditer(word))


def _touches_start(pattern: re.Pattern[str], word: str) -> bool:
    match = pattern.match(word)
    return match is not None and match.end() > 0
