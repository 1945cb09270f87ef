"""Zip and OLE2 compound-file containers: which Office or OpenDocument format (if any) each holds."""

from __future__ import annotations

import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from conveyor.extractors.limits import zip_directory

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
XLTX = "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
XLTM = "application/vnd.ms-excel.template.macroEnabled.12"
XLSB = "application/vnd.ms-excel.sheet.binary.macroEnabled.12"
XLS = "application/vnd.ms-excel"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOC = "application/msword"
ZIP = "application/zip"
OLE = "application/x-ole-storage"
# A password-protected xlsx/docx: Office wraps the encrypted package in an OLE compound file.
OOXML_ENCRYPTED = "application/x-ooxml-encrypted"

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def container_type(head: bytes, reopen: Callable[[], IO[bytes]] | None) -> str | None:
    """The media type of a zip or OLE2 container from its first bytes, None for anything else.

    Without ``reopen`` a zip stays ``application/zip`` (its directory is at the end) and an OLE
    file's directory is looked for in ``head`` alone.
    """
    if head.startswith(_ZIP_MAGIC):
        return _zip_type(reopen)
    if head.startswith(_OLE_MAGIC):
        return _ole_type(head, reopen)
    return None


@contextmanager
def _reopened(reopen: Callable[[], IO[bytes]]) -> Iterator[IO[bytes]]:
    """The whole file, seekable: a stream that cannot seek (an S3 body) is copied to a spool first."""
    with reopen() as stream:
        if stream.seekable():
            yield stream
            return
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            shutil.copyfileobj(stream, spool, 1024 * 1024)
            spool.seek(0)
            yield spool


# --- zip-based formats ----------------------------------------------------------------------------

# zipfile reads the whole central directory into objects; past this many bytes of it, sniffing
# stops at "a zip" (an xlsx of a thousand sheets has a directory of about 100 KB).
_MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
_MAX_MANIFEST_BYTES = 1024 * 1024
# The main part's content type in [Content_Types].xml, most specific first (lower-cased).
_OOXML_MAIN_PARTS: tuple[tuple[bytes, str], ...] = (
    (b"application/vnd.ms-excel.sheet.macroenabled.main+xml", XLSM),
    (b"application/vnd.ms-excel.template.macroenabled.main+xml", XLTM),
    (b"application/vnd.ms-excel.sheet.binary.macroenabled.main", XLSB),
    (b"spreadsheetml.template.main+xml", XLTX),
    (b"spreadsheetml.sheet.main+xml", XLSX),
    (b"wordprocessingml.document.main+xml", DOCX),
)
_ODF_TYPE = re.compile(r"application/vnd\.oasis\.opendocument\.[a-z.-]{1,60}")


def _zip_type(reopen: Callable[[], IO[bytes]] | None) -> str:
    if reopen is None:
        return ZIP
    try:
        with _reopened(reopen) as stream:
            directory = zip_directory(stream)
            if directory is None or directory.size > _MAX_DIRECTORY_BYTES:
                return ZIP
            stream.seek(0)
            with zipfile.ZipFile(stream) as archive:
                return _zip_member_type(archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError):
        # A damaged zip is still a zip; its extractor says what is wrong with it.
        return ZIP


def _zip_member_type(archive: zipfile.ZipFile) -> str:
    names = {name.lower(): name for name in archive.namelist()}
    if "mimetype" in names:  # OpenDocument: the first member, stored, names the type
        declared = _read_member(archive, names["mimetype"], 256).strip().decode("ascii", "replace")
        if _ODF_TYPE.fullmatch(declared):
            return declared
    if "[content_types].xml" in names:
        types = _read_member(archive, names["[content_types].xml"], _MAX_MANIFEST_BYTES).lower()
        for marker, media_type in _OOXML_MAIN_PARTS:
            if marker in types:
                return media_type
        if "xl/workbook.xml" in names:
            return XLSX
    return ZIP


def _read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with archive.open(name) as member:
        return member.read(limit)


# --- OLE2 compound files (CFB: MS-CFB) ------------------------------------------------------------

_SECTOR_MARKERS = 0xFFFFFFFA  # at and above: end of chain, free, FAT and DIFAT sectors
_MAX_DIRECTORY_SECTORS = 512  # 2,048 entries of 128 bytes at 512-byte sectors
_HEADER_FAT_SECTORS = 109  # FAT sectors listed in the header; more need the DIFAT chain


def _ole_type(head: bytes, reopen: Callable[[], IO[bytes]] | None) -> str:
    try:
        if reopen is None:
            names = _ole_names(lambda offset, size: head[offset : offset + size])
        else:
            with _reopened(reopen) as stream:
                names = _ole_names(_reader(stream))
    except (OSError, ValueError, struct.error):
        names = set()
    if names & {"workbook", "book"}:  # BIFF8 and BIFF5 workbooks
        return XLS
    if {"encryptedpackage", "encryptioninfo"} <= names:
        return OOXML_ENCRYPTED
    if "worddocument" in names:
        return DOC
    return OLE


def _reader(stream: IO[bytes]) -> Callable[[int, int], bytes]:
    def read_at(offset: int, size: int) -> bytes:
        stream.seek(offset)
        return stream.read(size)

    return read_at


def _ole_names(read_at: Callable[[int, int], bytes]) -> set[str]:
    """The (lower-cased) names in the directory, following its sector chain through the FAT.

    Only the FAT sectors the header lists are consulted (files up to ~7 MB at 512-byte sectors);
    a directory continuing past them is read as far as they reach, and the root directory sectors
    are nearly always at the start of the chain anyway.
    """
    header = read_at(0, 512)
    if len(header) < 512:
        return set()
    sector_shift = struct.unpack_from("<H", header, 0x1E)[0]
    if sector_shift not in (9, 12):
        return set()
    sector_size = 1 << sector_shift
    fat_sectors = struct.unpack_from(f"<{_HEADER_FAT_SECTORS}I", header, 0x4C)
    names: set[str] = set()
    seen: set[int] = set()
    sector = struct.unpack_from("<I", header, 0x30)[0]
    while sector < _SECTOR_MARKERS and sector not in seen and len(seen) < _MAX_DIRECTORY_SECTORS:
        seen.add(sector)
        data = read_at((sector + 1) * sector_size, sector_size)
        names.update(_entry_name(data[at : at + 128]) for at in range(0, len(data) - 127, 128))
        sector = _next_sector(read_at, fat_sectors, sector_size, sector)
    names.discard("")
    return names


def _next_sector(
    read_at: Callable[[int, int], bytes], fat_sectors: tuple[int, ...], sector_size: int, sector: int
) -> int:
    per_fat_sector = sector_size // 4
    index, slot = divmod(sector, per_fat_sector)
    if index >= len(fat_sectors) or fat_sectors[index] >= _SECTOR_MARKERS:
        return _SECTOR_MARKERS
    entry = read_at((fat_sectors[index] + 1) * sector_size + slot * 4, 4)
    return struct.unpack("<I", entry)[0] if len(entry) == 4 else _SECTOR_MARKERS


def _entry_name(entry: bytes) -> str:
    """A directory entry's name; empty for unused entries (type 0) and nonsense."""
    if len(entry) < 128 or entry[0x42] not in (1, 2, 5):  # storage, stream, root
        return ""
    length = struct.unpack_from("<H", entry, 0x40)[0]
    if not 2 <= length <= 64 or length % 2:
        return ""
    return entry[: length - 2].decode("utf-16-le", "replace").lower()
