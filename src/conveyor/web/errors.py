"""Errors to HTTP: the one table from error class to status code, and the JSON error body.

Every error leaves as ``{"error": {"code", "message"}}``: Conveyor errors, unknown routes (404),
wrong methods (405), request validation (422, with ``details``), a database that is locked, timing
out or unreachable (503 ``transient_error`` with ``Retry-After``, like ``TransientError``) and
crashes (500, never a traceback; the server log has it).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from conveyor.errors import (
    Cancelled,
    Conflict,
    ConveyorError,
    Forbidden,
    InputError,
    LimitExceeded,
    NotFound,
    TransientError,
    Unauthenticated,
)
from conveyor.signing import LinkRefused


class BadRequest(InputError):
    """The request is malformed."""

    code = "bad_request"


class UnsupportedMediaType(InputError):
    """The request body has the wrong content type."""

    code = "unsupported_media_type"


# Looked up along the class's MRO, so the most specific entry wins (LimitExceeded before InputError).
STATUS: dict[type[ConveyorError], int] = {
    BadRequest: 400,
    UnsupportedMediaType: 415,
    LimitExceeded: 413,
    InputError: 422,
    Unauthenticated: 401,
    Forbidden: 403,
    LinkRefused: 403,
    NotFound: 404,
    Conflict: 409,
    Cancelled: 409,
    TransientError: 503,
}
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "the database is busy or unreachable; try again"
# SQLite's primary result codes for a lock or an unreadable file. Its other OperationalErrors
# ("no such table", a syntax error) are bugs, which stay 500 and keep their traceback in the log.
SQLITE_UNAVAILABLE = frozenset({5, 6, 10, 14})  # BUSY, LOCKED, IOERR, CANTOPEN

logger = logging.getLogger(__name__)


def is_database_unavailable(error: BaseException) -> bool:
    """A lock, a timeout or an outage that trying again later may get past, as opposed to a bad
    statement. PostgreSQL (psycopg) puts exactly those under ``OperationalError``; SQLite puts its
    schema and syntax errors there too, so its result code decides."""
    if isinstance(error, DBAPIError):
        cause = error.orig
        return error.connection_invalidated or (cause is not None and is_database_unavailable(cause))
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in SQLITE_UNAVAILABLE
    return isinstance(error, psycopg.OperationalError)


def status_for(error: ConveyorError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


async def _conveyor_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ConveyorError)
    status = status_for(error)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return error_response(status, error.code, error.message, headers=headers)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    if not is_database_unavailable(error):
        raise error  # a bug, not an outage: on to ``_crash`` (500), and the log gets the traceback
    cause = error.orig if isinstance(error, DBAPIError) else error  # no SQL nor parameters in logs
    logger.warning(
        "%s %s: database unavailable: %s: %s",
        request.method,
        request.url.path,
        type(cause).__name__,
        str(cause).strip(),
    )
    return error_response(
        503,
        TransientError.code,
        DATABASE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = HTTP_CODES.get(error.status_code, "http_error")
    return error_response(error.status_code, code, str(error.detail), headers=error.headers)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        {"loc": [str(part) for part in item.get("loc", ())], "message": item.get("msg", "")}
        for item in error.errors()
    ]
    summary = "; ".join(f"{'.'.join(d['loc'])}: {d['message']}" for d in details)
    return error_response(422, "validation_error", summary or "invalid request", details=details)


async def _crash(_request: Request, _error: Exception) -> JSONResponse:
    # Starlette re-raises after sending this, so the server logs the traceback once.
    return error_response(500, "internal_error", "internal server error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ConveyorError, _conveyor_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _crash)
