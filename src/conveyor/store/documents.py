"""A stored document as a pipeline's input: its row plus a way to open (or find) its bytes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.content import DocumentInput
from conveyor.errors import NotFound
from conveyor.store.blobs import BlobStore
from conveyor.store.tables import Document


def load_document(session: Session, blobs: BlobStore, document_id: int) -> DocumentInput:
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"document {document_id} not found")
    return _input(document, blobs)


def load_documents(
    session: Session, blobs: BlobStore, document_ids: Sequence[int]
) -> dict[int, DocumentInput]:
    """Several documents in one query (a batch chunk's files); missing ones are left out."""
    found = session.scalars(select(Document).where(Document.id.in_(document_ids)))
    return {document.id: _input(document, blobs) for document in found}


def _input(document: Document, blobs: BlobStore) -> DocumentInput:
    key = document.blob_key
    return DocumentInput(
        filename=document.filename,
        media_type=document.media_type,
        sha256=document.sha256,
        size=document.size,
        open=functools.partial(blobs.open, key),
        path=blobs.local_path(key),
    )
