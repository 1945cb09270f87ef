"""Blob stores: the local folder and a real S3-compatible server (moto_server), same contract."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import LimitExceeded, NotFound
from conveyor.store.blobs import BlobStore, LocalBlobStore, S3BlobStore, content_key, open_blob_store
from tests.support import s3_client


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    endpoint = request.getfixturevalue("moto_server")
    bucket = request.getfixturevalue("s3_bucket")
    yield S3BlobStore(bucket, "conveyor/blobs", s3_client(endpoint))


def test_put_is_content_addressed_and_reads_back(store: BlobStore) -> None:
    data = b'{"id": 1}\n' * 1000
    first = store.put(io.BytesIO(data))
    second = store.put(io.BytesIO(data))
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.key == content_key(first.sha256)
    assert first.size == len(data)
    with store.open(first.key) as stream:
        assert stream.read() == data
    assert store.exists(first.key)
    assert list(store.keys()) == [first.key]


def test_delete_and_missing(store: BlobStore) -> None:
    blob = store.put(io.BytesIO(b"bytes"))
    store.delete(blob.key)
    assert not store.exists(blob.key)
    assert list(store.keys()) == []
    with pytest.raises(NotFound):
        store.open(blob.key).read()


def test_size_limit_stops_the_copy_and_keeps_nothing(store: BlobStore) -> None:
    with pytest.raises(LimitExceeded, match="file size"):
        store.put(io.BytesIO(b"x" * 5000), max_bytes=4096)
    assert list(store.keys()) == []


def test_large_blob_streams_through(store: BlobStore) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: past the S3 spool's memory threshold
    blob = store.put(io.BytesIO(data))
    with store.open(blob.key) as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == blob.sha256


def test_ping(store: BlobStore) -> None:
    store.ping()


def test_local_store_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    (tmp_path / "secret").write_text("no")
    with pytest.raises(Exception, match="outside the store"):
        store.open("../secret")


def test_open_blob_store_by_url(tmp_path: Path, moto_server: str, s3_bucket: str, s3_env: str) -> None:
    assert isinstance(open_blob_store(f"file://{tmp_path}"), LocalBlobStore)
    s3 = open_blob_store(f"s3://{s3_bucket}/prefix", endpoint_url=moto_server)
    assert isinstance(s3, S3BlobStore)
    blob = s3.put(io.BytesIO(b"hello"))
    listed = [item.key for item in s3.list_prefix("prefix/")]
    assert listed == [f"prefix/{blob.key}"]
