"""Starting, reading and cancelling batches: many files from a zip, a server folder or an object
store prefix, stored as documents, fanned out into chunk jobs of ``chunk_size`` files.

Files are stored (and the folder or zip left alone) when the batch is made, so a batch is durable
and repeatable whatever happens to its source afterwards. Paths are never trusted: a folder must lie
under a configured root with no ``..``, and neither a symlink in it nor a zip member may point out
of it (``../../etc/passwd``, ``/etc/passwd``, ``C:\\x``): any such name refuses the whole batch,
naming it, rather than scanning the rest silently.
"""

from __future__ import annotations

import functools
import io
import os
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final, cast
from urllib.parse import urlparse

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from conveyor import queue
from conveyor.batching import state
from conveyor.content import Limits
from conveyor.errors import Conflict, InputError, NotFound
from conveyor.extractors.isolation import Deadline, sandbox_for
from conveyor.extractors.limits import check_zip, read_zip_member
from conveyor.extractors.sniff import HEAD_BYTES, sniff
from conveyor.pipelines import get_pipeline
from conveyor.pipelines.codescan import read_targets
from conveyor.store.blobs import BlobStore, S3BlobStore
from conveyor.store.tables import Batch, BatchFile, Document, Job, utcnow

MAX_FILES: Final = 100_000
# Names no scan wants: macOS resource forks, editor and OS litter.
_LITTER: Final = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a batch's source: its name as shown in reports and a way to read it."""

    name: str
    open: Callable[[], IO[bytes]]


def create_batch(
    session: Session,
    blobs: BlobStore,
    *,
    files: Iterator[SourceFile],
    source: str,
    pipeline: str,
    params: Mapping[str, Any],
    chunk_size: int,
    priority: int = 3,
    actor: str | None = None,
) -> Batch:
    """Store every file, then make the batch, its documents, files and chunk jobs and say STARTED
    in the caller's transaction (a batch refused half-way leaves no rows behind).

    The bytes are stored before the first statement: a transaction that waited on 6,600 file
    writes would hold SQLite's write lock for many seconds, past the other writers' patience; the
    rows then go in with a few set-based statements.
    """
    if not 1 <= chunk_size <= 1000:
        raise InputError(f"chunk_size must be 1 to 1000 files, not {chunk_size}")
    if not 1 <= priority <= 4:
        raise InputError(f"priority must be 1 (most urgent) to 4 (least), not {priority}")
    given = dict(params)
    targets = get_pipeline(pipeline).validate_params(given).get("targets")
    documents = _stored_documents(blobs, files, source)
    now = utcnow()
    batch = Batch(
        pipeline=pipeline,
        params=given,
        source=source[:1024],
        chunk_size=chunk_size,
        targets=len(targets) if isinstance(targets, list) else 0,
        status="running",
        total=len(documents),
        created_at=now,
        created_by=actor,
    )
    session.add(batch)
    session.flush()
    document_ids = session.scalars(
        insert(Document).returning(Document.id, sort_by_parameter_order=True), [row for _, row in documents]
    ).all()
    file_ids = session.scalars(
        insert(BatchFile).returning(BatchFile.id, sort_by_parameter_order=True),
        [
            {
                "batch_id": batch.id,
                "document_id": document_id,
                "name": name,
                "status": "queued",
                "result": {},
                "matches": 0,
            }
            for (name, _), document_id in zip(documents, document_ids, strict=True)
        ],
    ).all()
    chunks = [list(file_ids[start : start + chunk_size]) for start in range(0, len(file_ids), chunk_size)]
    queue.enqueue_many(
        session,
        (
            {
                "pipeline": pipeline,
                "params": {"files": chunk},
                "priority": priority,
                "batch_id": batch.id,
                "source": f"batch:{batch.id}",
            }
            for chunk in chunks
        ),
    )
    jobs = session.execute(select(Job.id, Job.params).where(Job.batch_id == batch.id)).all()
    session.execute(
        update(BATCH_FILES).where(BATCH_FILES.c.id == bindparam("file")).values(job_id=bindparam("job")),
        [{"file": file_id, "job": job_id} for job_id, job_params in jobs for file_id in job_params["files"]],
    )
    state.batch_event(
        session, batch.id, "STARTED", {"total": batch.total, "pipeline": pipeline, "source": batch.source}
    )
    return batch


