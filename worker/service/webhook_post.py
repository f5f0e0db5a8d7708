"""One signed POST of a webhook body, and how it ended (an outcome, never a
parsed message): the address is checked first, the connection goes to the
checked address (no second DNS lookup), no proxy, no redirect followed, and
the whole attempt has one deadline: a socket's timeout bounds each read
only, so a receiver that sends its answer a byte at a time (or its TLS
handshake) would otherwise hold a delivery thread as long as it likes, past
the claim's lease, and the delivery would be sent twice."""

import contextlib
import http.client
import re
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from api_contracts.models import DeliveryOutcome
from api_contracts.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from worker.runtime.settings import Settings
from worker.service.webhook_dns import Resolver
from worker.service.webhook_guard import WebhookRefused, check_destination

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")

# Answers worth trying again: the receiver's trouble, or it asks us to wait.
# Any other non-2xx (a 410 Gone, a 401, a redirect) will not change.
RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class PostResult:
    outcome: DeliveryOutcome
    status: int | None = None  # the receiver's HTTP status, if it answered
    error: str | None = None

    @property
    def retryable(self) -> bool:
        if self.outcome in (DeliveryOutcome.TIMEOUT, DeliveryOutcome.CONNECT_ERROR):
            return True
        status = self.status or 0
        return self.outcome == DeliveryOutcome.HTTP_ERROR and (
            status >= 500 or status in RETRIED_STATUSES
        )


def post_signed(
    url: str, body: bytes, event_id: str, secret: str | Sequence[str], settings: Settings,
    resolver: Resolver | None = None, tenant: str = "",
) -> PostResult:  # fmt: skip
    """resolver, tenant: the worker's DNS lookups and whose attempt this is
    (worker.service.webhook_dns bounds the lookups still running per tenant)."""
    w = settings.webhooks
    deadline = Deadline(w.connect_timeout_seconds + w.timeout_seconds)
    try:
        address = check_destination(url, settings, resolver, tenant)
        status = _post(url, address, body, event_id, secret, settings, deadline)
    except WebhookRefused as exc:
        return PostResult(DeliveryOutcome.REFUSED, error=str(exc)[:300])
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
        if deadline.fired:  # the watchdog cut the connection: a timeout, not a refusal
            return _late(deadline)
        timed_out = isinstance(exc, TimeoutError)  # socket.timeout is TimeoutError
        outcome = DeliveryOutcome.TIMEOUT if timed_out else DeliveryOutcome.CONNECT_ERROR
        return PostResult(outcome, error=_detail(exc))
    finally:
        deadline.cancel()
    if deadline.fired:  # cut mid-headers: http.client takes the end for their end
        return _late(deadline)
    if 200 <= status < 300:
        return PostResult(DeliveryOutcome.DELIVERED, status)
    return PostResult(DeliveryOutcome.HTTP_ERROR, status, f"HTTP {status}")


def _late(deadline: "Deadline") -> PostResult:
    return PostResult(DeliveryOutcome.TIMEOUT, error=f"no answer within {deadline.seconds:g} s")


def _detail(exc: BaseException) -> str:
    """The error, printable ASCII only: a receiver's bogus status line is in
    it, and it goes to the worker's log and the tenant's status (a carriage
    return or a terminal escape there could forge or hide log lines)."""
    return f"{type(exc).__name__}: {_UNPRINTABLE.sub('?', str(exc)[:200])}"


class Deadline:
    """Cuts the attempt's socket when its time is up, wherever the attempt is
    (connecting, the TLS handshake, sending, reading the answer): the blocked
    call then fails, and `fired` says why."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.fired = seconds, False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """The socket to cut (the latest one given); cut at once if late."""
        with self._lock:
            self._sock = sock
            if self.fired:
                _cut(sock)

    def release(self) -> None:
        """Before the socket is closed: its number may be another thread's
        socket a moment later, which a late cut must not touch."""
        with self._lock:
            self._sock = None

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._sock is not None:
                _cut(self._sock)


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown even for TLS: SSLSocket.shutdown would drop
    # the TLS state under a read that another thread is blocked in.
    with contextlib.suppress(OSError):  # already closed or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _post(url: str, address: str, body: bytes, event_id: str, secret: str | Sequence[str],
          settings: Settings, deadline: Deadline) -> int:  # fmt: skip
    """POST to the checked address (the URL's host only names it, for TLS and
    the Host header). The receiver's status."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    w = settings.webhooks
    connection = _pinned(https)(parts.hostname or "", port, timeout=w.timeout_seconds)
    connection.pinned_address = address  # type: ignore[attr-defined]
    connection.connect_timeout = min(w.connect_timeout_seconds, w.timeout_seconds)  # type: ignore[attr-defined]
    connection.deadline = deadline  # type: ignore[attr-defined]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
               EVENT_ID_HEADER: event_id, "User-Agent": "backdrop-webhooks/2"}  # fmt: skip
    try:
        connection.request("POST", path, body=body, headers=headers)
        return int(connection.getresponse().status)
    finally:
        deadline.release()
        connection.close()


def _pinned(https: bool) -> type[http.client.HTTPConnection]:
    base = http.client.HTTPSConnection if https else http.client.HTTPConnection

    class Pinned(base):  # type: ignore[valid-type,misc]
        pinned_address = ""
        connect_timeout = 5.0
        deadline: Deadline

        def connect(self) -> None:
            # The TCP connection goes to the checked address; for https the
            # certificate is still checked against the host name (SNI).
            sock = socket.create_connection((self.pinned_address, self.port), self.connect_timeout)
            sock.settimeout(self.timeout)
            self.deadline.watch(sock)
            self.sock = sock
            if https:  # the handshake after the watch: wrapping takes the plain socket's place
                tls = self._context.wrap_socket(sock, server_hostname=self.host,
                                                do_handshake_on_connect=False)  # fmt: skip
                self.deadline.watch(tls)
                self.sock = tls
                tls.do_handshake()

    return Pinned
