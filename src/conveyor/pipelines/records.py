"""The ``records`` pipeline: the values of a JSON or NDJSON file become keyed records.

Each record gets a natural key (param ``key``, a dotted path) or, without one, a hash of its
content, so the caller can upsert records across files. A record that has no key although one is
required, or that fails the JSON Schema, is quarantined as a finding on its own while the rest of
the file lands; a problem with the file itself (invalid JSON, wrong encoding, too deep) is an
InputError and the caller rolls the whole job back. Only the first ``max_findings`` quarantined
records get a finding each, so memory stays bounded; one last finding counts the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import referencing.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from conveyor.content import DocumentInput, Finding, PipelineContext, PipelineResult, Record
from conveyor.errors import Cancelled, InputError
from conveyor.pipelines.json_reading import (
    WHOLE_FILE_MAX_BYTES,
    Format,
    JsonReader,
    describe,
    pointer,
)

RECORD_KIND: Final = "record"
QUARANTINE_RULE: Final = "quarantined"
CANCEL_CHECK_EVERY: Final = 1000
PROGRESS_EVERY: Final = 5000
MAX_FINDINGS: Final = 10_000
FORMATS: Final = ("auto", "json", "ndjson")
DEFAULTS: Final[Mapping[str, Any]] = {
    "path": None,
    "key": None,
    "key_required": False,
    "schema": None,
    "collection": "default",
    "format": "auto",
}
_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class _Options:
    path: tuple[str, ...]
    key: tuple[str, ...]
    key_required: bool
    validator: Validator | None
    format: Format


def content_key(value: Any) -> str:
    """The key of a record without a natural one: sha256 of its canonical JSON (sorted keys).

    orjson refuses values nested deeper than 254, integers past 64 bits and lone surrogates;
    those are hashed from the standard library's equivalent rendering instead.
    """
    try:
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        canonical = text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(canonical).hexdigest()


class RecordsPipeline:
    """JSON array, object, nested array (``path``) or NDJSON in; one record per value out."""

    name = "records"
    shared_keys = True

    def __init__(
        self,
        *,
        whole_file_max_bytes: int = WHOLE_FILE_MAX_BYTES,
        max_findings: int = MAX_FINDINGS,
    ) -> None:
        """``whole_file_max_bytes``: bigger files stream (0 streams everything, as tests do).

        ``max_findings``: quarantined records past this many are counted in the summary but not
        listed one by one (a file where every record fails would otherwise fill memory).

        The nesting depth bound is not an argument: it is ``context.limits.json_depth`` (set by
        CONVEYOR_LIMIT_JSON_DEPTH), so that every bound on a file is configured in one place.
        """
        if max_findings < 0:
            raise ValueError(f"max_findings must not be negative, not {max_findings}")
        self.whole_file_max_bytes = whole_file_max_bytes
        self.max_findings = max_findings

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The params with defaults filled in and values normalised; InputError names a bad one."""
        unknown = sorted(str(name) for name in params if name not in DEFAULTS)
        if unknown:
            known = ", ".join(DEFAULTS)
            raise _bad(unknown[0], f"is unknown (known: {known})")
        given = {name: value for name, value in params.items() if value is not None}
        values = {**DEFAULTS, **given}
        checked = {
            "path": _dotted_path(values["path"], "path"),
            "key": _dotted_path(values["key"], "key"),
            "key_required": _flag(values["key_required"], "key_required"),
            "schema": _schema(values["schema"]),
            "collection": _text(values["collection"], "collection"),
            "format": _choice(values["format"], "format", FORMATS),
        }
        if checked["key_required"] and checked["key"] is None:
            raise _bad("key_required", "needs parameter 'key'")
        return checked

    def run(
        self, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
    ) -> PipelineResult:
        checked = self.validate_params(params)
        options = _Options(
            path=_split(checked["path"]),
            key=_split(checked["key"]),
            key_required=checked["key_required"],
            validator=_validator(checked["schema"]),
            format=checked["format"],
        )
        reader = JsonReader(
            document,
            path=options.path,
            format=options.format,
            whole_file_max_bytes=self.whole_file_max_bytes,
            max_depth=context.limits.json_depth,
        )
        result = PipelineResult(
            summary={
                "records": 0,
                "quarantined": 0,
                "format": None,
                "collection": checked["collection"],
                "key_path": checked["key"],
            }
        )
        result.records = self._records(reader, options, result, context)
        return result

    def _records(
        self,
        reader: JsonReader,
        options: _Options,
        result: PipelineResult,
        context: PipelineContext,
    ) -> Iterator[Record]:
        """Lazily: land or quarantine each value; the summary is complete once this is exhausted."""
        summary = result.summary
        if context.is_cancelled():
            raise Cancelled()
        for seen, (ref, value, problem) in enumerate(reader, 1):
            if seen == 1:
                summary["format"] = reader.shape
            if seen % CANCEL_CHECK_EVERY == 0 and context.is_cancelled():
                raise Cancelled()
            if seen % PROGRESS_EVERY == 0:
                context.progress(reader.percent())
            outcome = _land(ref, value, problem, options)
            if isinstance(outcome, Record):
                summary["records"] += 1
                yield outcome
            else:
                summary["quarantined"] += 1
                if summary["quarantined"] <= self.max_findings:
                    result.findings.append(outcome)
        summary["format"] = reader.shape
        unlisted = summary["quarantined"] - self.max_findings
        if unlisted > 0:
            records = "record was" if unlisted == 1 else "records were"
            message = (
                f"... and {unlisted} more {records} quarantined "
                f"(only the first {self.max_findings} are listed)"
            )
            result.findings.append(Finding(rule=QUARANTINE_RULE, severity="error", message=message, ref=None))


