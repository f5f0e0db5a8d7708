"""Routes that take a body check the caller before reading a byte of it, and
read it under a size cap and a deadline.

FastAPI reads and parses a JSON body before it resolves dependencies, so a
key checked by a dependency alone came after the body: anyone could make the
gateway hold megabytes. `GuardedRoute` runs first, at the ASGI level: a request
without a valid key is answered (and its connection closed) while the body
waits unread in uvicorn's buffer, which stops reading from the socket at 64 KiB.
"""

import asyncio
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from api_contracts.errors import BackdropError
from gateway.dependencies import Services, api_key
from gateway.errors import error_response
from gateway.uploads import declared_length

CLOSE = {"Connection": "close"}  # what is left of the body is never read
BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class GuardedRoute(APIRoute):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in BODYLESS or scope["method"] not in (self.methods or ()):
            # No body (the dependency checks the key), or the wrong method (405).
            await super().handle(scope, receive, send)
            return
        request = Request(scope)
        services: Services = request.app.state.services
        key = api_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        try:
            scope.setdefault("state", {})["tenant"] = await run_in_threadpool(
                services.authenticate, key
            )
        except BackdropError as exc:
            response = error_response(exc.code, exc.message, headers=CLOSE)
            await response(scope, receive, send)
            return
        gateway = services.settings.gateway
        # A JSON body (a model to parse) is small; an upload is the raw image.
        json_body = self.body_field is not None
        limit = gateway.max_json_bytes if json_body else gateway.max_upload_bytes
        declared = declared_length(request)
        if json_body and declared > limit:
            raise _too_large(limit)
        try:
            give_back = _room(services, scope["state"]["tenant"], json_body,
                              min(declared or limit, limit))  # fmt: skip
        except BackdropError as exc:
            response = error_response(exc.code, exc.message, exc.retry_after, headers=CLOSE)
            await response(scope, receive, send)
            return
        seconds = gateway.json_body_seconds if json_body else gateway.upload_body_seconds
        try:
            await super().handle(scope, bounded(receive, limit if json_body else None, seconds),
                                 send)  # fmt: skip
        finally:
            for give in give_back:
                give()


def _room(services: Services, tenant: str, json_body: bool, size: int) -> list[Callable[[], None]]:
    """Room for a body before a byte of it is read (each is held whole): its
    bytes in the process's budget and, for JSON, one of the tenant's slots
    (uploads have theirs in routes.uploads); 429 or 503 otherwise. Returns the calls
    that give them back."""
    give_back = [services.body_bytes.take(size)]
    if json_body:
        try:
            give_back.append(services.json_bodies.take(tenant))
        except BackdropError:
            give_back[0]()
            raise
    return give_back


def bounded(receive: Receive, limit: int | None, seconds: float) -> Receive:
    """`receive` that refuses a body past `limit` bytes (413) or one that has
    not fully arrived `seconds` after the first read (408: a client trickling
    its body holds a connection and a buffer for as long as it likes)."""
    size, deadline, done = 0, asyncio.get_running_loop().time() + seconds, False

    async def guarded() -> Message:
        nonlocal size, done
        if done:  # the body is in; later reads wait for a disconnect, unbounded
            return await receive()
        left = deadline - asyncio.get_running_loop().time()
        try:
            message: Message = await asyncio.wait_for(_next(receive), max(left, 0.001))
        except TimeoutError:
            raise HTTPException(408, f"the body did not arrive within {seconds:g} s",
                                headers=CLOSE) from None  # fmt: skip
        size += len(message.get("body", b""))
        if limit is not None and size > limit:
            raise _too_large(limit)
        done = not message.get("more_body", False)
        return message

    return guarded


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"a JSON body is limited to {limit} bytes", headers=CLOSE)


async def _next(receive: Receive) -> Message:
    return await receive()
