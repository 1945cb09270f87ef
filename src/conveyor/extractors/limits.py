"""The one place that checks an untrusted file against the bounds in ``content.Limits``.

Every breach raises ``LimitExceeded`` naming the ``Limits`` field, the value found, the maximum and
the subject (a file name, or ``archive.zip:member`` for a zip member). Zip archives are checked
from their central directory before anything is inflated, and inflating a member is bounded again
because the sizes a zip declares can lie.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from conveyor.content import Limits
from conveyor.errors import InputError, LimitExceeded

# Members smaller than this are not held to the compression ratio: a few hundred kilobytes of
# repetitive XML compress 300:1 in ordinary workbooks, and cannot inflate into anything harmful.
RATIO_GRACE_BYTES = 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
_ENCRYPTED_FLAG = 0x1


def check_file_size(size: int, limits: Limits, subject: str) -> None:
    if size > limits.file_bytes:
        raise LimitExceeded("file_bytes", size, limits.file_bytes, subject)


def check_pixels(width: int, height: int, limits: Limits, subject: str) -> None:
    """Call with the dimensions from an image's header, before decoding it: a few kilobytes of
    PNG can declare 30,000 x 30,000 pixels and inflate to gigabytes."""
    pixels = width * height
    if pixels > limits.image_pixels:
        raise LimitExceeded("image_pixels", pixels, limits.image_pixels, subject)


def check_zip(source: IO[bytes] | Path, limits: Limits, subject: str) -> None:
    """Check a zip's directory without inflating anything: member count, each member's declared
    size and compression ratio, the declared total, and member names (no encryption, no absolute
    paths, no ``..``). A stream must be seekable; it is left at an unspecified position."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            _check_zip_stream(stream, limits, subject)
    else:
        _check_zip_stream(source, limits, subject)


def read_zip_member(archive: zipfile.ZipFile, name: str, limits: Limits, subject: str) -> bytes:
    """A member's bytes, refused once inflating passes the member size or ratio limit."""
    return b"".join(iter_zip_member(archive, name, limits, subject))


def iter_zip_member(archive: zipfile.ZipFile, name: str, limits: Limits, subject: str) -> Iterator[bytes]:
    """A member's bytes in chunks of up to 1 MiB, for copying large members without holding them.

    The declared size and ratio are checked first; then the inflated bytes are counted, so a member
    whose header understates its size is stopped at the limit rather than trusted.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise InputError(f"{subject}: the archive has no member {name!r}") from None
    where = f"{subject}:{name}"
    _check_member(info, limits, where)
    by_ratio = max(RATIO_GRACE_BYTES, int(info.compress_size * limits.zip_ratio))
    allowed = min(limits.zip_member_bytes, by_ratio)
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(min(_CHUNK_BYTES, allowed - size + 1)):
                size += len(chunk)
                if size > allowed:
                    _raise_inflated(size, info.compress_size, limits, where)
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
        raise InputError(f"{where}: the member is damaged ({error})") from error


def _raise_inflated(size: int, compress_size: int, limits: Limits, where: str) -> None:
    if size > limits.zip_member_bytes:
        raise LimitExceeded("zip_member_bytes", f"over {size}", limits.zip_member_bytes, where)
    ratio = size / max(compress_size, 1)
    raise LimitExceeded("zip_ratio", f"over {ratio:.0f}", limits.zip_ratio, where)


def _check_zip_stream(stream: IO[bytes], limits: Limits, subject: str) -> None:
    directory = zip_directory(stream)
    if directory is None:
        raise InputError(f"{subject}: not a zip archive, or a damaged one (no readable end record)")
    if directory.entries > limits.zip_members:
        raise LimitExceeded("zip_members", directory.entries, limits.zip_members, subject)
    # The declared count may understate; count the entries before zipfile builds one object each.
    counted = _count_entries(stream, directory, limits.zip_members + 1)
    if counted > limits.zip_members:
        raise LimitExceeded("zip_members", f"over {limits.zip_members}", limits.zip_members, subject)
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as error:
        raise InputError(f"{subject}: not a readable zip archive ({error})") from error
    for info in members:
        _check_member(info, limits, f"{subject}:{info.filename}")
    total = sum(info.file_size for info in members)
    if total > limits.zip_total_bytes:
        raise LimitExceeded("zip_total_bytes", total, limits.zip_total_bytes, subject)


def _check_member(info: zipfile.ZipInfo, limits: Limits, where: str) -> None:
    if is_unsafe_member_name(info.filename):
        raise InputError(f"{where}: the member's path is absolute or climbs out of the archive (..)")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise InputError(f"{where}: the member is encrypted")
    if info.file_size > limits.zip_member_bytes:
        raise LimitExceeded("zip_member_bytes", info.file_size, limits.zip_member_bytes, where)
    if info.file_size > RATIO_GRACE_BYTES:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.zip_ratio:
            raise LimitExceeded("zip_ratio", round(ratio, 1), limits.zip_ratio, where)


def is_unsafe_member_name(name: str) -> bool:
    """An absolute path (``/x``, ``\\x``, ``C:x``) or one with a ``..`` component, either slash."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return True
    return ".." in re.split(r"[/\\]", name)


# --- the central directory ------------------------------------------------------------------------

_END_RECORD = struct.Struct("<4s4H2LH")  # end of central directory
_END_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_END_RECORD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory
_ENTRY = struct.Struct("<4s6H3L5H2L")  # central directory file header, without name/extra/comment
_MAX_COMMENT = 0xFFFF


@dataclass(frozen=True)
class ZipDirectory:
    """Where a zip's central directory lies and how many entries it declares (which may lie)."""

    entries: int
    offset: int
    size: int


def zip_directory(stream: IO[bytes]) -> ZipDirectory | None:
    """Read the end record (zip64 too) of a seekable zip; None when there is none.

    ``offset`` is where the directory really starts (the end record's position minus its size),
    as zipfile computes it, so data prepended to the archive does not matter.
    """
    length = stream.seek(0, 2)
    tail_start = max(0, length - _END_RECORD.size - _MAX_COMMENT)
    stream.seek(tail_start)
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END_RECORD.size:
        return None
    fields = _END_RECORD.unpack_from(tail, at)
    entries, size, end_at = fields[4], fields[5], tail_start + at
    if end_at >= _END_LOCATOR.size + _END_RECORD64.size:
        stream.seek(end_at - _END_LOCATOR.size)
        locator = stream.read(_END_LOCATOR.size)
        if locator[:4] == b"PK\x06\x07":
            end_at -= _END_LOCATOR.size + _END_RECORD64.size
            stream.seek(end_at)
            record = stream.read(_END_RECORD64.size)
            if record[:4] != b"PK\x06\x06":
                return None
            zip64 = _END_RECORD64.unpack(record)
            entries, size = zip64[7], zip64[8]
    if size > end_at:
        return None
    return ZipDirectory(entries=entries, offset=end_at - size, size=size)


def _count_entries(stream: IO[bytes], directory: ZipDirectory, stop_at: int) -> int:
    """Entries in the directory, counted in constant memory up to ``stop_at``."""
    stream.seek(directory.offset)
    remaining, count = directory.size, 0
    while remaining >= _ENTRY.size and count < stop_at:
        header = stream.read(_ENTRY.size)
        if len(header) < _ENTRY.size or header[:4] != b"PK\x01\x02":
            break  # zipfile reports the damage
        fields = _ENTRY.unpack(header)
        variable = fields[10] + fields[11] + fields[12]  # name, extra field, comment
        stream.seek(variable, 1)
        remaining -= _ENTRY.size + variable
        count += 1
    return count
