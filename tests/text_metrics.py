"""How far OCR's text is from the truth: the character error rate, shared by the OCR corpus test
and the OCR benchmark so both report the same figure."""

from __future__ import annotations

import numpy as np


def normalised(text: str) -> str:
    """Whitespace collapsed: line breaks and column gaps are layout, not characters read wrong."""
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row of the table at a time with numpy: a row's insertions are a
    running minimum, ``row[j] = j + min(candidate[k] - k for k <= j)``."""
    if not a or not b:
        return len(a) + len(b)
    target = np.array([ord(char) for char in b])
    columns = np.arange(len(b) + 1)
    row = columns.copy()
    for index, char in enumerate(a, 1):
        candidate = np.empty_like(row)
        candidate[0] = index
        candidate[1:] = np.minimum(row[1:] + 1, row[:-1] + (target != ord(char)))
        row = np.minimum.accumulate(candidate - columns) + columns
    return int(row[-1])


def character_error_rate(read: str, truth: str) -> float:
    expected = normalised(truth)
    return edit_distance(normalised(read), expected) / max(1, len(expected))
