"""Errors as JSON with Backdrop's codes, mapped to HTTP statuses: every answer
that is not a success has the body `{"error": {"code", "message"}}`, also the
framework's own (unknown route, wrong method, unparseable body, a crash)."""

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api_contracts.errors import BackdropError, ErrorCode
from jobstore.connection import REDIS_UNAVAILABLE

log = logging.getLogger("gateway")
JOB_STORE_RETRY_SECONDS = 30

HTTP_STATUS = {
    ErrorCode.INVALID_REQUEST: 422,
    ErrorCode.INVALID_IMAGE: 400,
    ErrorCode.UNSUPPORTED_FORMAT: 400,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INPUT_NOT_FOUND: 404,
    ErrorCode.STYLE_NOT_FOUND: 404,
    ErrorCode.NO_SUBJECT_FOUND: 422,
    ErrorCode.CANCELLED: 409,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
    ErrorCode.SERVICE_BUSY: 503,
}
# The framework's statuses that have a code of their own; any other 4xx it
# raises (405, 408, 413 of a JSON body, 400) is INVALID_REQUEST with its status.
HTTP_CODES = {401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND}


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(
    code: ErrorCode,
    message: str,
    retry_after: int | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message[:1000]))
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if code == ErrorCode.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body.model_dump(mode="json"), headers=headers,
                        status_code=status or HTTP_STATUS.get(code, 500))  # fmt: skip


async def on_backdrop_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackdropError)
    return error_response(exc.code, exc.message, exc.retry_after)


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(ErrorCode.INVALID_REQUEST, f"{where}: {first.get('msg')}".strip(": "))


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    """404, 405 (with its Allow header), 400 for a body that cannot be parsed, ..."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, ErrorCode.INVALID_REQUEST)
    return error_response(code, str(exc.detail), status=exc.status_code,
                           headers=dict(exc.headers or {}))  # fmt: skip


async def on_disconnect(request: Request, _: Exception) -> Response:
    """A client that went away mid-body (an aborted upload) is ordinary: one
    line, no traceback. Nobody reads the answer."""
    log.info("client went away mid-request: %s %s", request.method, request.url.path[:200])
    return Response(status_code=499)


async def on_job_store_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis full (noeviction at its maxmemory: writes refused) or not
    answering: 503 with a time to come back, not a 500 of an unknown fault."""
    log.warning("job store refused %s %s: %.200s", request.method, request.url.path[:200], exc)
    return error_response(ErrorCode.STORAGE_UNAVAILABLE,
                          "the job store cannot take this now (full, or not answering); "
                          "try again later", retry_after=JOB_STORE_RETRY_SECONDS)  # fmt: skip


async def on_crash(_: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: 500 in the contract's shape (the server still logs it)."""
    return error_response(ErrorCode.INTERNAL, "internal error", status=500)


Handler = Callable[[Request, Exception], Awaitable[Response]]
HANDLERS: dict[type[Exception], Handler] = {
    BackdropError: on_backdrop_error,
    RequestValidationError: on_validation_error,
    HTTPException: on_http_error,
    ClientDisconnect: on_disconnect,
    **dict.fromkeys(REDIS_UNAVAILABLE, on_job_store_error),
    Exception: on_crash,
}

# The error answers every route documents (gateway/openapi.json).
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
