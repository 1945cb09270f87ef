"""The records pipeline and its JSON reading, on both paths: whole file (orjson) and streaming (ijson)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from conveyor.content import DocumentInput, Limits, OfflineContext, PipelineResult, Record
from conveyor.errors import Cancelled, InputError, LimitExceeded
from conveyor.pipelines.json_reading import CHUNK_BYTES, NestingGuard
from conveyor.pipelines.records import RecordsPipeline, content_key

WHOLE = RecordsPipeline()
STREAMING = RecordsPipeline(whole_file_max_bytes=0)


def document(data: bytes, filename: str = "orders.json") -> DocumentInput:
    return DocumentInput(
        filename=filename,
        media_type="application/json",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        open=lambda: io.BytesIO(data),
    )


def run(
    pipeline: RecordsPipeline, data: bytes, context: OfflineContext | None = None, **params: Any
) -> tuple[list[Record], PipelineResult]:
    result = pipeline.run(document(data), params, context or OfflineContext())
    return list(result.records), result


def error_of(pipeline: RecordsPipeline, data: bytes, **params: Any) -> str:
    with pytest.raises(InputError) as caught:
        run(pipeline, data, **params)
    return caught.value.message


@pytest.fixture(params=["whole", "streaming"])
def pipeline(request: pytest.FixtureRequest) -> RecordsPipeline:
    return WHOLE if request.param == "whole" else STREAMING


def ndjson(rows: Iterable[object]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


# --- shapes ----------------------------------------------------------------------------------------


def test_an_array_gives_one_record_per_element(pipeline: RecordsPipeline) -> None:
    rows = [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": "b", "meta": {"n": 1}}]
    records, result = run(pipeline, orjson.dumps(rows), key="id")
    assert [(r.kind, r.key, r.data) for r in records] == [
        ("record", "1", rows[0]),
        ("record", "2", rows[1]),
    ]
    assert result.summary == {
        "records": 2,
        "quarantined": 0,
        "format": "array",
        "collection": "default",
        "key_path": "id",
    }
    assert result.findings == []


def test_an_object_is_one_record(pipeline: RecordsPipeline) -> None:
    row = {"id": "a-1", "nested": {"deep": [1, 2, {"x": None}]}}
    records, result = run(pipeline, json.dumps(row, indent=2).encode(), key="id", collection="c")
    assert [(r.key, r.data) for r in records] == [("a-1", row)]
    assert result.summary["format"] == "object"
    assert result.summary["collection"] == "c"


def test_path_selects_the_array_inside_the_document(pipeline: RecordsPipeline) -> None:
    body = {
        "meta": {"items": "not these", "list": [[1, 2]]},
        "data": {"count": 3, "items": [{"id": 1}, {"id": "x"}, {"id": 3}]},
    }
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    records, result = run(pipeline, orjson.dumps(body), path="data.items", schema=schema)
    assert [r.data for r in records] == [{"id": 1}, {"id": 3}]
    assert [f.ref for f in result.findings] == ["/data/items/1"]
    assert result.summary["format"] == "array"


def test_path_to_an_object_gives_one_record(pipeline: RecordsPipeline) -> None:
    records, result = run(pipeline, b'{"a": {"b": {"id": 7}}}', path="a.b", key="id")
    assert [(r.key, r.data) for r in records] == [("7", {"id": 7})]
    assert result.summary["format"] == "object"


def test_path_must_exist_and_hold_a_container(pipeline: RecordsPipeline) -> None:
    assert "path data.items not found" in error_of(pipeline, b'{"data": {}}', path="data.items")
    assert "path data.items not found" in error_of(pipeline, b'{"data": [{"items": []}]}', path="data.items")
    assert "path data holds a number" in error_of(pipeline, b'{"data": 5}', path="data")


def test_a_top_level_scalar_is_refused(pipeline: RecordsPipeline) -> None:
    assert "top-level value is a number" in error_of(pipeline, b"42")
    assert "top-level value is a string" in error_of(pipeline, b' "text" ')


# --- NDJSON ----------------------------------------------------------------------------------------


def test_ndjson_is_detected_and_blank_lines_are_skipped(pipeline: RecordsPipeline) -> None:
    data = b'{"id": 1}\n\n   \n{"id": 2}\r\n[3, 4]\n'
    records, result = run(pipeline, data, key="id")
    assert [(r.key, r.data) for r in records] == [
        ("1", {"id": 1}),
        ("2", {"id": 2}),
        (content_key([3, 4]), [3, 4]),
    ]
    assert result.summary["format"] == "ndjson"


def test_a_single_line_is_json_unless_ndjson_is_forced(pipeline: RecordsPipeline) -> None:
    assert len(run(pipeline, b"[1, 2]\n")[0]) == 2
    records, result = run(pipeline, b"[1, 2]\n", format="ndjson")
    assert [r.data for r in records] == [[1, 2]]
    assert result.summary["format"] == "ndjson"


def test_ndjson_forced_to_json_is_invalid(pipeline: RecordsPipeline) -> None:
    message = error_of(pipeline, b'{"a": 1}\n{"a": 2}\n', format="json")
    assert "invalid JSON at line 2, column 1" in message


def test_ndjson_path_quarantines_lines_without_it(pipeline: RecordsPipeline) -> None:
    data = ndjson([{"d": {"items": [{"id": 1}, {"id": 2}]}}, {"other": 1}, {"d": {"items": {"id": 3}}}])
    records, result = run(pipeline, data, path="d.items", key="id")
    assert [r.key for r in records] == ["1", "2", "3"]
    assert [(f.ref, f.message) for f in result.findings] == [("line 2", "path d.items not found")]


def test_a_bad_ndjson_line_names_its_line_and_column(pipeline: RecordsPipeline) -> None:
    data = b'{"id": 1}\n{"id": 2}\n\n{"id": 3 "x": 1}\n{"id": 5}\n'
    message = error_of(pipeline, data)
    assert message.startswith("orders.json: invalid JSON at line 4, column 10: ")


# --- keys ------------------------------------------------------------------------------------------


def test_dotted_key_paths_and_their_rendering(pipeline: RecordsPipeline) -> None:
    rows = [
        {"order": {"id": 12}},
        {"order": {"id": "A-7"}},
        {"order": {"id": 1.5}},
        {"order": {"id": True}},
        {"order": {"lines": [{"sku": "s1"}]}},
    ]
    records, _ = run(pipeline, orjson.dumps(rows), key="order.id")
    assert [r.key for r in records][:4] == ["12", "A-7", "1.5", "true"]
    records, _ = run(pipeline, orjson.dumps(rows), key="order.lines.0.sku")
    assert records[4].key == "s1"


def test_without_a_key_the_content_hash_is_stable(pipeline: RecordsPipeline) -> None:
    data = b'[{"a": 1, "b": {"y": 2, "x": [1, "z"]}}, {"b": {"x": [1, "z"], "y": 2}, "a": 1}]'
    first, result = run(pipeline, data, key="missing.path")
    again, _ = run(pipeline, data)
    expected = hashlib.sha256(
        orjson.dumps({"a": 1, "b": {"x": [1, "z"], "y": 2}}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    assert [r.key for r in first] == [expected, expected]
    assert [r.key for r in again] == [expected, expected]
    assert result.findings == []


def test_content_key_handles_what_orjson_cannot_encode() -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = [deep]
    for value in (deep, 2**70, "\ud800"):
        assert content_key(value) == content_key(value)
        assert len(content_key(value)) == 64


def test_key_required_quarantines_records_without_it(pipeline: RecordsPipeline) -> None:
    rows = [{"id": 1}, {"name": "no id"}, {"id": None}, {"id": {"nested": 1}}, {"id": 5}]
    records, result = run(pipeline, orjson.dumps(rows), key="id", key_required=True)
    assert [r.key for r in records] == ["1", "5"]
    assert [(f.rule, f.severity, f.ref, f.message) for f in result.findings] == [
        ("quarantined", "error", "/1", "missing key id"),
        ("quarantined", "error", "/2", "missing key id"),
        ("quarantined", "error", "/3", "key id is an object, not a string or number"),
    ]
    assert result.summary["records"] == 2
    assert result.summary["quarantined"] == 3


# --- schema ----------------------------------------------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "price"],
    "properties": {
        "id": {"type": "integer"},
        "price": {"type": "number", "minimum": 0},
        "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
}


def test_schema_failures_are_quarantined_one_by_one(pipeline: RecordsPipeline) -> None:
    rows = [
        {"id": 1, "price": 10},
        {"id": 2, "price": "ten"},
        {"id": 3, "price": 5, "lines": [{"sku": "a"}, {"qty": 1}]},
        {"id": 4},
        {"id": 5, "price": 1.5},
    ]
    records, result = run(pipeline, orjson.dumps(rows), key="id", schema=ORDER_SCHEMA)
    assert [r.key for r in records] == ["1", "5"]
    assert [(f.ref, f.message) for f in result.findings] == [
        ("/1", "schema violation at /price: 'ten' is not of type 'number'"),
        ("/2", "schema violation at /lines/1: 'sku' is a required property"),
        ("/3", "schema violation at the record root: 'price' is a required property"),
    ]
    assert result.summary == {
        "records": 2,
        "quarantined": 3,
        "format": "array",
        "collection": "default",
        "key_path": "id",
    }


@pytest.mark.parametrize("whole_file_max_bytes", [WHOLE.whole_file_max_bytes, 0], ids=["whole", "streaming"])
def test_findings_past_the_cap_are_counted_not_listed(whole_file_max_bytes: int) -> None:
    capped = RecordsPipeline(max_findings=2, whole_file_max_bytes=whole_file_max_bytes)
    rows = [{"id": 1, "price": 1}] + [{"id": n} for n in range(2, 7)] + [{"id": 7, "price": 7}]
    records, result = run(capped, orjson.dumps(rows), key="id", schema=ORDER_SCHEMA)
    assert [r.key for r in records] == ["1", "7"]
    assert result.summary["records"] == 2
    assert result.summary["quarantined"] == 5
    assert [(f.rule, f.ref) for f in result.findings] == [
        ("quarantined", "/1"),
        ("quarantined", "/2"),
        ("quarantined", None),
    ]
    assert result.findings[-1].severity == "error"
    assert result.findings[-1].message == (
        "... and 3 more records were quarantined (only the first 2 are listed)"
    )
    _, at_cap = run(capped, orjson.dumps(rows[:3]), schema=ORDER_SCHEMA)
    assert [f.ref for f in at_cap.findings] == ["/1", "/2"]
    _, one_over = run(capped, orjson.dumps(rows[:4]), schema=ORDER_SCHEMA)
    assert one_over.findings[-1].message == (
        "... and 1 more record was quarantined (only the first 2 are listed)"
    )


def test_ndjson_quarantine_refs_name_the_line(pipeline: RecordsPipeline) -> None:
    data = ndjson([{"id": 1, "price": 1}, {"id": "x", "price": 1}])
    _, result = run(pipeline, data, schema=ORDER_SCHEMA)
    assert [f.ref for f in result.findings] == ["line 2"]


def test_the_schema_draft_follows_dollar_schema(pipeline: RecordsPipeline) -> None:
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": True}
    records, result = run(pipeline, b"[4, 5]", schema=draft4)
    assert [r.data for r in records] == [4]
    assert [f.ref for f in result.findings] == ["/1"]


def test_an_invalid_schema_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'schema' is not a valid JSON Schema at /type"):
        WHOLE.validate_params({"schema": {"type": "nope"}})
    with pytest.raises(InputError, match="'schema' is not a valid JSON Schema"):
        WHOLE.validate_params({"schema": {"pattern": "("}})
    message = error_of(WHOLE, b"[1]", schema={"$ref": "https://example.com/missing.json"})
    assert "'schema' has a $ref that cannot be resolved" in message


# --- invalid files ---------------------------------------------------------------------------------

INVALID = [
    (b'[\n  {"id": 1},\n  {"id" 2}\n]', 3, 9),
    (b"[1, 2 3]", 1, 7),
    (b'["abc" "def"]', 1, 8),
    (b'{"a": 1,}', 1, 8),
    (b"[1, 2,]", 1, 6),
    (b"[tru]", 1, 2),
    (b"[1] x", 1, 5),
    (b"[1}", 1, 3),
    (b'{"a": 1 "b": 2}', 1, 9),
    (b'\n\n  [1,\n  "\xc3\xa9\xc3\xa9" 2]', 4, 8),
    (b"\xef\xbb\xbf[1 2]", 1, 4),
    (b"[1, 2", 1, 6),
    (b'["abc', 1, 6),
    (b"[NaN]", 1, 2),
    (b"[-Infinity]", 1, 3),
    (b"[\x0c]", 1, 2),
    (b'["a\\x"]', 1, 4),
]


@pytest.mark.parametrize(("data", "line", "column"), INVALID)
def test_invalid_json_names_line_and_column_on_both_paths(
    pipeline: RecordsPipeline, data: bytes, line: int, column: int
) -> None:
    message = error_of(pipeline, data)
    assert message.startswith(f"orders.json: invalid JSON at line {line}, column {column}: ")


def test_the_message_carries_the_parser_reason() -> None:
    data = b'[\n  {"id": 1},\n  {"id" 2}\n]'
    assert error_of(WHOLE, data) == (
        "orders.json: invalid JSON at line 3, column 9: unexpected character, expected ':' after key"
    )
    assert error_of(STREAMING, data) == (
        "orders.json: invalid JSON at line 3, column 9: "
        "object key and value must be separated by a colon (':')"
    )


def _big_array(rows: int) -> bytes:
    body = [{"id": n, "text": f'row {n} with [brackets] and "quotes" \\ and é'} for n in range(rows)]
    return orjson.dumps(body, option=orjson.OPT_INDENT_2)


def test_a_streaming_error_after_many_chunks_is_exact() -> None:
    data = _big_array(5000)
    assert len(data) > 5 * CHUNK_BYTES
    broken = data.replace(b'"id": 4321,', b'"id": 4321', 1)
    with pytest.raises(orjson.JSONDecodeError) as expected:
        orjson.loads(broken)
    result = STREAMING.run(document(broken), {}, OfflineContext())
    landed = 0
    with pytest.raises(InputError) as caught:
        for _ in result.records:
            landed += 1
    position = f"line {expected.value.lineno}, column {expected.value.colno}"
    assert f"invalid JSON at {position}: " in caught.value.message
    assert landed > 0  # the error surfaced after records had landed: the caller rolls back


def _position(message: str) -> str:
    return message.split(": ")[1]


def test_a_string_spanning_chunks_then_an_error_is_exact() -> None:
    data = b'[{"long": "' + b"x" * (3 * CHUNK_BYTES) + b'"} {"id": 1}]'
    assert _position(error_of(STREAMING, data)) == "invalid JSON at line 1, column 196623"
    assert _position(error_of(WHOLE, data)) == "invalid JSON at line 1, column 196623"


@pytest.mark.parametrize(
    "data",
    [
        b'[{"text": "' + b'\\n\\"[\xc3\xa9' * 200_000 + b'"} {"id": 1}]',
        b'["' + b"a\\n" * 200_000 + b'\\q"]',
        b'["' + b"a" * 500_000 + b'\x01"]',
        b"[1." + b"1" * 300_000 + b" 2]",
    ],
    ids=["after", "bad escape", "control character", "long number"],
)
def test_errors_in_or_after_long_tokens_are_exact_and_quick(data: bytes) -> None:
    # yajl re-reads a pending token on every send: feeding these byte by byte would take minutes
    assert _position(error_of(STREAMING, data)) == _position(error_of(WHOLE, data))


def test_an_empty_file_is_refused(pipeline: RecordsPipeline) -> None:
    for data in (b"", b"  \n\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"):
        assert error_of(pipeline, data) == "orders.json: empty file (no JSON value)"


def test_a_utf8_bom_is_tolerated(pipeline: RecordsPipeline) -> None:
    assert [r.data for r in run(pipeline, b'\xef\xbb\xbf[{"a": 1}]')[0]] == [{"a": 1}]
    assert [r.data for r in run(pipeline, b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')[0]] == [
        {"a": 1},
        {"a": 2},
    ]


def test_bytes_that_are_not_utf8_name_their_offset(pipeline: RecordsPipeline) -> None:
    assert error_of(pipeline, b'[{"name": "caf\xe9"}]') == (
        "orders.json: not UTF-8: invalid byte 0xe9 at byte offset 14"
    )
    assert error_of(pipeline, b'\xef\xbb\xbf{"a": 1}\n{"b": "\xff"}\n').endswith("byte offset 19")
    far = b'["' + b"a" * (2 * CHUNK_BYTES) + b'", "\xc3"]'
    assert error_of(pipeline, far).endswith(f"invalid byte 0xc3 at byte offset {len(far) - 3}")


# --- depth -----------------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_nesting_deeper_than_the_limit_is_refused(pipeline: RecordsPipeline) -> None:
    assert len(run(pipeline, _nested(512))[0]) == 1
    with pytest.raises(LimitExceeded) as caught:
        run(pipeline, _nested(513))
    assert caught.value.message == "orders.json: json_depth is 513, over the limit of 512"
    assert (caught.value.limit, caught.value.value, caught.value.maximum) == ("json_depth", 513, 512)
    with pytest.raises(LimitExceeded, match="over the limit of 512"):
        run(pipeline, b"[" * 200_000)
    ndjson_deep = b'{"a": 1}\n' + _nested(600) + b"\n"
    with pytest.raises(LimitExceeded, match="over the limit of 512"):
        run(pipeline, ndjson_deep)


def test_the_depth_limit_comes_from_the_context_limits(pipeline: RecordsPipeline) -> None:
    """CONVEYOR_LIMIT_JSON_DEPTH reaches the pipeline as ``context.limits.json_depth``."""
    shallow = OfflineContext(Limits(json_depth=5))
    assert [r.data for r in run(pipeline, _nested(5), shallow)[0]] == [{"a": [[[[]]]]}]
    with pytest.raises(LimitExceeded) as caught:
        run(pipeline, _nested(6), shallow)
    assert caught.value.message == "orders.json: json_depth is 6, over the limit of 5"
    ndjson_lines = b'{"a": 1}\n' + _nested(5) + b"\n"
    assert len(run(pipeline, ndjson_lines, shallow)[0]) == 2
    with pytest.raises(LimitExceeded, match="json_depth is 6, over the limit of 5"):
        run(pipeline, b'{"a": 1}\n' + _nested(6) + b"\n", shallow)
    deeper = OfflineContext(Limits(json_depth=600))
    assert len(run(pipeline, _nested(600), deeper)[0]) == 1


def test_the_depth_limit_stays_within_orjson_s(pipeline: RecordsPipeline) -> None:
    with pytest.raises(ValueError, match="max_depth must be 1 to 1024"):
        run(pipeline, b"[1]", OfflineContext(Limits(json_depth=2000)))


def _alternating(depth: int) -> bytes:
    """Arrays and objects nested in turn: ``{[]}`` collapses two levels in one pass of the guard's
    cheap bound, which once let documents up to twice the limit through."""
    opens = [b"[" if level % 2 else b'{"k":' for level in range(depth)]
    closes = [b"]" if level % 2 else b"}" for level in reversed(range(depth))]
    return b"".join(opens) + b"1" + b"".join(closes)


def test_the_guard_is_exact_however_the_nesting_alternates() -> None:
    for limit in range(1, 24):
        for depth in range(1, 40):
            guard = NestingGuard(limit, "f")
            if depth > limit:
                with pytest.raises(LimitExceeded, match=f"json_depth is {depth}, over the limit of {limit}"):
                    guard.feed(_alternating(depth))
            else:
                guard.feed(_alternating(depth))
                assert guard.depth == 0


def test_alternating_nesting_just_past_the_default_limit_is_refused(pipeline: RecordsPipeline) -> None:
    data = b"[" * 500 + _alternating(16) + b"]" * 500
    with pytest.raises(LimitExceeded, match="json_depth is 516, over the limit of 512"):
        run(pipeline, data)
    assert len(run(pipeline, data, OfflineContext(Limits(json_depth=516)))[0]) == 1


@pytest.mark.parametrize(
    "data",
    [
        b'["[[[[[[", "{{{{{{{"]',
        b'["\\\\", "[[[[[[[["]',
        b'["\\"[[[[[[[", 1]',
        b'{"k\\\\\\"[[[[[[": "]]]]]]]]]]]"}',
    ],
)
def test_brackets_inside_strings_do_not_count(data: bytes) -> None:
    whole = NestingGuard(2, "f")
    whole.feed(data)
    bytewise = NestingGuard(2, "f")
    for index in range(len(data)):
        bytewise.feed(data[index : index + 1])
    assert whole.depth == bytewise.depth == 0
    assert not whole.in_string and not bytewise.in_string


# --- params ----------------------------------------------------------------------------------------


def test_validate_params_fills_defaults() -> None:
    assert WHOLE.validate_params({}) == {
        "path": None,
        "key": None,
        "key_required": False,
        "schema": None,
        "collection": "default",
        "format": "auto",
    }
    checked = WHOLE.validate_params(
        {"key": "order.id", "key_required": "true", "schema": '{"type": "object"}', "path": None}
    )
    assert checked["key_required"] is True
    assert checked["schema"] == {"type": "object"}
    assert WHOLE.validate_params(checked) == checked  # run() may get params validated already


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"keys": "id"}, "'keys' is unknown"),
        ({"path": "data..items"}, "'path' must be a dotted path"),
        ({"path": 3}, "'path' must be a dotted path"),
        ({"key": ""}, "'key' must be a dotted path"),
        ({"key": "id", "key_required": "yes"}, "'key_required' must be true or false"),
        ({"key_required": True}, "'key_required' needs parameter 'key'"),
        ({"schema": [1]}, "'schema' must be a JSON Schema object"),
        ({"schema": "{not json"}, "'schema' is not valid JSON"),
        ({"schema": {"$schema": 4}}, "'schema' has a $schema that is not a string"),
        ({"collection": ""}, "'collection' must be a non-empty string"),
        ({"collection": 5}, "'collection' must be a non-empty string"),
        ({"format": "xml"}, "'format' must be one of auto, json, ndjson"),
    ],
)
def test_bad_params_are_input_errors_naming_the_param(params: dict[str, Any], named: str) -> None:
    with pytest.raises(InputError, match="records: parameter " + named.replace("$", r"\$")):
        WHOLE.validate_params(params)
    with pytest.raises(InputError):
        WHOLE.run(document(b"[]"), params, OfflineContext())


# --- laziness, progress, cancellation -------------------------------------------------------------


def test_records_are_lazy_and_the_summary_completes_at_the_end(pipeline: RecordsPipeline) -> None:
    result = pipeline.run(document(b"[1, 2, 3]"), {}, OfflineContext())
    assert iter(result.records) is result.records
    assert result.summary["records"] == 0
    assert next(iter(result.records)).data == 1
    assert sum(1 for _ in result.records) == 2
    assert result.summary["records"] == 3


class _Trickle(io.BytesIO):
    """A stream that returns at most 7 bytes a read, as a network stream may."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(7 if size is None or size < 0 else min(size, 7))