BATCH_FILES = cast(Table, BatchFile.__table__)


def _stored_documents(
    blobs: BlobStore, files: Iterator[SourceFile], source: str
) -> list[tuple[str, dict[str, Any]]]:
    """Each file stored (content-addressed: the same bytes twice are stored once) with the row of
    its document, in order; no database work."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        if len(documents) >= MAX_FILES:
            raise InputError(f"{source}: more than {MAX_FILES} files; split the batch")
        with file.open() as stream:
            stored = blobs.put(stream)  # not every source rewinds (an S3 body does not): read back
        with blobs.open(stored.key) as copy:
            head = copy.read(HEAD_BYTES)
        row = {
            "sha256": stored.sha256,
            "filename": PurePosixPath(file.name).name[:1024] or file.name[:1024],
            "media_type": sniff(head, file.name, reopen=functools.partial(blobs.open, stored.key)).media_type,
            "size": stored.size,
            "source": f"{source}:{file.name}"[:1024],
            "blob_key": stored.key,
            "created_at": utcnow(),
        }
        documents.append((file.name, row))
    if not documents:
        raise InputError(f"{source}: no files to scan")
    return documents


# --- sources ----------------------------------------------------------------------------------------


def _is_litter(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not parts or name.startswith(_LITTER[0]) or parts[-1] in _LITTER or parts[-1].startswith("._")


def zip_files(stream: IO[bytes], *, subject: str, limits: Limits) -> Iterator[SourceFile]:
    """The members of a zip (bounded by the zip limits), folders and OS litter left out; an unsafe
    member name refuses the zip."""
    check_zip(stream, limits, subject)
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as error:
        raise InputError(f"{subject}: not a readable zip ({error})") from None
    for info in archive.infolist():  # check_zip refused unsafe names (../x, /x, C:x) already
        if info.is_dir() or _is_litter(info.filename):
            continue
        data = read_zip_member(archive, info.filename, limits, subject)
        yield SourceFile(info.filename.replace("\\", "/"), functools.partial(io.BytesIO, data))


def folder_files(folder: str, *, roots: Sequence[Path]) -> Iterator[SourceFile]:
    """Every file under ``folder``, which must lie under one of ``roots``; ``..``, a symlink (or a
    symlinked folder) leading out of the root, or a folder outside every root is refused."""
    if not roots:
        raise InputError("folder batches are off: no allowed roots are configured (CONVEYOR_BATCH_ROOTS)")
    if ".." in Path(folder).parts:
        raise InputError(f"folder {folder!r}: '..' is not allowed in a batch folder")
    try:
        real = Path(folder).resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"folder {folder!r} does not exist") from None
    root = next((root.resolve() for root in roots if real.is_relative_to(root.resolve())), None)
    if root is None:
        allowed = ", ".join(str(root) for root in roots)
        raise InputError(f"folder {folder!r} is not under an allowed root ({allowed})")
    if not real.is_dir():
        raise InputError(f"{folder!r} is not a folder")
    found = _walk(real, root)
    for path in sorted(found):
        yield SourceFile(path.relative_to(real).as_posix(), functools.partial(_open_binary, path))


def _walk(folder: Path, root: Path) -> list[Path]:
    """The files under ``folder``, not following symlinked folders; any symlink out of ``root``
    refuses the batch."""
    found: list[Path] = []
    for directory, subfolders, names in os.walk(folder, followlinks=False):
        here = Path(directory)
        for name in [*subfolders, *names]:
            path = here / name
            if path.is_symlink() and not _resolved(path).is_relative_to(root):
                raise InputError(f"{path}: a symlink out of the allowed root {root}; refused")
        found += [here / name for name in names if (here / name).is_file() and not _is_litter(name)]
    return found


def _resolved(path: Path) -> Path:
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling link or a loop: it leads nowhere we allow
        raise InputError(f"{path}: a symlink that leads nowhere (dangling or a loop); refused") from None


def _open_binary(path: Path) -> IO[bytes]:
    return path.open("rb")


def prefix_files(
    uri: str, blobs: BlobStore, *, open_store: Callable[[str], BlobStore], reference_buckets: Collection[str]
) -> Iterator[SourceFile]:
    """The objects under ``s3://bucket/prefix``: the storage bucket or a listed reference bucket."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InputError(f"prefix {uri!r}: use s3://bucket/prefix")
    own = blobs.bucket if isinstance(blobs, S3BlobStore) else None
    if parsed.netloc != own and parsed.netloc not in reference_buckets:
        raise InputError(
            f"prefix {uri!r}: bucket {parsed.netloc!r} is neither the storage bucket nor listed in"
            " CONVEYOR_S3_REFERENCE_BUCKETS"
        )
    store = open_store(f"s3://{parsed.netloc}")  # the whole bucket: listed keys are absolute
    prefix = parsed.path.lstrip("/")
    for item in store.list_prefix(prefix):
        name = item.key[len(prefix) :].lstrip("/") or item.key
        if item.key.endswith("/") or _is_litter(name):
            continue
        yield SourceFile(name, functools.partial(store.open, item.key))


