"""A job's server-sent events: progress, preview, latest and final, each when
it changes. The caller's key is checked again every `events_auth_seconds`: a
revoked or replaced key ends its open streams within that, not at the job's end."""

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi.concurrency import run_in_threadpool

from api_contracts.errors import BackdropError
from api_contracts.models import JobStatus
from gateway.dependencies import Services
from gateway.errors import ErrorBody, ErrorResponse


async def event_stream(
    services: Services, job_id: str, status: JobStatus, caller: str, key: str | None
) -> AsyncIterator[bytes]:
    settings = services.settings.gateway
    clock = asyncio.get_running_loop().time
    seen: dict[str, object] = {}
    deadline = clock() + settings.events_timeout_seconds
    next_auth = clock() + settings.events_auth_seconds
    while True:
        for kind, value in _moments(status):
            if seen.get(kind) != value:
                seen[kind] = value
                yield _event(kind, status.model_dump_json())
        if status.done or clock() > deadline:
            return
        await asyncio.sleep(settings.events_poll_seconds)
        if clock() >= next_auth:
            next_auth = clock() + settings.events_auth_seconds
            try:
                await run_in_threadpool(services.authenticate, key)
            except BackdropError as exc:  # the stream's last event says why it ends
                error = ErrorResponse(error=ErrorBody(code=exc.code, message=exc.message))
                yield _event("error", error.model_dump_json())
                return
        status = await run_in_threadpool(services.client.status, job_id, caller)


def _moments(status: JobStatus) -> list[tuple[str, object]]:
    moments: list[tuple[str, object]] = [("progress", (status.state, status.progress))]
    moments.append(("preview", tuple(s.preview_key for s in status.styles)))
    moments.append(("latest", tuple(s.latest_key for s in status.styles)))
    if status.done:
        moments.append(("final", status.state))
    return [(k, v) for k, v in moments if k == "progress" or any(_present(v))]


def _present(value: object) -> list[bool]:
    return [bool(v) for v in value] if isinstance(value, tuple) else [bool(value)]


def _event(kind: str, payload: str) -> bytes:
    data = json.dumps(json.loads(payload))  # one line
    return f"event: {kind}\ndata: {data}\n\n".encode()