def test_short_reads_are_read_on(pipeline: RecordsPipeline) -> None:
    data = b'\xef\xbb\xbf[{"id": 1}, {"id": 2}, {"id": 3, "text": "' + b"x" * 100 + b'"}]'
    doc = DocumentInput("t.json", "application/json", "", len(data), lambda: _Trickle(data))
    result = pipeline.run(doc, {"key": "id"}, OfflineContext())
    assert [r.key for r in result.records] == ["1", "2", "3"]


def test_nothing_is_read_until_records_are_iterated() -> None:
    opened: list[int] = []

    def open_stream() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(b"not json")

    doc = DocumentInput("x.json", "application/json", "", 8, open_stream)
    result = WHOLE.run(doc, {}, OfflineContext())
    assert opened == []
    with pytest.raises(InputError):
        list(result.records)


class _CancelAfter(OfflineContext):
    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_cancelled(self) -> bool:
        self.checks -= 1
        return self.checks < 0


def test_cancellation_is_checked_while_records_flow(pipeline: RecordsPipeline) -> None:
    data = orjson.dumps(list(range(12_000)))
    context = _CancelAfter(checks=3)
    result = pipeline.run(document(data), {}, context)
    landed = 0
    with pytest.raises(Cancelled):
        for _ in result.records:
            landed += 1
    assert 2000 <= landed < 4000


