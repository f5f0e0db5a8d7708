"""The probe listener answers /healthz only (gateway.server): it is for the
kubelet, outside the public connection cap, so it must not be a way around
that cap or the Ingress to the API."""

from starlette.types import ASGIApp, Receive, Scope, Send

from api_contracts.errors import ErrorCode
from gateway.errors import ErrorBody, ErrorResponse

PROBE_PATH = "/healthz"
_NOT_HERE_ERROR = ErrorBody(code=ErrorCode.NOT_FOUND, message="this port answers /healthz only")
_NOT_HERE = ErrorResponse(error=_NOT_HERE_ERROR).model_dump_json().encode()


class ProbePortHealthOnly:
    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app, self.port = app, port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        on_probe = bool(self.port) and scope["type"] != "lifespan" and server[1] == self.port
        if not on_probe or (scope["type"] == "http" and scope["path"] == PROBE_PATH):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _refuse(send)
        else:  # a websocket: closed before it is accepted
            await send({"type": "websocket.close", "code": 1008})


async def _refuse(send: Send) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(_NOT_HERE)).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": _NOT_HERE})
