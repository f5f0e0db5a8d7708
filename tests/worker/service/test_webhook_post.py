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
from worker.service.webhook_dns import Resolver
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
        result = _post(receiver.url, settings)  # a literal too goes through getaddrinfo
    finally:
        release.set()
        receiver.close()
    if not held:
        assert result.outcome == DeliveryOutcome.DELIVERED, result
        return
    assert result.outcome == DeliveryOutcome.TIMEOUT and result.retryable, result
    assert "no DNS answer within 0.5 s" in (result.error or "")
    assert receiver.calls == []


def test_lookups_still_running_are_bounded_per_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    """A late lookup goes on after its attempt gave up (getaddrinfo cannot be
    stopped): past the tenant's bound the next attempt is a timeout at once,
    without a new thread, while another tenant's lookup goes ahead; the slot
    comes back when the late lookup ends."""
    real, release = socket.getaddrinfo, threading.Event()

    def black_holed(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.2":  # the tenant's name server that never answers in time
            release.wait(10)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", black_holed)
    resolver = Resolver(limit=3, per_tenant=1)
    try:
        with pytest.raises(TimeoutError, match=r"within 0\.2 s"):
            resolver.resolve("127.0.0.2", 443, 0.2, "a")
        with pytest.raises(TimeoutError, match="too many lookups still running"):
            resolver.resolve("127.0.0.2", 443, 0.2, "a")
        assert resolver.running == {"a": 1}
        assert resolver.resolve("127.0.0.1", 443, 5.0, "b")[0][4][0] == "127.0.0.1"
    finally:
        release.set()
    for _ in range(100):  # the late lookup ends on its own thread
        if not resolver.running:
            break
        threading.Event().wait(0.05)
    assert resolver.running == {}
    assert resolver.resolve("127.0.0.2", 443, 5.0, "a")[0][4][0] == "127.0.0.2"


def test_a_resolver_in_trouble_for_now_is_tried_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EAI_AGAIN (the name servers failed for now) is no answer about the
    host: a connection error, tried again, not a refusal, which is final."""

    errno = socket.EAI_AGAIN

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(errno, "the name servers' answer")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    result = _post("http://127.0.0.1:9/hook", settings)
    assert result.outcome == DeliveryOutcome.CONNECT_ERROR and result.retryable, result
    errno = socket.EAI_NONAME  # the host does not exist: that will not change
    gone = _post("http://127.0.0.1:9/hook", settings)
    assert gone.outcome == DeliveryOutcome.REFUSED and not gone.retryable, gone


def test_a_receivers_bogus_status_line_reaches_log_and_status_printable(
    settings: Settings,
) -> None:
    """The status line is in the attempt's error, which the worker logs and the
    tenant's status shows: a carriage return or a terminal escape in it could
    forge a log line or hide one."""
    forged = b"XYZ\r2026-12-05 ERROR job=abc forged\x1b[2K\x1b]0;title\x07\r\n"
    receiver = TricklingReceiver(forged, seconds=0.3, every=0.1)
    try:
        result = _post(f"http://127.0.0.1:{receiver.port}/hook", settings)
    finally:
        receiver.close()
    assert result.outcome == DeliveryOutcome.CONNECT_ERROR, result
    error = result.error or ""
    assert "XYZ" in error and "forged" in error, "the receiver's answer is still told"
    assert all(" " <= ch <= "~" for ch in error), repr(error)
