"""Submitting documents: bytes or a storage reference in, a stored blob, a document row and a job out."""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping, Sequence
from typing import IO, Any
from urllib.parse import urlparse

from sqlalchemy.orm import Session

from conveyor import queue
from conveyor.errors import InputError
from conveyor.extractors.sniff import HEAD_BYTES, sniff
from conveyor.pipelines import get_pipeline
from conveyor.store.blobs import BlobStore, S3BlobStore, StoredBlob
from conveyor.store.tables import Document, Job, utcnow


def submit_document(
    session: Session,
    blobs: BlobStore,
    *,
    stream_or_blob: IO[bytes] | StoredBlob,
    filename: str,
    pipeline: str,
    params: Mapping[str, Any] | None = None,
    priority: int = 3,
    force: bool = False,
    source: str = "upload",
    max_bytes: int | None = None,
    max_attempts: int = 3,
    batch_id: int | None = None,
) -> Job:
    """Store the bytes, record the document and queue a job for it.

    The pipeline and params are checked before any byte is stored. Unless ``force``, a job that
    succeeded on the same bytes, pipeline and (validated) params makes the new job a duplicate:
    it is born ``succeeded`` with ``duplicate_of`` pointing at the earlier one.
    A zip is one document here; expanding it into a batch belongs to the batch feature.
    """
    validated = _check_submission(pipeline, params, priority)
    stored, head = _store(blobs, stream_or_blob, max_bytes)
    return _record_submission(
        session,
        blobs,
        stored=stored,
        head=head,
        filename=filename,
        pipeline=pipeline,
        params=validated,
        priority=priority,
        force=force,
        source=source,
        max_attempts=max_attempts,
        batch_id=batch_id,
    )


def submit_uploads(
    session: Session,
    blobs: BlobStore,
    *,
    files: Sequence[tuple[str, IO[bytes]]],
    pipeline: str,
    params: Mapping[str, Any] | None = None,
    priority: int = 3,
    force: bool = False,
    max_attempts: int = 3,
) -> list[Job]:
    """Several ``(filename, stream)`` files with the same options, one job each (as
    ``submit_document``). Every blob is stored before the first row is written, so that on SQLite
    the write lock is not held while large files are copied."""
    if not files:
        raise InputError("no file to submit: send at least one 'file' part")
    validated = _check_submission(pipeline, params, priority)
    stored = [(name, *_store(blobs, stream, None)) for name, stream in files]
    return [
        _record_submission(
            session,
            blobs,
            stored=blob,
            head=head,
            filename=name,
            pipeline=pipeline,
            params=validated,
            priority=priority,
            force=force,
            source="upload",
            max_attempts=max_attempts,
            batch_id=None,
        )
        for name, blob, head in stored
    ]


def _check_submission(pipeline: str, params: Mapping[str, Any] | None, priority: int) -> dict[str, Any]:
    if not 1 <= priority <= 4:
        raise InputError(f"priority must be 1 (most urgent) to 4 (least), not {priority}")
    given = dict(params or {})
    get_pipeline(pipeline).validate_params(given)  # refused here, before any byte is stored
    # Kept as given, not with every default filled in: defaults not named by the job come from the
    # ``params.<pipeline>`` setting when the job runs.
    return given


def _store(
    blobs: BlobStore, stream_or_blob: IO[bytes] | StoredBlob, max_bytes: int | None
) -> tuple[StoredBlob, bytes]:
    """The stored blob and its first bytes (for sniffing), read on the way in when the stream can
    rewind, else back from the store."""
    if isinstance(stream_or_blob, StoredBlob):
        return stream_or_blob, _read_head(blobs, stream_or_blob.key)
    if stream_or_blob.seekable():
        head = stream_or_blob.read(HEAD_BYTES)
        stream_or_blob.seek(0)
        return blobs.put(stream_or_blob, max_bytes=max_bytes), head
    stored = blobs.put(stream_or_blob, max_bytes=max_bytes)
    return stored, _read_head(blobs, stored.key)