def _land(ref: str, value: Any, problem: str | None, options: _Options) -> Record | Finding:
    """The record for one value, or the finding that quarantines it."""
    if problem is None:
        key, problem = _natural_key(value, options) if options.key else (None, None)
        if problem is None and options.validator is not None:
            problem = _schema_problem(options.validator, value)
        if problem is None:
            return Record(RECORD_KIND, value, content_key(value) if key is None else key)
    return Finding(rule=QUARANTINE_RULE, severity="error", message=problem, ref=ref)


def _natural_key(value: Any, options: _Options) -> tuple[str | None, str | None]:
    """(key, problem): the key at the key path as text; None when missing and not required."""
    node: Any = value
    for part in options.key:
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            node = _MISSING
        if node is _MISSING:
            break
    if isinstance(node, str):
        return node, None
    if node is _MISSING or node is None:
        return None, f"missing key {'.'.join(options.key)}" if options.key_required else None
    if isinstance(node, (dict, list)):
        return None, f"key {'.'.join(options.key)} is {describe(node)}, not a string or number"
    if isinstance(node, bool):
        return ("true" if node else "false"), None
    return repr(node), None


def _schema_problem(validator: Validator, value: Any) -> str | None:
    """What fails, and where in the record, or None when the record is valid."""
    try:
        errors = list(validator.iter_errors(value))
    except RecursionError:
        return "too deeply nested to check against the schema"
    except referencing.exceptions.Unresolvable as error:
        raise _bad("schema", f"has a $ref that cannot be resolved: {error}") from None
    if not errors:
        return None
    worst = best_match(errors)
    where = pointer(tuple(worst.absolute_path)) or "the record root"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"schema violation at {where}: {worst.message}{more}"


def _bad(name: str, problem: str) -> InputError:
    return InputError(f"records: parameter {name!r} {problem}")


def _split(dotted: str | None) -> tuple[str, ...]:
    return tuple(dotted.split(".")) if dotted else ()


def _dotted_path(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not all(value.split(".")):
        raise _bad(name, f"must be a dotted path like 'order.id', not {value!r}")
    return value


def _flag(value: Any, name: str) -> bool:
    """A boolean; the strings "true" and "false" too, as ``--param k=v`` on the command line gives."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad(name, f"must be true or false, not {value!r}")


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(name, f"must be a non-empty string, not {value!r}")
    return value


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _bad(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _schema(value: Any) -> dict[str, Any] | None:
    """A JSON Schema object (given as JSON text too), checked against its metaschema."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise _bad("schema", f"is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise _bad("schema", f"must be a JSON Schema object, not {describe(value)}")
    if not isinstance(value.get("$schema", ""), str):
        raise _bad("schema", "has a $schema that is not a string")
    try:
        validator_for(value, default=Draft202012Validator).check_schema(value)
    except SchemaError as error:
        where = pointer(tuple(error.absolute_path)) or "the top"
        raise _bad("schema", f"is not a valid JSON Schema at {where}: {error.message}") from None
    return value


def _validator(schema: dict[str, Any] | None) -> Validator | None:
    if schema is None:
        return None
    validator: Validator = validator_for(schema, default=Draft202012Validator)(schema)
    return validator
