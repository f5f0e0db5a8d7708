"""What the gateway checks of an upload before storing it: its size while it
streams in (413 past the limit: held whole only up to it) and its first bytes, so a
text file named .jpg is refused at once, in words, and not minutes later by a
worker. Decoding stays with the workers (the gateway holds no image library)."""

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.image_structure import check_image_structure

# The formats the workers decode (worker.pipeline.intake.ALLOWED_FORMATS).
SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "BMP": (b"BM",),
}


def image_format(data: bytes) -> str | None:
    """JPEG, PNG, WEBP or BMP by the file's signature; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for fmt, sigs in SIGNATURES.items() if data.startswith(sigs)), None)


def declared_length(request: Request) -> int:
    """The body's Content-Length as the client states it: only ASCII digits,
    under 19 of them, count (int() would take ' 1_0', a sign or a 4,300-digit
    number); anything else is 0 and the body is still bounded as it streams.
    With a Transfer-Encoding the length means nothing (the server frames the
    body as chunked): 0, so a body reserves its limit, not the claimed 1 byte."""
    if "transfer-encoding" in request.headers:
        return 0
    declared = request.headers.get("content-length", "")
    digits = declared.isascii() and declared.isdigit() and len(declared) < 19
    return int(declared) if digits else 0


async def read_image(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    if declared_length(request) > limit:
        raise BackdropError(ErrorCode.IMAGE_TOO_LARGE, f"uploads are limited to {limit} bytes")
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BackdropError(ErrorCode.IMAGE_TOO_LARGE, f"uploads are limited to {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise BackdropError(ErrorCode.INVALID_IMAGE, "the upload is empty")
    data = b"".join(chunks)
    kind = image_format(data)
    if kind is None:
        raise BackdropError(ErrorCode.UNSUPPORTED_FORMAT,
                            "this file is not a JPEG, PNG, WebP or BMP image")  # fmt: skip
    # The worker's intake refuses it too. Off the event loop: the walks are
    # linear and capped, yet a 25 MB scan's data is searched for its end.
    await run_in_threadpool(check_image_structure, data)
    return data
