"""Errors as JSON with Backdrop's codes, mapped to HTTP statuses."""

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_contracts.errors import BackdropError, ErrorCode

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
}


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(code: ErrorCode, message: str, retry_after: int | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message[:1000]))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if code == ErrorCode.UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(body.model_dump(mode="json"), status_code=HTTP_STATUS.get(code, 500),
                        headers=headers)  # fmt: skip


async def on_backdrop_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackdropError)
    return error_response(exc.code, exc.message, exc.retry_after)


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(ErrorCode.INVALID_REQUEST, f"{where}: {first.get('msg')}".strip(": "))
