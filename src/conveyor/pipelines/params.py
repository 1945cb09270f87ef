"""Pipeline params checked against a pydantic model, with the first problem named the same way by
every pipeline: ``param 'dpi': Input should be less than or equal to 600``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from conveyor.errors import InputError
from conveyor.extractors.ocr import check_languages

M = TypeVar("M", bound=BaseModel)


def checked_params(model: type[M], params: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(params))
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "params"
        raise InputError(f"param {where!r}: {problem['msg']}") from None


def checked_languages(languages: str) -> None:
    """Tesseract has every language named (``eng+deu``); a missing one is a param error now, not a
    failed job later."""
    try:
        check_languages(languages)
    except InputError as error:
        raise InputError(f"param 'languages': {error}") from None
