"""Photos and paintings: the raw image as the body, stored under its hash."""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from gateway.dependencies import Caller, Client, Settings
from gateway.errors import ERRORS
from gateway.guard import GuardedRoute
from gateway.uploads import read_image

router = APIRouter(route_class=GuardedRoute)  # the key is checked before the body is read


class Uploaded(BaseModel):
    key: str  # put it in a JobRequest: photo_key, or a style's key
    bytes: int


async def upload(request: Request, caller: Caller, client: Client, settings: Settings) -> Uploaded:
    data = await read_image(request, settings.gateway.max_upload_bytes)
    key = await run_in_threadpool(client.upload, data, caller)  # only the caller may use it
    return Uploaded(key=key, bytes=len(data))


router.post("/v1/photos", status_code=201, responses=ERRORS, response_model=Uploaded,
            summary="Upload a photo (the raw image as the body)")(upload)  # fmt: skip
router.post("/v1/paintings", status_code=201, responses=ERRORS, response_model=Uploaded,
            summary="Upload a painting (the raw image as the body)")(upload)  # fmt: skip
