"""Where files come from besides uploads: watched folders and S3 prefixes.

A source finds files and hands each new one to a ``Submit`` callback (the intake use case, wired by
the edge). "New" means: never seen at this source path with these bytes. The ``source_files`` row and
the job are written in one transaction, and the row is unique, so a restart, or two servers watching
the same folder, never submit a file twice. Files are left where they are: a watched folder is the
user's, and we don't move or delete what we did not create.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import InputError
from conveyor.store.blobs import CHUNK, ListedObject
from conveyor.store.database import read_session_factory
from conveyor.store.tables import SourceFile

logger = logging.getLogger(__name__)
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", "~")


class Submit(Protocol):
    def __call__(
        self, session: Session, *, stream: IO[bytes], filename: str, pipeline: str, source: str
    ) -> int:
        """Store the bytes and queue a job; returns the job id."""
        ...


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def already_seen(session: Session, *, source: str, path: str, sha256: str) -> bool:
    found = session.scalar(
        select(SourceFile.id).where(
            SourceFile.source == source, SourceFile.path == path, SourceFile.sha256 == sha256
        )
    )
    return found is not None


def _ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES)


def _readers(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Read-only sessions on the same engine: on SQLite, checks must not take the write lock."""
    return read_session_factory(sessions.kw["bind"])


@dataclass
class WatchedFolder:
    """Polls a folder tree. A file is taken once its size and mtime held still for one scan, so a
    file still being copied in is not read half-written; and it is read and hashed once per
    version, not on every scan."""

    root: Path
    pipeline: str
    sessions: sessionmaker[Session]
    submit: Submit
    _last: dict[Path, tuple[int, int]] = field(default_factory=dict)
    _taken: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.readers = _readers(self.sessions)

    @property
    def source(self) -> str:
        return f"watch:{self.root.resolve()}"

    def scan(self) -> list[int]:
        """One pass; returns the ids of the jobs it queued."""
        queued: list[int] = []
        current: dict[Path, tuple[int, int]] = {}
        for path in sorted(self.root.rglob("*")):
            try:
                if not path.is_file() or _ignored(path):
                    continue
                stat = path.stat()
            except OSError:
                continue  # vanished between the listing and the look
            signature = current[path] = (stat.st_size, stat.st_mtime_ns)
            if self._last.get(path) != signature or self._taken.get(path) == signature:
                continue
            try:
                job_id = self._take(path)
            except OSError as error:
                logger.warning("could not read %s: %s", path, error)
                continue
            self._taken[path] = signature
            if job_id is not None:
                queued.append(job_id)
        self._last = current
        self._taken = {path: sig for path, sig in self._taken.items() if path in current}
        return queued

    def _take(self, path: Path) -> int | None:
        relative = path.relative_to(self.root).as_posix()
        sha256 = _sha256_of(path)
        with self.readers() as session:
            if already_seen(session, source=self.source, path=relative, sha256=sha256):
                return None
        try:
            with self.sessions.begin() as session, path.open("rb") as stream:
                job_id = self.submit(
                    session,
                    stream=stream,
                    filename=path.name,
                    pipeline=self.pipeline,
                    source=self.source,
                )
                session.add(SourceFile(source=self.source, path=relative, sha256=sha256, job_id=job_id))
                session.flush()
        except IntegrityError:
            return None  # another process took it first
        logger.info("queued %s from %s as job %d", relative, self.root, job_id)
        return job_id


@dataclass
class S3Prefix:
    """Polls ``s3://bucket/prefix``. Objects are recognised by key and ETag before any download;
    new ones are fetched, hashed by the blob store and submitted."""

    bucket: str
    prefix: str
    pipeline: str
    sessions: sessionmaker[Session]
    submit: Submit
    list_objects: Callable[[str, str], list[ListedObject]]
    open_object: Callable[[str, str], IO[bytes]]

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def scan(self) -> list[int]:
        queued = []
        for item in self.list_objects(self.bucket, self.prefix):
            if item.key.endswith("/") or _ignored(Path(item.key)):
                continue
            job_id = self._take(item)
            if job_id is not None:
                queued.append(job_id)
        return queued

    def __post_init__(self) -> None:
        self.readers = _readers(self.sessions)

    def _take(self, item: ListedObject) -> int | None:
        with self.readers() as session:
            seen = session.scalar(
                select(SourceFile.id).where(
                    SourceFile.source == self.source,
                    SourceFile.path == item.key,
                    SourceFile.etag == item.etag,
                )
            )
        if seen is not None:
            return None
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            sha256 = self._download(item, spool)
            with self.readers() as session:
                known = already_seen(session, source=self.source, path=item.key, sha256=sha256)
            if known:
                # The same bytes under a new ETag (re-uploaded): remember the ETag, queue nothing.
                self._remember_etag(item, sha256)
                return None
            try:
                # The blob is stored before the first statement, so SQLite's write lock is not
                # held while bytes are copied.
                with self.sessions.begin() as session:
                    job_id = self.submit(
                        session,
                        stream=spool,
                        filename=Path(item.key).name,
                        pipeline=self.pipeline,
                        source=self.source,
                    )
                    session.add(
                        SourceFile(
                            source=self.source, path=item.key, sha256=sha256, etag=item.etag, job_id=job_id
                        )
                    )
                    session.flush()
            except IntegrityError:
                return None
        logger.info("queued %s as job %d", item.key, job_id)
        return job_id

    def _download(self, item: ListedObject, spool: IO[bytes]) -> str:
        digest = hashlib.sha256()
        with contextlib.closing(self.open_object(self.bucket, item.key)) as remote:
            while chunk := remote.read(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
        spool.seek(0)
        return digest.hexdigest()

    def _remember_etag(self, item: ListedObject, sha256: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(SourceFile)
                .where(
                    SourceFile.source == self.source,
                    SourceFile.path == item.key,
                    SourceFile.sha256 == sha256,
                )
                .values(etag=item.etag)
            )


class Poller(threading.Thread):
    """Runs ``scan`` of a source every ``interval`` seconds until stopped; a failing scan is logged
    and tried again, so a source that is briefly unreachable never stops the server."""

    def __init__(self, source: WatchedFolder | S3Prefix, interval: float) -> None:
        super().__init__(name=f"poll {source.source}", daemon=True)
        self.target_source = source
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.target_source.scan()
            except Exception:
                logger.exception("scanning %s failed; will retry", self.target_source.source)
            self.stopped.wait(self.interval)


def parse_watch(spec: str) -> tuple[str, str]:
    """``DIR=PIPELINE`` or ``s3://bucket/prefix=PIPELINE``."""
    location, sep, pipeline = spec.rpartition("=")
    if not sep or not location or not pipeline:
        raise InputError(f"expected LOCATION=PIPELINE, got {spec!r}")
    return location, pipeline
