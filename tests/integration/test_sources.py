"""Watched folders and S3 prefixes hand each new file in once, across restarts and re-uploads."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import intake
from conveyor.sources import S3Prefix, Submit, WatchedFolder
from conveyor.store.blobs import LocalBlobStore, S3BlobStore
from conveyor.store.tables import Job, SourceFile
from tests.support import s3_client


@pytest.fixture
def submit(tmp_path: Path) -> Submit:
    return functools.partial(intake.submit_from_source, blobs=LocalBlobStore(tmp_path / "blobs"))


def _jobs(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def test_watched_folder_takes_each_stable_file_once(
    sessions: sessionmaker[Session], submit: Submit, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "nested").mkdir(parents=True)
    (inbox / "a.json").write_bytes(b'[{"id": 1}]')
    (inbox / "nested" / "b.json").write_bytes(b'[{"id": 2}]')
    (inbox / ".hidden.json").write_bytes(b"[]")
    (inbox / "c.json.part").write_bytes(b"[")
    folder = WatchedFolder(inbox, "records", sessions, submit)
    assert folder.scan() == [], "a file is taken only once it held still for one scan"
    queued = folder.scan()
    assert len(queued) == 2
    # A stable file already taken is not read again: bytes swapped under the same size and mtime
    # would be queued as new work if it were.
    stat = (inbox / "a.json").stat()
    (inbox / "a.json").write_bytes(b'[{"id": 9}]')
    os.utime(inbox / "a.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert folder.scan() == []
    (inbox / "a.json").write_bytes(b'[{"id": 1}]')
    os.utime(inbox / "a.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with sessions() as session:
        paths = sorted(session.scalars(select(SourceFile.path)))
    assert paths == ["a.json", "nested/b.json"]

    restarted = WatchedFolder(inbox, "records", sessions, submit)
    restarted.scan()
    assert restarted.scan() == [], "a restart must not hand the same files in again"
    assert _jobs(sessions) == 2

    (inbox / "a.json").write_bytes(b'[{"id": 1, "changed": true}]')
    os.utime(inbox / "a.json", ns=(1, 1))  # a new version: size and mtime differ
    restarted.scan()
    assert len(restarted.scan()) == 1, "changed bytes at the same path are new work"


def test_two_watchers_of_one_folder_never_double_submit(
    sessions: sessionmaker[Session], submit: Submit, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(5):
        (inbox / f"{n}.json").write_bytes(b'[{"id": %d}]' % n)
    one = WatchedFolder(inbox, "records", sessions, submit)
    two = WatchedFolder(inbox, "records", sessions, submit)
    one.scan()
    two.scan()
    assert len(one.scan()) + len(two.scan()) == 5
    assert _jobs(sessions) == 5


def test_s3_prefix_takes_new_objects_once(
    sessions: sessionmaker[Session], submit: Submit, moto_server: str, s3_bucket: str
) -> None:
    client: Any = s3_client(moto_server)
    reader = S3BlobStore(s3_bucket, "", client)
    client.put_object(Bucket=s3_bucket, Key="drop/1.json", Body=b'[{"id": 1}]')
    client.put_object(Bucket=s3_bucket, Key="drop/2.ndjson", Body=b'{"id": 2}\n')
    client.put_object(Bucket=s3_bucket, Key="elsewhere/3.json", Body=b"[]")

    downloads: list[str] = []

    def open_object(bucket: str, key: str) -> Any:
        downloads.append(key)
        return reader.open_object(bucket, key)

    def poller() -> S3Prefix:
        return S3Prefix(
            bucket=s3_bucket,
            prefix="drop/",
            pipeline="records",
            sessions=sessions,
            submit=submit,
            list_objects=lambda _bucket, prefix: list(reader.list_prefix(prefix)),
            open_object=open_object,
        )

    assert len(poller().scan()) == 2
    assert poller().scan() == [], "a restart must not hand the same objects in again"
    assert sorted(downloads) == ["drop/1.json", "drop/2.ndjson"], "known ETags are not downloaded"
    client.put_object(Bucket=s3_bucket, Key="drop/1.json", Body=b'[{"id": 1}]')  # same bytes again
    client.copy_object(  # same bytes, new ETag (as a multipart or re-encrypted upload would give)
        Bucket=s3_bucket,
        Key="drop/2.ndjson",
        CopySource={"Bucket": s3_bucket, "Key": "drop/2.ndjson"},
        Metadata={"touched": "yes"},
        MetadataDirective="REPLACE",
    )
    downloads.clear()
    assert poller().scan() == []
    assert poller().scan() == []
    assert len(downloads) <= 2, "an ETag seen with known bytes is remembered: no download again"
    client.put_object(Bucket=s3_bucket, Key="drop/1.json", Body=b'[{"id": 1, "v": 2}]')
    assert len(poller().scan()) == 1
    assert _jobs(sessions) == 3
