"""One signed POST of a webhook body, and how it ended (an outcome, never a
parsed message): the address is checked first, the connection goes to the
checked address (no second DNS lookup), no proxy, no redirect followed, and
both the connection and the answer have a time limit."""

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from api_contracts.models import DeliveryOutcome
from api_contracts.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from worker.runtime.settings import Settings
from worker.service.webhook_guard import WebhookRefused, check_destination

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
    url: str, body: bytes, event_id: str, secret: str, settings: Settings
) -> PostResult:
    try:
        address = check_destination(url, settings)
        status = _post(url, address, body, event_id, secret, settings)
    except WebhookRefused as exc:
        return PostResult(DeliveryOutcome.REFUSED, error=str(exc)[:300])
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        return PostResult(DeliveryOutcome.TIMEOUT, error=_detail(exc))
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
        return PostResult(DeliveryOutcome.CONNECT_ERROR, error=_detail(exc))
    if 200 <= status < 300:
        return PostResult(DeliveryOutcome.DELIVERED, status)
    return PostResult(DeliveryOutcome.HTTP_ERROR, status, f"HTTP {status}")


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _post(url: str, address: str, body: bytes, event_id: str, secret: str,
          settings: Settings) -> int:  # fmt: skip
    """POST to the checked address (the URL's host only names it, for TLS and
    the Host header). The receiver's status."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    w = settings.webhooks
    connection = _pinned(https)(parts.hostname or "", port, timeout=w.timeout_seconds)
    connection.pinned_address = address  # type: ignore[attr-defined]
    connection.connect_timeout = min(w.connect_timeout_seconds, w.timeout_seconds)  # type: ignore[attr-defined]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
               EVENT_ID_HEADER: event_id, "User-Agent": "backdrop-webhooks/2"}  # fmt: skip
    try:
        connection.request("POST", path, body=body, headers=headers)
        return int(connection.getresponse().status)
    finally:
        connection.close()


def _pinned(https: bool) -> type[http.client.HTTPConnection]:
    base = http.client.HTTPSConnection if https else http.client.HTTPConnection

    class Pinned(base):  # type: ignore[valid-type,misc]
        pinned_address = ""
        connect_timeout = 5.0

        def connect(self) -> None:
            # The TCP connection goes to the checked address; for https the
            # certificate is still checked against the host name (SNI).
            sock = socket.create_connection((self.pinned_address, self.port), self.connect_timeout)
            sock.settimeout(self.timeout)
            self.sock = sock
            if https:
                self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)

    return Pinned