def test_progress_is_reported_now_and_then(pipeline: RecordsPipeline) -> None:
    data = orjson.dumps([{"n": n} for n in range(20_000)])
    context = OfflineContext()
    result = pipeline.run(document(data), {}, context)
    assert sum(1 for _ in result.records) == 20_000
    values = [event["value"] for kind, event in context.events if kind == "PROGRESS"]
    assert len(values) == 4
    assert values == sorted(values)
    assert 0 < values[0] < values[-1] <= 100


# --- memory ----------------------------------------------------------------------------------------

_MEASURE = """
import json, resource, sys
from pathlib import Path
from conveyor.content import DocumentInput, OfflineContext
from conveyor.pipelines.records import RecordsPipeline

path = Path(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = path.stat().st_size
document = DocumentInput(path.name, "application/json", "", size, lambda: path.open("rb"))
result = RecordsPipeline().run(document, {"key": "id"}, OfflineContext())
count = sum(1 for _ in result.records)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"records": count, "growth_kib": after - before, "summary": result.summary}))
"""


@pytest.mark.slow
def test_a_200_mb_array_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    rows = 0
    with path.open("wb") as out:
        out.write(b"[")
        while out.tell() < 200_000_000:
            batch = [
                {"id": rows + n, "name": f"customer {rows + n}", "tags": ["a", "b"], "pad": "x" * 150}
                for n in range(20_000)
            ]
            out.write((b"," if rows else b"") + orjson.dumps(batch)[1:-1])
            rows += len(batch)
        out.write(b"]")
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, check=False, timeout=280
    )
    assert done.returncode == 0, done.stderr.decode()
    measured = json.loads(done.stdout)
    assert measured["records"] == rows
    assert measured["summary"]["format"] == "array"
    assert measured["growth_kib"] < 100 * 1024, measured
