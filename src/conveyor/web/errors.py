"""Errors to HTTP: the one table from error class to status code, and the JSON error body.

Every error leaves as ``{"error": {"code", "message"}}``: Conveyor errors, unknown routes (404),
wrong methods (405), request validation (422, with ``details``) and crashes (500, never a
traceback; the server log has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
    NotFound: 404,
    Conflict: 409,
    Cancelled: 409,
    TransientError: 503,
}
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


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
        headers["Retry-After"] = "5"
    return error_response(status, error.code, error.message, headers=headers)


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
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _crash)
