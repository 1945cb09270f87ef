"""Form fields as typed values, each error naming the field: the multipart routes share these."""

from __future__ import annotations

from typing import Any

import orjson

from conveyor.errors import InputError

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


def json_object(raw: str | None, name: str) -> dict[str, Any]:
    """A field holding a JSON object; empty or absent is ``{}``."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InputError(f"the form field {name!r} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise InputError(f"the form field {name!r} must be a JSON object")
    return value


def whole_number(raw: str | None, name: str, default: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"{name} must be a whole number, not {raw!r}") from None


def flag(raw: str | None, name: str, default: bool = False) -> bool:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InputError(f"{name} must be true or false, not {raw!r}")
