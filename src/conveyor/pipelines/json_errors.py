"""The errors of JSON reading, at the line and column orjson would name, on the streaming path too.

yajl's errors carry no usable position, so on an error the file is parsed a second time up to the
chunk before the one that failed, and the rest is fed in single bytes (whole string contents, once
checked): the send that fails names the byte, and the events before it where the offending token
starts, as orjson would. UTF-8 is checked apart from any parser, so that error names a byte offset.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from typing import Any, Final

import ijson

from conveyor.errors import InputError

# The streaming parser. It lives here because locating its errors means running it again.
try:
    ijson_backend: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - the ijson wheels ship yajl2_c; slower but still correct
    ijson_backend = ijson

# What ijson raises besides JSONError: a lone surrogate escape (UnicodeDecodeError, a ValueError)
# and a number Python cannot hold (decimal.InvalidOperation, an ArithmeticError).
PARSE_ERRORS: Final = (ijson.JSONError, ValueError, ArithmeticError)

_CONTINUATION: Final = bytes(range(0x80, 0xC0))
# yajl takes form feed and vertical tab for whitespace; JSON allows them nowhere unescaped, so they
# become a byte yajl rejects in every position (with the same offset, so positions stay exact).
_NOT_WHITESPACE_IN_JSON: Final = bytes.maketrans(b"\x0b\x0c", b"\x01\x01")
_QUOTE: Final = ord('"')
_BACKSLASH: Final = ord("\\")
_STRING_SPECIAL: Final = re.compile(rb'["\\\x00-\x1f]')
_VALID_ESCAPE: Final = re.compile(rb'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})')
_LONG_NUMBER: Final = re.compile(rb"[0-9-][0-9eE.+-]{63,}")
# (index of the byte at which yajl failed, its exception, whether it accepted a token first)
_Failure = tuple[int, Exception, bool]


def syntax_error(filename: str, line: int, column: int, reason: str) -> InputError:
    return InputError(f"{filename}: invalid JSON at line {line}, column {column}: {reason}")


def encoding_error(filename: str, offset: int, byte: int) -> InputError:
    return InputError(f"{filename}: not UTF-8: invalid byte 0x{byte:02x} at byte offset {offset}")


def empty_error(filename: str) -> InputError:
    return InputError(f"{filename}: empty file (no JSON value)")


def stream_error(
    filename: str,
    error: Exception,
    chunks: Iterable[bytes],
    *,
    start: tuple[int, bool, bool],
    end: int,
    at_end: bool,
) -> InputError:
    """The syntax error for ``error``, raised by ijson, at the line and column of its token.

    ``chunks``: the document again, after its BOM and through ``for_yajl``. ``start``: (offset, in
    a string, escape pending) at the start of the chunk before the one that failed; ``end``: the
    bytes handed to the parser when it failed; ``at_end``: whether it had been told the document
    ended.
    """
    line, column, reason = _relocate(chunks, start, end, at_end)
    return syntax_error(filename, line, column, reason or _first_line(error))


class Utf8Check:
    """Finds the first byte that is not UTF-8 across chunks (an incremental decoder, skipped for ASCII)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.seen = 0

    def feed(self, chunk: bytes, *, final: bool = False) -> tuple[int, int] | None:
        """(byte offset, byte value) of the first invalid byte, or None."""
        pending = len(self._decoder.getstate()[0])
        try:
            if pending or final or not chunk.isascii():
                self._decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            return self.seen - pending + error.start, error.object[error.start]
        self.seen += len(chunk)
        return None


def for_yajl(chunk: bytes) -> bytes:
    if b"\x0b" in chunk or b"\x0c" in chunk:
        return chunk.translate(_NOT_WHITESPACE_IN_JSON)
    return chunk


def _relocate(
    chunks: Iterable[bytes], resume: tuple[int, bool, bool], end: int, at_end: bool
) -> tuple[int, int, str]:
    """Parse again up to the chunk before the one that failed, then feed the rest finely.

    A second parse up to the error, on the error path only.
    """
    start, in_string, escaped = resume
    start -= escaped  # begin at the backslash of an escape split between chunks
    relocator = _Relocator()
    cursor = _Cursor()
    window = bytearray()  # from start to where the parser stopped, not counted by the cursor
    fed = 0
    for chunk in chunks:
        fast = chunk[: max(0, start - fed)]
        if fast:  # an empty send would mean the end of the document to ijson
            relocator.parser.send(fast)
            relocator.events.clear()
            cursor.advance(fast)
        window += chunk[len(fast) :]
        fed += len(chunk)
        if fed >= end:
            break
    data = bytes(window[: end - start])
    failure = relocator.feed(data, in_string)
    if failure is None and at_end:
        failure = relocator.close(len(data))
    if failure is None:  # not expected (yajl is deterministic): name the end
        cursor.advance(data)
        return cursor.line, cursor.column, ""
    index, error, grew = failure
    message = _first_line(error)
    cursor.advance(data[: _token_start(data, index, grew, message, relocator.last_event)])
    return cursor.line, cursor.column, _reason(message)


