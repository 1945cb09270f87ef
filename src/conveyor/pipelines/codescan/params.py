"""The ``codescan`` pipeline's params; anything else is refused by name."""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.errors import InputError
from conveyor.pipelines.codescan.codes import DEFAULT_PATTERN, compiled
from conveyor.pipelines.codescan.targets import normalised_targets

MAX_PATTERN_CHARS: Final = 500
MAX_TARGETS: Final = 1_000_000


class CodescanParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Matched ignoring case, on text whose dashes and spaces are plain "-" and " " (codes.py).
    pattern: str = Field(default=DEFAULT_PATTERN, max_length=MAX_PATTERN_CHARS)
    # Target codes, normalised here (``read_targets`` reads them from a spreadsheet); None reports
    # every code found.
    targets: list[str] | None = Field(default=None, max_length=MAX_TARGETS)
    # Read pages without a text layer (scans) by OCR.
    ocr: bool = True
    languages: str = Field(default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$", max_length=200)
    dpi: int = Field(default=300, ge=72, le=600)

    @field_validator("pattern")
    @classmethod
    def _usable_pattern(cls, value: str) -> str:
        try:
            pattern = compiled(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        if pattern.search("") is not None:
            raise ValueError("the pattern matches the empty string, so it would find a code everywhere")
        return value

    @field_validator("targets")
    @classmethod
    def _normal_targets(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            return normalised_targets(value)
        except InputError as error:
            raise ValueError(str(error)) from None
