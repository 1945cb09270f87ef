"""The character error rate the OCR corpus test and benchmark report."""

from __future__ import annotations

from tests.text_metrics import character_error_rate, edit_distance


def test_edit_distance() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == edit_distance("abc", "") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert character_error_rate("a  b\nc", "a b c") == 0.0
