"""Codes in text: the normal form, the default pattern, codes broken across a line end, and what
pdfium's text actually looks like around a line-end hyphen."""

from __future__ import annotations

import re
import string

import pypdfium2 as pdfium
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.pipelines.codescan import DEFAULT_PATTERN, normalise_code
from conveyor.pipelines.codescan.codes import (
    DASHES,
    compiled,
    find_codes,
    ocr_lines,
    plain_text,
    skeleton,
)
from tests.drawings import drawing_pdf

PATTERN = compiled(DEFAULT_PATTERN)


def codes_in(text: str, pattern: re.Pattern[str] = PATTERN) -> list[tuple[str, str]]:
    return [(found.code, found.as_written) for found in find_codes(plain_text(text), pattern)]


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("HOLE-123", "HOLE-123"),
        ("HOLE 123", "HOLE-123"),
        ("hole\u2013123", "HOLE-123"),
        ("HOLE-\n123", "HOLE-123"),
        ("HOLE-\r\n123", "HOLE-123"),
        ("HOLE123", "HOLE-123"),
        ("  hole  -  123 ", "HOLE-123"),
        ("Hole\u2014123", "HOLE-123"),
        ("HOLE\u2212123", "HOLE-123"),
        ("HOLE\uff0d123", "HOLE-123"),
        ("HOLE\ufe63123", "HOLE-123"),
        ("HOLE\u00a0123", "HOLE-123"),
        ("\uff28\uff2f\uff2c\uff25\uff0d\uff11\uff12\uff13", "HOLE-123"),  # full-width letters and digits
        ("HOLE\u20130042", "HOLE-0042"),  # zeros are significant
        ("hole-7", "HOLE-7"),
        ("P-101A", "P-101-A"),
        ("p 101 a", "P-101-A"),
        ("AB-12-3", "AB-12-3"),
        ("HOLE/12", "HOLE/12"),
        ("HOLE # 12", "HOLE#12"),
        ("", ""),
        (" \u2013 ", ""),
    ],
)
def test_normal_form(written: str, normal: str) -> None:
    assert normalise_code(written) == normal


def test_codes_that_differ_stay_apart() -> None:
    assert normalise_code("AB-12-3") != normalise_code("AB-123")
    assert normalise_code("HOLE-0042") != normalise_code("HOLE-42")


@given(st.text())
def test_normal_form_is_idempotent(text: str) -> None:
    once = normalise_code(text)
    assert normalise_code(once) == once


_letters = st.text(st.sampled_from(string.ascii_uppercase), min_size=1, max_size=6)
_digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=6)
_separator = st.one_of(
    st.just(""),
    st.sampled_from(DASHES),
    st.text(st.sampled_from(" \u00a0\n"), min_size=1, max_size=3),
    st.tuples(st.sampled_from(DASHES), st.sampled_from(["\n", " \n ", "\r\n"])).map("".join),
)


@given(_letters, _digits, _separator, st.lists(st.booleans(), min_size=6, max_size=6))
def test_every_spelling_of_a_code_has_one_normal_form(
    letters: str, digits: str, separator: str, upper: list[bool]
) -> None:
    cased = "".join(
        letter.upper() if upper[index % len(upper)] else letter.lower()
        for index, letter in enumerate(letters)
    )
    assert normalise_code(f"{cased}{separator}{digits}") == f"{letters}-{digits}"


def test_skeleton_merges_only_the_usual_ocr_confusions() -> None:
    assert skeleton(normalise_code("HOLE-1O8")) == skeleton("HOLE-108")
    assert skeleton(normalise_code("H0LE-IO8")) == skeleton("HOLE-108")
    assert skeleton(normalise_code("HOLE-S2B")) == skeleton("HOLE-528")
    assert skeleton("HOLE-Z7") == skeleton("HOLE-27")
    assert skeleton("HOLE-108") != skeleton("HOLE-180")
    assert skeleton("HOLE-A08") != skeleton("HOLE-408")


def test_default_pattern_finds_the_usual_spellings_and_no_truncated_code() -> None:
    text = "Drill HOLE-123, HOLE 77 and hole\u20130042 (hole-7); not HOLE-123A, XHOLE-1O8 nor 12HOLE-3."
    assert [code for code, _ in codes_in(text)] == ["HOLE-123", "HOLE-77", "HOLE-0042", "HOLE-7"]
    assert codes_in("HOLE\u2013\u20130042") == []  # one separator at most


