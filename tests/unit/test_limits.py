"""Limit checks: file size, pixel bombs, zip bombs, lying zip headers, hostile member names."""

from __future__ import annotations

import io
import random
import resource
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from conveyor.content import Limits
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors.limits import (
    RATIO_GRACE_BYTES,
    check_file_size,
    check_pixels,
    check_zip,
    is_unsafe_member_name,
    iter_zip_member,
    read_zip_member,
    zip_directory,
)

MIB = 1024 * 1024


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _noise(size: int, seed: int = 0) -> bytes:
    """Bytes that do not compress, so ratio checks stay out of the way."""
    return random.Random(seed).randbytes(size)


class _CountingReader(io.BytesIO):
    """A stream that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


# --- file size and pixels -------------------------------------------------------------------------


def test_file_size_at_the_limit_passes_and_above_is_refused() -> None:
    limits = Limits(file_bytes=1000)
    check_file_size(1000, limits, "a.pdf")
    with pytest.raises(LimitExceeded) as raised:
        check_file_size(1001, limits, "a.pdf")
    assert raised.value.limit == "file_bytes"
    assert raised.value.message == "a.pdf: file_bytes is 1001, over the limit of 1000"


def _png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit greyscale PNG of ``width`` x ``height`` white-on-nothing zeros: every row
    compresses to almost nothing, so 900 million pixels fit in about a hundred kilobytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    rows = bytes(1 + (width + 7) // 8) * 1000  # filter byte + packed bits, a thousand rows a call
    body = [compressor.compress(rows) for _ in range(height // 1000)]
    idat = b"".join(body) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_pixel_bomb_is_refused_from_its_header_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png_bomb(30_000, 30_000)
    assert len(data) < 200_000
    # Pillow's own bomb guard would refuse at open; the extractors leave the bound to Limits.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(io.BytesIO(data)) as image:  # reads the header only
        assert image.size == (30_000, 30_000)
        with pytest.raises(LimitExceeded) as raised:
            check_pixels(*image.size, Limits(), "bomb.png")
    error = raised.value
    assert (error.limit, error.value, error.maximum, error.subject) == (
        "image_pixels",
        900_000_000,
        150_000_000,
        "bomb.png",
    )
    assert error.message == "bomb.png: image_pixels is 900000000, over the limit of 150000000"


def test_ordinary_image_dimensions_pass() -> None:
    check_pixels(10_000, 15_000, Limits(), "scan.png")  # exactly 150 megapixels
    with pytest.raises(LimitExceeded):
        check_pixels(10_000, 15_001, Limits(), "scan.png")


# --- zip: a bomb, refused from the directory --------------------------------------------------------


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One member of 200 MB of zeros, deflated to about 200 KB (written in chunks)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    chunk = bytes(MIB)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w") as member,
    ):
        for _ in range(200):
            member.write(chunk)
    return path


def test_zip_bomb_is_refused_by_ratio_without_inflating(zip_bomb: Path) -> None:
    data = zip_bomb.read_bytes()
    stream = _CountingReader(data)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LimitExceeded) as raised:
        check_zip(stream, Limits(), "bomb.zip")
    peak_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    error = raised.value
    assert (error.limit, error.maximum, error.subject) == ("zip_ratio", 200.0, "bomb.zip:zeros.bin")
    assert isinstance(error.value, float)
    assert error.value > 1000
    # Only the end record and the directory were read, never the 200 KB of deflated data.
    assert stream.bytes_read < len(data) // 2
    assert peak_growth_kib < 50 * 1024


def test_zip_bomb_from_a_path_and_by_member_size(zip_bomb: Path) -> None:
    with pytest.raises(LimitExceeded) as raised:
        check_zip(zip_bomb, Limits(zip_ratio=10_000.0, zip_member_bytes=100 * MIB), "bomb.zip")
    assert raised.value.limit == "zip_member_bytes"


def test_reading_a_bomb_member_is_refused_before_inflating(zip_bomb: Path) -> None:
    with zipfile.ZipFile(zip_bomb) as archive, pytest.raises(LimitExceeded) as raised:
        read_zip_member(archive, "zeros.bin", Limits(), "bomb.zip")
    assert raised.value.limit == "zip_ratio"


def test_small_highly_compressible_members_are_not_held_to_the_ratio() -> None:
    data = _zip({"sheet.xml": b"<c/>" * (RATIO_GRACE_BYTES // 4)})
    check_zip(io.BytesIO(data), Limits(), "book.xlsx")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(read_zip_member(archive, "sheet.xml", Limits(), "book.xlsx")) == RATIO_GRACE_BYTES


# --- zip: a header that lies -------------------------------------------------------------------------


def _lying_zip(actual: bytes, declared_size: int) -> bytes:
    """A zip whose headers (local and central) declare ``declared_size`` for a member that really
    inflates to ``len(actual)`` bytes."""
    data = bytearray(_zip({"data.bin": actual}))
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared_size)
    struct.pack_into("<I", data, central + 24, declared_size)
    return bytes(data)


def test_a_lying_header_passes_the_directory_check_but_not_the_read() -> None:
    actual = bytes(5 * MIB)
    data = _lying_zip(actual, declared_size=1000)
    limits = Limits(zip_member_bytes=10_000)
    check_zip(io.BytesIO(data), limits, "liar.zip")  # the directory looks innocent
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("data.bin").file_size == 1000
        received = 0
        with pytest.raises(InputError) as raised:
            for chunk in iter_zip_member(archive, "data.bin", limits, "liar.zip"):
                received += len(chunk)
    assert "liar.zip:data.bin" in raised.value.message
    assert received <= limits.zip_member_bytes


def test_read_zip_member_returns_the_member() -> None:
    payload = _noise(300_000)
    data = _zip({"a/b.bin": payload})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert read_zip_member(archive, "a/b.bin", Limits(), "x.zip") == payload
        with pytest.raises(InputError, match=r"x\.zip: the archive has no member 'missing'"):
            read_zip_member(archive, "missing", Limits(), "x.zip")


# --- zip: counts, sizes, names, encryption, damage ------------------------------------------------


def test_member_count() -> None:
    data = _zip({f"m{n}.txt": b"x" for n in range(11)})
    check_zip(io.BytesIO(data), Limits(zip_members=11), "many.zip")
    with pytest.raises(LimitExceeded) as raised:
        check_zip(io.BytesIO(data), Limits(zip_members=10), "many.zip")
    assert raised.value.limit == "zip_members"
    assert raised.value.message == "many.zip: zip_members is 11, over the limit of 10"


def test_member_count_is_counted_when_the_end_record_understates_it() -> None:
    data = bytearray(_zip({f"m{n}.txt": b"x" for n in range(11)}))
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # "one entry"
    directory = zip_directory(io.BytesIO(bytes(data)))
    assert directory is not None
    assert directory.entries == 1
    with pytest.raises(LimitExceeded) as raised:
        check_zip(io.BytesIO(bytes(data)), Limits(zip_members=10), "many.zip")
    assert raised.value.limit == "zip_members"


def test_total_and_member_sizes() -> None:
    data = _zip({f"part{n}.bin": _noise(400_000, n) for n in range(3)})
    check_zip(io.BytesIO(data), Limits(zip_total_bytes=1_200_000), "parts.zip")
    with pytest.raises(LimitExceeded) as total:
        check_zip(io.BytesIO(data), Limits(zip_total_bytes=1_000_000), "parts.zip")
    assert total.value.limit == "zip_total_bytes"
    assert total.value.message == "parts.zip: zip_total_bytes is 1200000, over the limit of 1000000"
    with pytest.raises(LimitExceeded) as member:
        check_zip(io.BytesIO(data), Limits(zip_member_bytes=300_000), "parts.zip")
    assert member.value.limit == "zip_member_bytes"
    assert member.value.message.startswith("parts.zip:part0.bin: ")


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "a/../../evil.txt", "/etc/passwd", "\\windows\\evil.dll", "C:evil.txt", "a\\..\\evil"],
)
def test_path_traversal_members_are_refused_by_name(name: str) -> None:
    data = _zip({"fine.txt": b"ok", name: b"gotcha"})
    with pytest.raises(InputError) as raised:
        check_zip(io.BytesIO(data), Limits(), "upload.zip")
    assert not isinstance(raised.value, LimitExceeded)
    assert f"upload.zip:{name}:" in raised.value.message


@pytest.mark.parametrize("name", ["a/b.txt", "a..b/c.txt", "dir/", "..hidden", "x/.../y"])
def test_safe_member_names(name: str) -> None:
    assert not is_unsafe_member_name(name)


def test_encrypted_members_are_refused() -> None:
    data = bytearray(_zip({"plain.txt": b"ok", "secret.txt": b"classified"}))
    central = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)  # the second entry
    struct.pack_into("<H", data, central + 8, 0x1)
    with pytest.raises(InputError, match=r"upload\.zip:secret\.txt: the member is encrypted"):
        check_zip(io.BytesIO(bytes(data)), Limits(), "upload.zip")


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 not really a zip", b"", _zip({"a.txt": _noise(5000)})[:3000]],
    ids=["garbage", "empty", "truncated"],
)
def test_a_damaged_zip_is_an_input_error_naming_the_file(data: bytes) -> None:
    with pytest.raises(InputError, match=r"^broken\.zip: ") as raised:
        check_zip(io.BytesIO(data), Limits(), "broken.zip")
    assert not isinstance(raised.value, LimitExceeded)


def test_a_zip_after_prepended_bytes_is_checked_like_any_other() -> None:
    data = b"#!/bin/sh\nexit 0\n" + _zip({f"m{n}": b"x" for n in range(5)})
    check_zip(io.BytesIO(data), Limits(zip_members=5), "sfx.zip")
    with pytest.raises(LimitExceeded):
        check_zip(io.BytesIO(data), Limits(zip_members=4), "sfx.zip")


def _as_zip64(data: bytes) -> bytes:
    """The same archive with zip64 end records: the classic end record says "see zip64"."""
    end = data.rindex(b"PK\x05\x06")
    fields = struct.unpack_from("<4s4H2LH", data, end)
    entries, size, offset = fields[4], fields[5], fields[6]
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:end] + record + locator + classic


def test_zip64_end_records_are_read() -> None:
    data = _as_zip64(_zip({f"m{n}": b"x" for n in range(3)}))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["m0", "m1", "m2"]
    directory = zip_directory(io.BytesIO(data))
    assert directory is not None
    assert directory.entries == 3
    check_zip(io.BytesIO(data), Limits(zip_members=3), "big.zip")
    with pytest.raises(LimitExceeded, match="zip_members is 3"):
        check_zip(io.BytesIO(data), Limits(zip_members=2), "big.zip")
