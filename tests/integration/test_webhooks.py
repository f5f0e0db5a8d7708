"""Completion webhooks against a real HTTP receiver on loopback and the real
worker: signed, retried with backoff, at least once, every attempt on record."""

import http.server
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from api_contracts.models import JobRequest, JobState
from api_contracts.webhooks import EVENT_ID_HEADER, verify_webhook
from tests.conftest import PHOTOS
from tests.services import WEBHOOK_SECRET, free_port

pytestmark = pytest.mark.integration


class Receiver:
    """A loopback HTTP server; `answer(n)` gives (status, delay) for the n-th POST."""

    def __init__(self, answer: Callable[[int], tuple[int, float]], port: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, delay = answer(len(outer.calls))
                outer.calls.append((dict(self.headers), body))
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/backdrop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def _portrait_job(client, url: str) -> str:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    request = JobRequest(photo_key=photo, mode="portrait", styles=[], callback_url=url)
    return client.submit(request).job_id


def _webhook_settles(client, job_id: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.status(job_id)
        if status.done and status.webhook and status.webhook.state != "pending":
            return status
        time.sleep(0.2)
    raise AssertionError(f"webhook of {job_id} never settled: {client.status(job_id).webhook}")


def test_the_delivery_is_signed_and_a_tampered_body_fails(client, receivers) -> None:
    receivers.append(receiver := Receiver(lambda n: (200, 0)))
    job_id = _portrait_job(client, receiver.url)
    status = _webhook_settles(client, job_id)
    assert status.webhook.state == "delivered" and len(receiver.calls) == 1
    headers, body = receiver.calls[0]
    assert verify_webhook(WEBHOOK_SECRET, headers, body)
    assert not verify_webhook(WEBHOOK_SECRET, headers, body.replace(b"SUCCEEDED", b"FAILED"))
    assert not verify_webhook("another-secret", headers, body)
    event = json.loads(body)
    assert event["type"] == "job.finished" and event["data"]["state"] == "SUCCEEDED"
    assert event["id"] == headers[EVENT_ID_HEADER] == status.webhook.event_id
    assert event["data"]["styles"][0]["result_url"].startswith("http")
    assert [a.status for a in status.webhook.attempts] == [200]


def test_a_tenants_deliveries_are_signed_with_its_own_secret(client, receivers) -> None:
    from jobstore.tenants import Limits, Tenants
    from jobstore.trusted_client import TrustedClient

    issued = Tenants(client.redis).add("hooked", Limits())
    config = client.config.model_copy(update={"api_key": issued.api_key})
    receivers.append(receiver := Receiver(lambda n: (200, 0)))
    job_id = _portrait_job(TrustedClient(config), receiver.url)
    assert _webhook_settles(client, job_id).webhook.state == "delivered"
    headers, body = receiver.calls[0]
    assert verify_webhook(issued.webhook_secret.get_secret_value(), headers, body)
    assert not verify_webhook(WEBHOOK_SECRET, headers, body), "not the service-wide secret"


def test_a_receiver_down_then_up_gets_the_event_once(client, receivers) -> None:
    port = free_port()
    job_id = _portrait_job(client, f"http://127.0.0.1:{port}/hook")
    deadline = time.monotonic() + 60
    while not (client.status(job_id).webhook and client.status(job_id).webhook.attempts):
        assert time.monotonic() < deadline, "no attempt while the receiver was down"
        time.sleep(0.1)
    receivers.append(receiver := Receiver(lambda n: (200, 0), port=port))
    status = _webhook_settles(client, job_id)
    time.sleep(1.5)  # no later duplicate arrives
    assert status.webhook.state == "delivered" and len(receiver.calls) == 1
    assert (
        status.webhook.attempts[0].status is None
        and "refused" in status.webhook.attempts[0].error.lower()
    )


def test_a_receiver_that_answers_500_three_times_gets_retries(client, receivers) -> None:
    receivers.append(receiver := Receiver(lambda n: (500 if n < 3 else 204, 0)))
    job_id = _portrait_job(client, receiver.url)
    status = _webhook_settles(client, job_id)
    assert [a.status for a in status.webhook.attempts] == [500, 500, 500, 204]
    ids = {headers[EVENT_ID_HEADER] for headers, _ in receiver.calls}
    assert len(ids) == 1, "every attempt carries the same event id, to deduplicate on"
    times = [a.at for a in status.webhook.attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[-1] > gaps[0], f"the backoff grows: {gaps}"


def test_a_slow_receiver_hits_the_timeout(client, receivers) -> None:
    receivers.append(receiver := Receiver(lambda n: (200, 3.0 if n == 0 else 0)))
    job_id = _portrait_job(client, receiver.url)
    status = _webhook_settles(client, job_id)
    first = status.webhook.attempts[0]
    assert first.status is None and "timed out" in first.error.lower(), first
    assert status.webhook.state == "delivered" and status.webhook.attempts[-1].status == 200


def test_a_job_without_callback_has_no_webhook(client) -> None:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    job_id = client.submit(JobRequest(photo_key=photo, mode="portrait", styles=[])).job_id
    final = client.wait(job_id, 60)
    assert final.state == JobState.SUCCEEDED and final.webhook is None
