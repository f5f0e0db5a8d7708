"""Photos and paintings: the raw image as the body, stored under its hash."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_contracts.errors import BackdropError
from gateway.dependencies import Caller, Services, services_of
from gateway.errors import ERRORS, error_response
from gateway.guard import CLOSE, GuardedRoute
from gateway.uploads import declared_length, read_image

router = APIRouter(route_class=GuardedRoute)  # the key is checked before the body is read


class Uploaded(BaseModel):
    key: str  # put it in a JobRequest: photo_key, or a style's key
    bytes: int


async def upload(
    request: Request, caller: Caller, services: Annotated[Services, Depends(services_of)]
) -> Uploaded | JSONResponse:
    # Before a byte of the body is read: the tenant's hour has room, for one
    # more upload and its declared bytes (429; both are taken when the upload
    # is stored) and it has fewer than
    # uploads_in_flight_per_tenant being read (each is held whole until stored).
    client = services.client
    try:
        await run_in_threadpool(client.check_upload_room, caller, declared_length(request))
        give_back = services.uploading.take(caller)
    except BackdropError as exc:  # the unread body is never read: close, as GuardedRoute does
        return error_response(exc.code, exc.message, exc.retry_after, headers=CLOSE)
    try:
        data = await read_image(request, services.settings.gateway.max_upload_bytes)
        key = await run_in_threadpool(client.upload, data, caller)  # only the caller may use it
    finally:
        give_back()
    return Uploaded(key=key, bytes=len(data))


router.post("/v1/photos", status_code=201, responses=ERRORS, response_model=Uploaded,
            summary="Upload a photo (the raw image as the body)")(upload)  # fmt: skip
router.post("/v1/paintings", status_code=201, responses=ERRORS, response_model=Uploaded,
            summary="Upload a painting (the raw image as the body)")(upload)  # fmt: skip
