"""The try-it page (static files, no build step), what it checks before an
upload, and the health check. None of them needs a key."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from gateway.dependencies import Client, Settings

PAGE = Path(__file__).parent.parent / "page"

router = APIRouter()


class Limits(BaseModel):
    max_upload_bytes: int


@router.get("/v1/limits")
def limits(settings: Settings) -> Limits:
    """What the page checks before it uploads (no key needed)."""
    return Limits(max_upload_bytes=settings.gateway.max_upload_bytes)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(PAGE / "index.html")


@router.get("/healthz")
def healthz(client: Client) -> dict[str, str]:
    client.redis.ping()
    return {"status": "ok"}


def mount_static(app: FastAPI) -> None:
    app.mount("/page", StaticFiles(directory=PAGE), name="page")
