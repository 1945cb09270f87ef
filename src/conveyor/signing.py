"""Signed, expiring download links: a URL that opens one file without an API key, until it expires.

A report is opened in a spreadsheet, which cannot send the ``Authorization`` header, so each link
in it carries its own proof: ``?expires=<unix seconds>&signature=<hex>``, where the signature is
HMAC-SHA256 under a server secret over the path and the expiry (``path + "\\n" + expires``). Changing
the path (another file), the expiry (a longer life) or the signature breaks it; a link is refused
from its expiry instant on. The signature is checked before the expiry, so a tampered link is
reported as tampered rather than as merely old, and compared in constant time.

The path signed must be the path the server will see (decoded, without the query): the caller signs
``/api/batches/3/files/17`` and verifies ``request.url.path``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Final

from conveyor.errors import ConveyorError

SECRET_BYTES: Final = 32
DEFAULT_TTL_S: Final = 3600
_EXPIRES: Final = re.compile(r"[0-9]{1,12}")  # ASCII digits only; 12 digits reach year 33658
_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}")


class LinkRefused(ConveyorError):
    """This download link is not valid."""

    code = "link_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # missing, malformed, expired or mismatch: for logs and metrics


def new_secret() -> bytes:
    """A new signing key: 32 random bytes from the operating system's generator."""
    return secrets.token_bytes(SECRET_BYTES)


def sign(path: str, *, secret: bytes, expires_at: int) -> str:
    """``path`` with ``expires`` and ``signature`` query parameters, valid until ``expires_at``
    (unix seconds)."""
    if "?" in path or "#" in path:
        raise ValueError(f"sign a bare path, without a query or fragment: {path!r}")
    if expires_at < 0:
        raise ValueError(f"expires_at must be unix seconds, not {expires_at}")
    return f"{path}?expires={expires_at}&signature={_digest(path, str(expires_at), secret)}"


def verify(path: str, *, expires: str | None, signature: str | None, secret: bytes, now: float) -> None:
    """Return if the query parameters ``expires`` and ``signature`` were made by ``sign`` for
    ``path`` with ``secret`` and ``now`` is before the expiry; otherwise raise ``LinkRefused``."""
    if not expires or not signature:
        absent = [name for name, value in (("expires", expires), ("signature", signature)) if not value]
        raise LinkRefused("missing", f"the link has no {' or '.join(absent)}: ask for a new link")
    if not _EXPIRES.fullmatch(expires):
        raise LinkRefused("malformed", "the link's expires is not a time in unix seconds")
    if not _SIGNATURE.fullmatch(signature):
        raise LinkRefused("malformed", "the link's signature is not 64 hexadecimal digits")
    if not hmac.compare_digest(_digest(path, expires, secret), signature):
        raise LinkRefused("mismatch", "the link's signature does not match: it was altered or not made here")
    if now >= int(expires):
        at = dt.datetime.fromtimestamp(int(expires), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise LinkRefused("expired", f"the link expired at {at}: ask for a new link")


def _digest(path: str, expires: str, secret: bytes) -> str:
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
