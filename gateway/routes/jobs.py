"""Submit, watch (status, server-sent events) and cancel jobs."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api_contracts.models import JobAccepted, JobRequest, JobStatus
from gateway.dependencies import Caller, Client, Services, api_key, services_of
from gateway.errors import ERRORS
from gateway.event_stream import event_stream
from gateway.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute)  # a submit's key is checked before its body


@router.post("/v1/jobs", status_code=202, responses=ERRORS)
def submit(request: JobRequest, caller: Caller, client: Client) -> JobAccepted:
    return client.submit(request, tenant=caller)


@router.get("/v1/jobs/{job_id}", responses=ERRORS)
def status(job_id: str, caller: Caller, client: Client) -> JobStatus:
    return client.status(job_id, tenant=caller)


@router.delete("/v1/jobs/{job_id}", responses=ERRORS)
def cancel(job_id: str, caller: Caller, client: Client) -> JobStatus:
    return client.cancel(job_id, tenant=caller)


@router.get("/v1/jobs/{job_id}/events", responses=ERRORS,
            response_class=StreamingResponse, summary="Server-sent events of a job")  # fmt: skip
async def events(
    job_id: str,
    caller: Caller,
    services: Annotated[Services, Depends(services_of)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    first = await run_in_threadpool(services.client.status, job_id, caller)  # 404 before the stream
    give_back = services.streams.take(caller)  # 429 past the tenant's open streams
    stream = event_stream(services, job_id, first, caller, api_key(authorization, x_api_key))
    return SlotResponse(give_back, stream, media_type="text/event-stream",
                        headers={"Cache-Control": "no-store"})  # fmt: skip


class SlotResponse(StreamingResponse):
    """A stream that gives its caller's slot back however sending it ends
    (to its end, a caller hanging up, or before its first byte: a stream that
    never started runs no finally of its own)."""

    def __init__(self, give_back: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.give_back = give_back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.give_back()
