"""Documents and local files: a file on disk as a DocumentInput, a DocumentInput as a file on disk
(for parsers in other processes, which open it by path)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.content import DocumentInput, Limits
from conveyor.errors import InputError, LimitExceeded
from conveyor.extractors.sniff import HEAD_BYTES, sniff

CHUNK_BYTES = 1024 * 1024


@contextmanager
def local_file(document: DocumentInput, limits: Limits) -> Iterator[str]:
    """The document's own path when it has one, else a temporary copy removed on exit.

    The size is checked first: a file over ``limits.file_bytes`` is refused before any byte of it
    is read, and a stream longer than it claimed is cut off at the limit.
    """
    if document.size > limits.file_bytes:
        raise LimitExceeded("file_bytes", document.size, limits.file_bytes, document.filename)
    if document.path is not None:
        yield str(document.path)
        return
    with tempfile.NamedTemporaryFile(prefix="conveyor-", suffix=".part") as copy:
        with document.open() as source:
            copied = 0
            while chunk := source.read(CHUNK_BYTES):
                copied += len(chunk)
                if copied > limits.file_bytes:
                    raise LimitExceeded("file_bytes", f"over {copied}", limits.file_bytes, document.filename)
                copy.write(chunk)
        copy.flush()
        yield copy.name


def local_document(path: Path) -> DocumentInput:
    """A file on this machine as a document: hashed, its media type sniffed from its content."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        digest.update(head)
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return DocumentInput(
        filename=path.name,
        media_type=sniff(head, path.name, reopen=lambda: path.open("rb")).media_type,
        sha256=digest.hexdigest(),
        size=path.stat().st_size,
        open=lambda: path.open("rb"),
        path=path.resolve(),
    )
