"""One webhook attempt has one deadline, whatever the receiver does: a
socket's timeout bounds each read only, so an answer sent a byte at a time
would hold a delivery thread past its claim's lease (and be sent twice). A
TLS handshake needs no test of its own: CPython bounds one handshake call by
the socket's timeout, which is inside the deadline."""

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from api_contracts.models import DeliveryOutcome
from tests.integration.receivers import Receiver, TricklingReceiver
from worker.runtime.settings import Settings
from worker.service.webhook_post import PostResult, post_signed

# Connect 0.5 s + answer 2 s: the attempt's deadline is 2.5 s. The receiver
# below sends a byte every 0.05 s for 8 s (each read far inside its 2 s), so
# an attempt that waited for it would be DELIVERED.
QUICK = {"timeout_seconds": 2.0, "connect_timeout_seconds": 0.5}


@pytest.fixture
def settings() -> Settings:
    base = Settings()  # development: loopback receivers are allowed
    return base.model_copy(update={"webhooks": base.webhooks.model_copy(update=QUICK)})


def _post(url: str, settings: Settings) -> PostResult:
    return post_signed(url, b'{"event": "test"}', "ev-1", "a-test-secret", settings)


@pytest.fixture
def trickling_headers() -> Iterator[TricklingReceiver]:
    receiver = TricklingReceiver(b"HTTP/1.1 200 OK\r\nX-Slow: ", every=0.05)
    yield receiver
    receiver.close()


def test_an_answer_sent_a_byte_at_a_time_times_out(
    trickling_headers: TricklingReceiver, settings: Settings
) -> None:
    result = _post(f"http://127.0.0.1:{trickling_headers.port}/hook", settings)
    # Its status line said 200: only the deadline tells it was never whole.
    assert result.outcome == DeliveryOutcome.TIMEOUT, result
    assert "within 2.5 s" in (result.error or "")


def test_a_prompt_receiver_is_delivered_once(settings: Settings) -> None:
    receiver = Receiver(lambda n: (204, 0.0))
    try:
        result = _post(receiver.url, settings)
    finally:
        receiver.close()
    assert result.outcome == DeliveryOutcome.DELIVERED and result.status == 204
    assert len(receiver.calls) == 1


@pytest.mark.parametrize("held", [True, False])
def test_a_name_server_that_answers_late_is_a_timeout(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    """getaddrinfo has no timeout of its own: the system's real lookup, held
    back (a tenant's slow name server), is given up after the connect
    timeout (0.5 s), retried later, and never reaches the receiver. Were the
    attempt to wait for it, the receiver would be delivered, as it is when
    the lookup is not held."""
    receiver = Receiver(lambda n: (204, 0.0))
    real, release = socket.getaddrinfo, threading.Event()

    def late(*args: Any, **kwargs: Any) -> Any:
        release.wait(10 if held else 0)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", late)
    try:
        result = _post(receiver.url.replace("127.0.0.1", "localhost"), settings)
    finally:
        release.set()
        receiver.close()
    if not held:
        assert result.outcome == DeliveryOutcome.DELIVERED, result
        return
    assert result.outcome == DeliveryOutcome.TIMEOUT and result.retryable, result
    assert "did not resolve within 0.5 s" in (result.error or "")
    assert receiver.calls == []
