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


def error_response(code: ErrorCode, message: str) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message[:1000]))
    return JSONResponse(body.model_dump(mode="json"), status_code=HTTP_STATUS.get(code, 500))


async def on_backdrop_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackdropError)
    return error_response(exc.code, exc.message)


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(ErrorCode.INVALID_REQUEST, f"{where}: {first.get('msg')}".strip(": "))