class _Cursor:
    """Line and column (1-based, in characters) after the bytes seen so far."""

    def __init__(self) -> None:
        self.line = 1
        self.chars = 0

    def advance(self, data: bytes) -> None:
        newlines = data.count(b"\n")
        if newlines:
            self.line += newlines
            self.chars = 0
            data = data[data.rfind(b"\n") + 1 :]
        self.chars += len(data.translate(None, _CONTINUATION))

    @property
    def column(self) -> int:
        return self.chars + 1


def _first_line(error: Exception) -> str:
    """yajl's message without its drawing of the context (which points into one chunk only)."""
    if isinstance(error, UnicodeDecodeError):
        return "parse error: invalid \\u escape (a lone surrogate)"
    if isinstance(error, ArithmeticError):
        return "parse error: number out of range"
    text = str(error).split("\n")[0].split("\\n")[0]
    return text.removeprefix("b'").removeprefix('b"')


def _reason(message: str) -> str:
    return message.removeprefix("parse error: ").removeprefix("lexical error: ").rstrip(". ")


def _token_start(
    window: bytes, failed: int, grew: bool, message: str, last_event: tuple[int, str] | None
) -> int:
    """Where the offending token starts, given the byte at which yajl failed.

    yajl fails at the byte that completes a token (a closing quote, a literal's last letter) or at
    the byte after a number; orjson (the whole-file path) names where the token starts, so this
    does too: after the last token yajl accepted (``last_event``: where it was emitted, and its
    name) and the separators that follow it. ``grew``: the failing byte itself made yajl accept a
    pending token, so that byte starts the offender.
    """
    if "occurs before a character" in message:  # a bad escape: point at its backslash
        return failed - 1
    if grew or "premature EOF" in message or ("lexical" in message and "invalid string" not in message):
        return failed
    closer = window[failed : failed + 1]
    if (closer, "unallowed token" in message, "object key" in message) in (
        (b"]", True, False),
        (b"}", False, True),
    ):  # a trailing comma before the closer of its own container: point at the comma
        before = len(window[:failed].rstrip(b" \t\r\n")) - 1
        if before >= 0 and window[before] == ord(","):
            return before
    if last_event is None:
        return failed
    at, name = last_event
    start = at if name == "number" else at + 1  # a number ends at the byte after it
    while start < failed and window[start] in b" \t\r\n,:":
        start += 1
    return start


class _Relocator:
    """Feeds the bytes around a streaming error to a fresh yajl parser, finely, to see where it fails.

    Outside strings one byte per send, so the failing send names the byte. yajl re-reads a pending
    token on every send, so inside a long string that would be quadratic: a string's content is
    checked here (control characters, escapes) and sent whole, its closing quote alone.
    """

    def __init__(self) -> None:
        self.events = ijson.sendable_list()
        self.parser = ijson_backend.basic_parse_coro(self.events, use_float=True)
        self.last_event: tuple[int, str] | None = None  # where yajl last accepted a token, and what

    def feed(self, data: bytes, in_string: bool) -> _Failure | None:
        index = 0
        while index < len(data):
            if not in_string:
                long_number = _LONG_NUMBER.match(data, index)
                if long_number:  # only its last bytes one by one
                    index, failure = self._send(data, index, long_number.end() - 16)
                    if failure:
                        return failure
                index, failure = self._send(data, index, index + 1)
                in_string = data[index - 1] == _QUOTE
            else:
                end, bad = _string_extent(data, index)
                if bad is not None:
                    index, failure = self._send(data, index, bad)
                    return failure or self._bytewise(data, bad)
                index, failure = self._send(data, index, end)
                if failure or index == len(data):
                    return failure
                index, failure = self._send(data, index, index + 1)  # the closing quote
                in_string = False
            if failure:
                return failure
        return None

    def close(self, index: int) -> _Failure | None:
        try:
            self.parser.close()
        except PARSE_ERRORS as error:
            return index, error, bool(self.events)
        return None

    def _send(self, data: bytes, start: int, end: int) -> tuple[int, _Failure | None]:
        if end <= start:
            return start, None
        try:
            self.parser.send(data[start:end])
        except PARSE_ERRORS as error:
            return end, (end - 1, error, bool(self.events))
        if self.events:
            self.last_event = (end - 1, self.events[-1][0])
            self.events.clear()
        return end, None

    def _bytewise(self, data: bytes, start: int) -> _Failure | None:
        for index in range(start, min(start + 8, len(data))):
            _, failure = self._send(data, index, index + 1)
            if failure:
                return failure
        return None


def _string_extent(data: bytes, start: int) -> tuple[int, int | None]:
    """(where the string from ``start`` ends: its closing quote or the end of data, a bad byte)."""
    position = start
    while special := _STRING_SPECIAL.search(data, position):
        at = special.start()
        if data[at] == _QUOTE:
            return at, None
        escape = _VALID_ESCAPE.match(data, at) if data[at] == _BACKSLASH else None
        if escape is None:
            return at, at
        position = escape.end()
    return len(data), None
