"""`backdrop gateway`: uvicorn, with the limits a public listener needs.

uvicorn caps a request's headers (h11_max_incomplete_event_size) and closes
idle keep-alive connections, but waits for ever for headers that trickle in
(slowloris): `DeadlineH11Protocol` closes a connection that has not sent a
whole request head `header_seconds` after it opened or after its last answer.
Bodies have their deadline in gateway.guard."""

import asyncio
import copy
from typing import Any

import h11
import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.settings import get_settings

MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5


class DeadlineH11Protocol(H11Protocol):
    header_seconds = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self._header_timer is not None:
            self._header_timer.cancel()  # the head is in: the body has its own deadline
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()  # the next request on this connection has as long

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

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
    protocol = type("Protocol", (DeadlineH11Protocol,),
                    {"header_seconds": get_settings().gateway.header_seconds})  # fmt: skip
    uvicorn.run("gateway.app:app", host=host, port=port, log_level="info", http=protocol,
                log_config=log_config(), h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)  # fmt: skip


def log_config() -> dict[str, Any]:
    """uvicorn's, with the gateway's own lines (logger "gateway") beside its."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["gateway"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
