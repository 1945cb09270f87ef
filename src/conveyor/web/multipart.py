"""Reading a ``multipart/form-data`` upload as it streams in, within hard limits.

Why not FastAPI's ``UploadFile``/``Form`` or Starlette's ``request.form()``: they read the whole
body before the route sees it and have no bound on the total bytes of the files (Starlette's
``max_part_size`` only covers non-file fields), so a limit could only be checked after the fact.
Here python-multipart's low-level ``MultipartParser`` is fed chunk by chunk from
``request.stream()`` and every bound is checked as the bytes arrive:

- ``Content-Length`` over the body limit: 413 before a byte is read;
- body bytes (a chunked body has no length) and file bytes over the limits: 413 at once;
- number of parts, header lines per part, bytes of headers per part, bytes of a plain field and
  of all plain fields together; pathological bodies (thousands of tiny parts, endless headers)
  are a known CPU attack on Python multipart parsers, so each is cut off early;
- a part whose name the caller does not expect: 400 as soon as its headers end, before any of its
  bytes are kept;
- number of file parts (``upload_max_files``): 413 before the file that is one too many is opened,
  since each file part past the memory budget holds a file descriptor until the request ends.

File parts go to spooled temporary files (in memory up to a small per-request budget, then on
disk), so memory stays bounded whatever the size; the caller hands them to the blob store.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from conveyor.errors import LimitExceeded
from conveyor.settings import Settings
from conveyor.web.errors import BadRequest, UnsupportedMediaType

# Room for boundaries, part headers and the plain fields around the files.
FRAMING_BYTES = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
# All plain fields of one request together: room for a full-size params field and small others.
MAX_FIELDS_BYTES = 128 * 1024
MAX_HEADERS_PER_PART = 8
MEMORY_BUDGET_BYTES = 4 * 1024 * 1024
SPOOL_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_file_bytes: int
    max_files: int
    max_parts: int
    max_header_bytes: int

    @property
    def max_body_bytes(self) -> int:
        return self.max_file_bytes + FRAMING_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(
            settings.upload_max_bytes,
            settings.upload_max_files,
            settings.multipart_max_parts,
            settings.multipart_max_header_bytes,
        )


@dataclass(slots=True)
class UploadedFile:
    filename: str
    stream: IO[bytes]
    size: int = 0
    field: str = "file"  # the form field it came in


@dataclass(slots=True)
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)


class _FormReader:
    """The parser's callbacks: one part at a time, into a field buffer or a spooled file."""

    def __init__(
        self,
        boundary: bytes,
        limits: UploadLimits,
        files: frozenset[str],
        fields: frozenset[str],
        stack: contextlib.ExitStack,
    ) -> None:
        self.limits = limits
        self.file_fields = files
        self.plain_fields = fields
        self.stack = stack
        self.form = UploadForm()
        self.parts = 0
        self.body_bytes = 0
        self.file_bytes = 0
        self.field_bytes = 0
        self.memory_left = MEMORY_BUDGET_BYTES
        self.finished = False
        self._reset_part()
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
            max_header_count=MAX_HEADERS_PER_PART,
            max_header_size=limits.max_header_bytes,
        )

    def _reset_part(self) -> None:
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.header_bytes = 0
        self.headers: dict[str, str] = {}
        self.name = ""
        self.buffer = bytearray()
        self.file: UploadedFile | None = None

    def feed(self, chunk: bytes) -> None:
        self.body_bytes += len(chunk)
        if self.body_bytes > self.limits.max_body_bytes:
            raise _too_large("request body", self.body_bytes, self.limits.max_body_bytes)
        try:
            self.parser.write(chunk)
        except FormParserError as error:
            raise BadRequest(f"malformed multipart body: {error}") from None

    def close(self) -> UploadForm:
        self.parser.finalize()
        if not self.finished:
            raise BadRequest("the multipart body ended before its closing boundary")
        return self.form

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise LimitExceeded("number of multipart parts", self.parts, self.limits.max_parts)
        self._reset_part()

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.limits.max_header_bytes:
            raise LimitExceeded(
                "multipart part headers", f"{self.header_bytes} bytes", self.limits.max_header_bytes
            )

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        name = self.header_name.decode("latin-1").strip().lower()
        self.headers[name] = self.header_value.decode("latin-1")
        self.header_name = bytearray()
        self.header_value = bytearray()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self.headers.get("content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise BadRequest("every multipart part needs Content-Disposition: form-data; name=...")
        self.name = options[b"name"].decode("utf-8", errors="replace")
        filename = options.get(b"filename")
        if filename is None:
            if self.name in self.file_fields:
                raise BadRequest(f"form field {self.name!r} must be a file part (with a filename)")
            if self.name not in self.plain_fields:
                raise BadRequest(f"unknown form field {self.name!r}{self._expected()}")
            if self.name in self.form.fields:
                raise BadRequest(f"form field {self.name!r} is given twice")
            return
        if self.name not in self.file_fields:
            raise BadRequest(f"unexpected file part {self.name!r}{self._expected()}")
        if len(self.form.files) >= self.limits.max_files:
            count = f"at least {len(self.form.files) + 1}"
            raise LimitExceeded("number of files", count, self.limits.max_files)
        self.file = UploadedFile(filename.decode("utf-8", errors="replace"), self._spool(), field=self.name)
        self.form.files.append(self.file)

    def _expected(self) -> str:
        files = ", ".join(sorted(self.file_fields))
        fields = ", ".join(sorted(self.plain_fields))
        return f" (files: {files}; fields: {fields})"

    def _spool(self) -> IO[bytes]:
        """In memory while this request's budget lasts, then straight to disk."""
        in_memory = min(SPOOL_BYTES, self.memory_left)
        self.memory_left -= in_memory
        spool: IO[bytes]
        if in_memory > 0:
            spool = tempfile.SpooledTemporaryFile(max_size=in_memory)  # noqa: SIM115
        else:
            spool = tempfile.TemporaryFile()  # noqa: SIM115
        return self.stack.enter_context(spool)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self.file is not None:
            self.file_bytes += size
            if self.file_bytes > self.limits.max_file_bytes:
                raise _too_large("upload", self.file_bytes, self.limits.max_file_bytes)
            self.file.size += size
            self.file.stream.write(data[start:end])
            return
        if len(self.buffer) + size > MAX_FIELD_BYTES:
            raise _too_large(f"form field {self.name!r}", len(self.buffer) + size, MAX_FIELD_BYTES)
        self.field_bytes += size
        if self.field_bytes > MAX_FIELDS_BYTES:
            raise _too_large("form fields", self.field_bytes, MAX_FIELDS_BYTES)
        self.buffer += data[start:end]

    def _part_end(self) -> None:
        if self.file is not None:
            self.file.stream.seek(0)
            return
        try:
            self.form.fields[self.name] = self.buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"form field {self.name!r} is not UTF-8") from None

    def _end(self) -> None:
        self.finished = True


def _too_large(what: str, size: int, maximum: int) -> LimitExceeded:
    return LimitExceeded(f"{what} size", f"at least {size} bytes", f"{maximum} bytes")


@contextlib.asynccontextmanager
async def read_upload(
    request: Request,
    limits: UploadLimits,
    *,
    file_fields: frozenset[str],
    fields: frozenset[str],
) -> AsyncIterator[UploadForm]:
    """The parsed form, whose file parts are named one of ``file_fields`` and plain parts one of
    ``fields`` (each at most once); its temporary files are deleted when the block ends."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType("send the files as multipart/form-data")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart Content-Type has no boundary")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limits.max_body_bytes:
            raise _too_large("request body", int(declared), limits.max_body_bytes)
    with contextlib.ExitStack() as stack:
        try:
            reader = _FormReader(boundary, limits, file_fields, fields, stack)
        except FormParserError as error:
            raise BadRequest(f"bad multipart boundary: {error}") from None
        async for chunk in request.stream():
            if chunk:
                reader.feed(chunk)
        yield reader.close()
