"""Media type from a file's first bytes (the extension is only a tie-breaker for JSON vs NDJSON)."""

from __future__ import annotations

import orjson

HEAD_BYTES = 4096

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
)


def sniff_media_type(first_bytes: bytes, filename: str) -> str:
    """Guess from content: magic numbers, then JSON by its first character.

    JSON and NDJSON both start with ``{``; a head whose first line is a complete JSON value and that
    has more lines is NDJSON, as is a ``.ndjson``/``.jsonl`` name. A PDF may carry junk before its
    ``%PDF-`` header (readers accept up to 1 KB of it), so the header is looked for there too.
    """
    for magic, media_type in _MAGIC:
        if first_bytes.startswith(magic):
            return media_type
    if b"%PDF-" in first_bytes[:1024]:
        return "application/pdf"
    text = first_bytes.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"[":
        return "application/json"
    if text[:1] == b"{":
        return "application/x-ndjson" if _looks_like_ndjson(text, filename) else "application/json"
    return "application/octet-stream"


def _looks_like_ndjson(text: bytes, filename: str) -> bool:
    if filename.lower().endswith((".ndjson", ".jsonl")):
        return True
    first, newline, rest = text.partition(b"\n")
    if not newline or not rest.strip():
        return False
    try:
        orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return True
