"""The HTTP API (`backdrop gateway`): upload, submit, watch, cancel, download.

Every route is a thin layer over jobstore.TrustedClient: the gateway only writes
a JobRequest and enqueues it, as a Python producer does.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from api_contracts.errors import BackdropError
from api_contracts.models import JobAccepted, JobRequest, JobStatus
from gateway import metrics
from gateway.errors import ErrorResponse, on_backdrop_error, on_validation_error
from gateway.settings import get_settings
from gateway.uploads import read_image
from jobstore.tenants import Tenants
from jobstore.trusted_client import TrustedClient

PAGE = Path(__file__).parent / "page"  # the try-it page: static files, no build step
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


class Uploaded(BaseModel):
    key: str  # put it in a JobRequest: photo_key, or a style's key
    bytes: int


class Limits(BaseModel):
    max_upload_bytes: int


class CatalogStyle(BaseModel):
    name: str
    thumbnail_url: str


@lru_cache(maxsize=1)
def client() -> TrustedClient:
    return TrustedClient(get_settings().client_config())


def tenant(
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """The caller's tenant, from `Authorization: Bearer <key>` or `X-API-Key`;
    401 without a known key, 403 for a revoked one."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    return Tenants(client().redis).authenticate(key).name


Caller = Annotated[str, Depends(tenant)]


def create_app() -> FastAPI:
    app = FastAPI(title="Backdrop", version="1", description=__doc__)
    app.add_exception_handler(BackdropError, on_backdrop_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    metrics.install(app, lambda: client().redis)
    _routes(app)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/v1/limits")
    def limits() -> Limits:
        """What the page checks before it uploads (no key needed)."""
        return Limits(max_upload_bytes=get_settings().gateway.max_upload_bytes)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    app.mount("/page", StaticFiles(directory=PAGE), name="page")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        client().redis.ping()
        return {"status": "ok"}

    async def upload(request: Request, _: Caller) -> Uploaded:
        data = await read_image(request, get_settings().gateway.max_upload_bytes)
        return Uploaded(key=await run_in_threadpool(client().upload, data), bytes=len(data))

    app.post("/v1/photos", status_code=201, responses=ERRORS, response_model=Uploaded,
             summary="Upload a photo (the raw image as the body)")(upload)  # fmt: skip
    app.post("/v1/paintings", status_code=201, responses=ERRORS, response_model=Uploaded,
             summary="Upload a painting (the raw image as the body)")(upload)  # fmt: skip

    @app.post("/v1/jobs", status_code=202, responses=ERRORS)
    def submit(request: JobRequest, caller: Caller) -> JobAccepted:
        return client().submit(request, tenant=caller)

    @app.get("/v1/jobs/{job_id}", responses=ERRORS)
    def status(job_id: str, caller: Caller) -> JobStatus:
        return client().status(job_id, tenant=caller)

    @app.delete("/v1/jobs/{job_id}", responses=ERRORS)
    def cancel(job_id: str, caller: Caller) -> JobStatus:
        return client().cancel(job_id, tenant=caller)

    @app.get("/v1/jobs/{job_id}/events", responses=ERRORS,
             response_class=StreamingResponse, summary="Server-sent events of a job")  # fmt: skip
    async def events(job_id: str, caller: Caller) -> StreamingResponse:
        first = await run_in_threadpool(client().status, job_id, caller)  # 404 before the stream
        return StreamingResponse(_event_stream(job_id, first, caller),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip

    @app.get("/v1/styles", responses=ERRORS)
    def styles(_: Caller) -> list[CatalogStyle]:
        c = client()
        return [CatalogStyle(name=n, thumbnail_url=c.style_url(n)) for n in c.list_styles()]


async def _event_stream(job_id: str, status: JobStatus, caller: str) -> AsyncIterator[bytes]:
    """progress, preview, latest and final events, each when it changes."""
    settings = get_settings().gateway
    seen: dict[str, object] = {}
    deadline = asyncio.get_running_loop().time() + settings.events_timeout_seconds
    while True:
        for kind, value in _moments(status):
            if seen.get(kind) != value:
                seen[kind] = value
                yield _event(kind, status)
        if status.done or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(settings.events_poll_seconds)
        status = await run_in_threadpool(client().status, job_id, caller)


def _moments(status: JobStatus) -> list[tuple[str, object]]:
    moments: list[tuple[str, object]] = [("progress", (status.state, status.progress))]
    moments.append(("preview", tuple(s.preview_key for s in status.styles)))
    moments.append(("latest", tuple(s.latest_key for s in status.styles)))
    if status.done:
        moments.append(("final", status.state))
    return [(k, v) for k, v in moments if k == "progress" or any(_present(v))]


def _present(value: object) -> list[bool]:
    return [bool(v) for v in value] if isinstance(value, tuple) else [bool(value)]


def _event(kind: str, status: JobStatus) -> bytes:
    data = json.dumps(json.loads(status.model_dump_json()))
    return f"event: {kind}\ndata: {data}\n\n".encode()


app = create_app()