# --- reading and cancelling ---------------------------------------------------------------------------


def get_batch(session: Session, *, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"batch {batch_id} not found")
    return batch


def get_batch_file(session: Session, *, batch_id: int, file_id: int) -> tuple[BatchFile, Document]:
    row = session.get(BatchFile, file_id)
    document = None if row is None or row.document_id is None else session.get(Document, row.document_id)
    if row is None or row.batch_id != batch_id or document is None:
        raise NotFound(f"file {file_id} of batch {batch_id} not found")
    return row, document


def cancel_batch(session: Session, *, batch_id: int) -> Batch:
    """Stop a running batch: queued chunks are cancelled, running ones stop at their next file,
    unscanned files are marked cancelled; no report is made."""
    batch = state.lock(session, batch_id)
    if batch is None:
        raise NotFound(f"batch {batch_id} not found")
    if batch.status != "running":
        raise Conflict(f"batch {batch_id} is {batch.status}; only a running batch can be cancelled")
    batch.status, batch.cancel_requested, batch.finished_at = "cancelled", True, utcnow()
    cancelled = session.execute(
        update(BatchFile)
        .where(BatchFile.batch_id == batch_id, BatchFile.status == "queued")
        .values(status="cancelled", finished_at=utcnow())
        .returning(BatchFile.id),
        execution_options={"synchronize_session": False},
    ).all()
    jobs = session.scalars(
        select(Job.id).where(Job.batch_id == batch_id, Job.status.in_(("queued", "running")))
    )
    for job_id in list(jobs):
        queue.cancel(session, job_id=job_id)
    state.batch_event(
        session,
        batch_id,
        "ERROR",
        {"message": "the batch was cancelled", "code": "cancelled", "cancelled_files": len(cancelled)},
    )
    return batch


def target_list(path: Path, filename: str, limits: Limits, column: str | None) -> list[str]:
    """The codes of a target list (xlsx, xls, ods, csv), read in the parser sandbox: a targets file
    is as untrusted as any upload."""
    if not path.is_file():
        raise InputError(f"{filename}: no such targets file")
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    media_type = sniff(head, filename, reopen=functools.partial(_open_binary, path)).media_type
    targets: list[str] = sandbox_for(limits).run(
        functools.partial(read_targets, column=column),
        str(path),
        media_type,
        filename,
        limits,
        deadline=Deadline.start(limits.seconds_per_file),
        subject=filename,
    )
    if not targets:
        raise InputError(f"{filename}: no target codes in the list")
    return targets