def _record_submission(
    session: Session,
    blobs: BlobStore,
    *,
    stored: StoredBlob,
    head: bytes,
    filename: str,
    pipeline: str,
    params: dict[str, Any],
    priority: int,
    force: bool,
    source: str,
    max_attempts: int,
    batch_id: int | None,
) -> Job:
    document = Document(
        sha256=stored.sha256,
        filename=filename[:1024],
        media_type=sniff(head, filename, reopen=lambda: blobs.open(stored.key)).media_type,
        size=stored.size,
        source=source[:1024],
        blob_key=stored.key,
        created_at=utcnow(),
    )
    session.add(document)
    session.flush()
    dedup = queue.dedup_key(sha256=stored.sha256, pipeline=pipeline, params=params)
    earlier = None if force else queue.find_duplicate(session, dedup=dedup)
    return queue.enqueue(
        session,
        pipeline=pipeline,
        params=params,
        priority=priority,
        document_id=document.id,
        batch_id=batch_id,
        dedup=dedup,
        duplicate_of=earlier.id if earlier else None,
        max_attempts=max_attempts,
        source=source[:1024],
    )


def submit_reference(
    session: Session,
    blobs: BlobStore,
    *,
    ref: str,
    pipeline: str,
    params: Mapping[str, Any] | None = None,
    priority: int = 3,
    force: bool = False,
    filename: str | None = None,
    max_attempts: int = 3,
    reference_buckets: Collection[str] = (),
) -> Job:
    """Submit bytes already in storage: a key of our blob store, or ``s3://bucket/key`` (which needs
    an S3 blob store with read access to that bucket). The bytes are copied under their content key
    (a no-op rewrite for one of our content keys), so retention never deletes what it does not own.

    An ``s3://`` reference may name only the storage bucket or one of ``reference_buckets``
    (``CONVEYOR_S3_REFERENCE_BUCKETS``): the server's credentials may reach buckets that its
    callers must not read through it.
    """
    parsed = urlparse(ref)
    if parsed.scheme == "s3":
        if not isinstance(blobs, S3BlobStore):
            raise InputError("s3:// references need an S3 storage URL (CONVEYOR_STORAGE_URL)")
        bucket, key = parsed.netloc, parsed.path.lstrip("/")
        if bucket != blobs.bucket and bucket not in reference_buckets:
            raise InputError(
                f"s3:// references may not read bucket {bucket!r}: only the storage bucket"
                f" {blobs.bucket!r} and the buckets listed in CONVEYOR_S3_REFERENCE_BUCKETS"
            )
        if not key:
            raise InputError(f"reference {ref!r} names no object: use s3://bucket/key")
        stream = blobs.open_object(bucket, key)
    elif parsed.scheme:
        raise InputError(f"unsupported reference {ref!r}: use a blob key or s3://bucket/key")
    else:
        key = ref
        if not blobs.exists(key):
            raise InputError(f"no blob {ref!r} in the store")
        stream = blobs.open(key)
    with stream:
        return submit_document(
            session,
            blobs,
            stream_or_blob=stream,
            filename=filename or posixpath.basename(key) or key,
            pipeline=pipeline,
            params=params,
            priority=priority,
            force=force,
            source=ref,
            max_attempts=max_attempts,
        )


def _read_head(blobs: BlobStore, key: str) -> bytes:
    with blobs.open(key) as stream:
        return stream.read(HEAD_BYTES)


def submit_from_source(
    session: Session,
    *,
    blobs: BlobStore,
    stream: IO[bytes],
    filename: str,
    pipeline: str,
    source: str,
) -> int:
    """The ``sources.Submit`` callback (watched folders, S3 prefixes): default options; the job id."""
    job = submit_document(
        session, blobs, stream_or_blob=stream, filename=filename, pipeline=pipeline, source=source
    )
    return job.id