def test_as_written_keeps_the_text_of_the_page() -> None:
    assert codes_in("at hole\u20130042 and HOLE\u00a012") == [
        ("HOLE-0042", "hole\u20130042"),
        ("HOLE-12", "HOLE\u00a012"),
    ]


def test_a_pattern_written_with_a_plain_dash_finds_every_dash() -> None:
    pattern = compiled(r"HOLE-\d+")
    assert codes_in("HOLE\u2013123 HOLE\u2212124 hole-125", pattern) == [
        ("HOLE-123", "HOLE\u2013123"),
        ("HOLE-124", "HOLE\u2212124"),
        ("HOLE-125", "hole-125"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Drill HOLE-\n123 through", [("HOLE-123", "HOLE-123")]),
        ("Drill HOLE  -  \n  123 through", []),  # "-" alone is no code, nor "HOLE -123"
        ("Drill HOLE \n 123 through", [("HOLE-123", "HOLE123")]),
        ("Drill hole\u2013\r\n0042 through", [("HOLE-0042", "hole\u20130042")]),
        ("Drill HOLE\x02123 through", [("HOLE-123", "HOLE-123")]),  # pdfium's get_text_bounded
        ("Drill HOLE\ufffe123 through", [("HOLE-123", "HOLE-123")]),  # pdfium's get_text_range
        ("see\nHOLE-12 there", [("HOLE-12", "HOLE-12")]),  # a word is not glued to a code
        ("HOLE-12\n40 mm deep", [("HOLE-12", "HOLE-12")]),  # nor a code to a number
        ("HOLE-12\nHOLE-13", [("HOLE-12", "HOLE-12"), ("HOLE-13", "HOLE-13")]),
        ("first\n\nHOLE-\n\n5", []),  # a blank line ends the code
    ],
)
def test_codes_broken_across_a_line_end(text: str, expected: list[tuple[str, str]]) -> None:
    assert codes_in(text) == expected


def test_ocr_blank_lines_do_not_break_a_code() -> None:
    # Tesseract's reading of a scanned "Drill HOLE-" / "123 through flange.": a block break between.
    text = ocr_lines("Drill HOLE-\n\n123 through flange.\n \nDrill HOLE\n\n\n77 through")
    assert text == "Drill HOLE-\n123 through flange.\nDrill HOLE\n77 through"
    assert codes_in(text) == [("HOLE-123", "HOLE-123"), ("HOLE-77", "HOLE77")]


def test_a_break_inside_the_digits_joins_when_the_pieces_only_match_joined() -> None:
    pattern = compiled(r"\bHOLE-\d{3}\b")
    assert codes_in("Drill HOLE-1\n23 through", pattern) == [("HOLE-123", "HOLE-123")]
    assert codes_in("Drill HO\nLE-123 through", pattern) == [("HOLE-123", "HOLE-123")]
    # The default pattern finds HOLE-1 on its own, so the line end stays a break.
    assert codes_in("Drill HOLE-1\n23 through") == [("HOLE-1", "HOLE-1")]


def test_codes_found_in_pdfium_text_of_a_drawing_with_split_codes() -> None:
    codes = ["HOLE-123", "HOLE 7", "hole\u20130042", "HOLE-9"]
    data = drawing_pdf(codes, split=["HOLE 7", "hole\u20130042", "HOLE-9"])
    document = pdfium.PdfDocument(data)
    try:
        textpage = document[0].get_textpage()
        bounded, ranged = textpage.get_text_bounded(), textpage.get_text_range()
    finally:
        document.close()
    # What pdfium gives: CRLF line ends, and a line-end hyphen as a mark with the lines joined.
    assert "\r\n" in bounded
    assert "HOLE\x029" in bounded
    assert "HOLE\ufffe9" in ranged
    expected = ["HOLE-123", "HOLE-7", "HOLE-0042", "HOLE-9"]
    assert [code for code, _ in codes_in(bounded)] == expected
    assert [code for code, _ in codes_in(ranged)] == expected
