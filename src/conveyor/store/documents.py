"""A stored document as a pipeline's input: its row plus a way to open (or find) its bytes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from conveyor.content import DocumentInput
from conveyor.errors import NotFound
from conveyor.store.blobs import BlobStore
from conveyor.store.tables import Document


def load_document(session: Session, blobs: BlobStore, document_id: int) -> DocumentInput:
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"document {document_id} not found")
    key = document.blob_key
    return DocumentInput(
        filename=document.filename,
        media_type=document.media_type,
        sha256=document.sha256,
        size=document.size,
        open=lambda: blobs.open(key),
        path=blobs.local_path(key),
    )
