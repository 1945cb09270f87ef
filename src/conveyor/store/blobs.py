"""Blob storage, content-addressed by SHA-256: a local folder (the default) or an S3-compatible bucket."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from conveyor.errors import InputError, LimitExceeded, NotFound, TransientError
from conveyor.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredBlob:
    key: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    size: int
    etag: str


class BlobStore(Protocol):
    """Where file bytes live. Keys are ``sha256/ab/cd/<hex digest>``; the same bytes share one key."""

    def put(self, stream: IO[bytes], *, max_bytes: int | None = None) -> StoredBlob: ...

    def open(self, key: str) -> IO[bytes]: ...

    def local_path(self, key: str) -> Path | None:
        """The blob as a file on this machine, when the store keeps it as one (parsers in other
        processes then open it directly instead of a copy)."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]: ...

    def list_prefix(self, prefix: str) -> Iterator[ListedObject]: ...

    def ping(self) -> None: ...


def content_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _copy_hashing(source: IO[bytes], target: IO[bytes], max_bytes: int | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise LimitExceeded("file size", f"over {max_bytes} bytes", f"{max_bytes} bytes")
        digest.update(chunk)
        target.write(chunk)
    return digest.hexdigest(), size


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise InputError(f"blob key {key!r} points outside the store")
        return path

    def put(self, stream: IO[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        incoming = self.root / "incoming"
        incoming.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=incoming, delete=False) as temp:
            try:
                sha256, size = _copy_hashing(stream, temp, max_bytes)
                temp.flush()
                os.fsync(temp.fileno())
            except BaseException:
                temp.close()
                Path(temp.name).unlink(missing_ok=True)
                raise
        key = content_key(sha256)
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        Path(temp.name).replace(final)
        _fsync_directory(final.parent)  # the rename itself must survive a crash
        return StoredBlob(key, sha256, size)

    def open(self, key: str) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"blob {key!r} not found") from None

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file():
                    yield path.relative_to(self.root).as_posix()

    def list_prefix(self, prefix: str) -> Iterator[ListedObject]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.startswith("incoming/"):
                stat = path.stat()
                yield ListedObject(key, stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}")

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise TransientError(f"blob folder {self.root} is not writable")


class S3BlobStore:
    """An S3-compatible bucket; ``prefix`` namespaces our keys so a bucket can be shared."""

    def __init__(self, bucket: str, prefix: str, client: S3Client) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, stream: IO[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        # The key is the digest, so the bytes are spooled (to disk past 8 MB) before the upload.
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            sha256, size = _copy_hashing(stream, spool, max_bytes)
            key = content_key(sha256)
            if not self.exists(key):
                spool.seek(0)
                with self._errors(key):
                    self.client.upload_fileobj(spool, self.bucket, self._full(key))
        return StoredBlob(key, sha256, size)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise NotFound(f"object {key!r} not found in s3://{self.bucket}") from None
            raise TransientError(f"S3 error on {key!r}: {error}") from error
        except BotoCoreError as error:
            raise TransientError(f"S3 unreachable for {key!r}: {error}") from error

    def open(self, key: str) -> IO[bytes]:
        return self.open_object(self.bucket, self._full(key))

    def local_path(self, key: str) -> Path | None:  # noqa: ARG002 - the protocol's signature
        return None

    def open_object(self, bucket: str, full_key: str) -> IO[bytes]:
        with self._errors(full_key):
            body: Any = self.client.get_object(Bucket=bucket, Key=full_key)["Body"]
        return body  # type: ignore[no-any-return]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise TransientError(f"S3 error on {key!r}: {error}") from error
        return True

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def keys(self) -> Iterator[str]:
        strip = len(self._full(""))
        for item in self._list(self._full("sha256/")):
            yield item.key[strip:]

    def list_prefix(self, prefix: str) -> Iterator[ListedObject]:
        """List under an absolute prefix of the bucket (watched S3 prefixes are not ours)."""
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ListedObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ListedObject(item["Key"], item["Size"], item["ETag"].strip('"'))

    def ping(self) -> None:
        with self._errors(""):
            self.client.head_bucket(Bucket=self.bucket)


def open_blob_store(url: str, *, endpoint_url: str | None = None, region: str = "us-east-1") -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        return S3BlobStore(parsed.netloc, parsed.path, client)
    if not parsed.scheme:
        return LocalBlobStore(Path(url))
    raise InputError(f"unsupported storage URL {url!r}: use a folder path, file:// or s3://")


def blob_store_for(settings: Settings, url: str | None = None) -> BlobStore:
    """The configured store, or another location (``url``) reached with the same S3 settings."""
    return open_blob_store(
        url or settings.resolved_storage_url,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
    )
