"""`backdrop gateway`: uvicorn, with the limits a public listener needs.

uvicorn caps a request's headers (h11_max_incomplete_event_size) and closes
idle keep-alive connections, but waits for ever for headers that trickle in
(slowloris): `DeadlineH11Protocol` closes a connection that has not sent a
whole request head `header_seconds` after it opened or after its last answer.
It also closes one still sending a body after its answer went out (each byte
it trickled cancelled uvicorn's keep-alive timer and nothing re-armed it: a
keyless client held a connection for ever), and one that has stopped reading
its answers for `write_stall_seconds` (pipelined requests never read left
the connection paused on write, where no timer runs). Bodies have their
deadline in gateway.guard; `max_connections` caps the rest (503 past it, in
the API's error shape). Connections to `probe_port` (the kubelet's liveness
probe, /healthz only: gateway.probe_port) count apart, up to
`probe_connections`, so a gateway held at its cap is not restarted as dead."""

import asyncio
import contextlib
import copy
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from api_contracts.errors import BackdropError, ErrorCode
from gateway.errors import ErrorBody, ErrorResponse
from gateway.settings import get_settings

MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5


# The API's error shape (gateway.errors), written by hand: no request exists yet.
_BUSY = ErrorBody(
    code=ErrorCode.SERVICE_BUSY,
    message="the gateway holds as many connections as it may: try again",
)
_BUSY_BODY = ErrorResponse(error=_BUSY).model_dump_json().encode()
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        b"retry-after: 5\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))  # fmt: skip


class DeadlineH11Protocol(H11Protocol):
    header_seconds = 10.0
    max_connections = 2048
    write_stall_seconds = 30.0
    # Time a client still sending an answered request's body has to finish it
    # before the connection closes: as long as the slowest legitimate body
    # (an upload refused 413 as it streams, from a client that reads nothing
    # before it has sent everything: urllib, requests). Closed at once, the
    # unread body makes the kernel reset it, and the answer is lost.
    drain_seconds = 120.0
    _header_timer: asyncio.TimerHandle | None = None
    _drain_timer: asyncio.TimerHandle | None = None
    _drained_cycle: object = None
    _write_timer: asyncio.TimerHandle | None = None
    probe_port = 0  # 0: no probe listener
    probe_connections = 8
    _probes: ClassVar[set[Any]] = set()  # open connections to probe_port

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sockname = transport.get_extra_info("sockname")
        probe = bool(self.probe_port) and isinstance(sockname, tuple)
        probe = probe and sockname[1] == self.probe_port
        if probe:
            self._probes.add(self)
        over = (len(self._probes) > self.probe_connections if probe
                else len(self.connections) - len(self._probes) > self.max_connections)  # fmt: skip
        if over:
            # uvicorn's limit_concurrency only answers requests: connections
            # past it were still accepted and held (descriptors, memory).
            self.logger.warning("closed a connection past its listener's limit")
            transport.write(BUSY)
            transport.close()
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._drain_timer is not None and (
            self.cycle is not self._drained_cycle or self.conn.their_state is not h11.SEND_BODY
        ):
            # The answered request's body is in: the connection goes on as any
            # other (uvicorn serves the next request on it).
            self._drain_timer.cancel()
            self._drain_timer = None
            if self.conn.their_state is h11.IDLE:
                self._arm_header_timer()
        if self.conn.their_state is not h11.IDLE and self._header_timer is not None:
            self._header_timer.cancel()  # the head is in: the body has its own deadline
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before its body was read (an upload's 413, a route that
            # takes none; a 401 closes at once): each byte it trickles used to
            # cancel uvicorn's keep-alive timer, so it has drain_seconds to end it.
            why = "kept sending an answered request's body"
            self._drain_timer = self.loop.call_later(self.drain_seconds, self._close, why)
            self._drained_cycle = self.cycle
            return
        self._arm_header_timer()  # the next request on this connection has as long

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            why = "stopped reading its answers"
            self._write_timer = self.loop.call_later(self.write_stall_seconds, self._close, why)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._probes.discard(self)
        for timer in (self._header_timer, self._drain_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def _close(self, why: str) -> None:
        if not self.transport.is_closing():
            self.logger.info("closed a connection that %s", why)
            self.transport.abort()  # close() would wait for a buffer nobody reads

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closed a connection that sent no request head in time")
            self.transport.close()


def serve(host: str, port: int) -> None:
    part = get_settings().gateway
    protocol = type("Protocol", (DeadlineH11Protocol,),
                    {"header_seconds": part.header_seconds,
                     "write_stall_seconds": part.write_stall_seconds,
                     "drain_seconds": part.upload_body_seconds,
                     "max_connections": part.max_connections,
                     "probe_port": part.probe_port,
                     "probe_connections": part.probe_connections, "_probes": set()})  # fmt: skip
    if part.probe_port and part.probe_port == port:
        why = f"BACKDROP_GATEWAY__PROBE_PORT must not be the API's port ({port})"
        raise BackdropError(ErrorCode.INVALID_REQUEST, why)
    # No websockets (the API has none): an upgraded connection would leave
    # this protocol without its connection_lost, and its count with it.
    config = uvicorn.Config("gateway.app:app", host=host, port=port, log_level="info",
                            http=protocol, ws="none", log_config=log_config(),
                            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS)  # fmt: skip
    server = uvicorn.Server(config)
    # One server, one event loop, two listeners: a probe that answers means
    # the loop that serves the API runs. (Its Config only binds the socket.)
    sockets = None
    if part.probe_port:
        probe = uvicorn.Config("gateway.app:app", host=host, port=part.probe_port, log_config=None)
        sockets = [config.bind_socket(), probe.bind_socket()]
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it cleanly, as uvicorn.run did
        server.run(sockets=sockets)


def log_config() -> dict[str, Any]:
    """uvicorn's, with the gateway's own lines (logger "gateway") beside its."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["gateway"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
