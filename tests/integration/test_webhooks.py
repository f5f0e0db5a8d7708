"""Completion webhooks against a real HTTP receiver on loopback and the real
worker: signed, retried with backoff while retrying can help, at least once,
the same frozen body on every attempt, every attempt on record."""

import itertools
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from api_contracts.models import DeliveryOutcome, JobRequest, JobState
from api_contracts.webhooks import EVENT_ID_HEADER, verified_event, verify_webhook
from tests.conftest import PHOTOS
from tests.integration.receivers import Receiver
from tests.services import WEBHOOK_SECRET, free_port, tenant_key

pytestmark = pytest.mark.integration


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


def test_a_rotated_secret_signs_beside_the_old_one_for_its_grace_only(client, receivers) -> None:
    """A leaked secret is replaced without a gap: during the grace a
    delivery verifies with the old secret and the new one; after it, with
    the new one alone. A tenant from before per-tenant secrets (signed with
    the service's, which other such tenants share) gets its own."""
    from jobstore.tenants import Limits, Tenants
    from jobstore.trusted_client import TrustedClient

    tenants = Tenants(client.redis)
    issued = tenants.add("rotating", Limits())
    old = issued.webhook_secret.get_secret_value()
    config = client.config.model_copy(update={"api_key": issued.api_key})
    receivers.append(receiver := Receiver(lambda n: (200, 0)))

    def delivered() -> tuple[dict[str, str], bytes]:
        job_id = _portrait_job(TrustedClient(config), receiver.url)
        assert _webhook_settles(client, job_id).webhook.state == "delivered"
        return receiver.calls[-1]

    new = tenants.new_webhook_secret("rotating", grace_seconds=3600).get_secret_value()
    headers, body = delivered()
    assert verify_webhook(old, headers, body) and verify_webhook(new, headers, body)
    tenants.new_webhook_secret("rotating", grace_seconds=0)  # and its grace is over
    newest = tenants.get("rotating").webhook_secret.get_secret_value()  # type: ignore[union-attr]
    headers, body = delivered()
    assert verify_webhook(newest, headers, body)
    assert not verify_webhook(new, headers, body) and not verify_webhook(old, headers, body)
    client.redis.hdel("backdrop:tenant:rotating", "webhook_secret")  # a tenant from before
    headers, body = delivered()
    assert verify_webhook(WEBHOOK_SECRET, headers, body)
    own = tenants.new_webhook_secret("rotating", grace_seconds=3600).get_secret_value()
    headers, body = delivered()  # its receiver still holds the service's secret
    assert verify_webhook(own, headers, body) and verify_webhook(WEBHOOK_SECRET, headers, body)
    tenants.new_webhook_secret("rotating", grace_seconds=0)
    final = tenants.get("rotating").webhook_secret.get_secret_value()  # type: ignore[union-attr]
    headers, body = delivered()
    assert verify_webhook(final, headers, body)
    assert not verify_webhook(WEBHOOK_SECRET, headers, body), "its own, no longer the shared one"


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
    first = status.webhook.attempts[0]
    assert first.status is None and first.outcome == DeliveryOutcome.CONNECT_ERROR, first


def test_a_receiver_that_answers_500_three_times_gets_retries(client, receivers) -> None:
    receivers.append(receiver := Receiver(lambda n: (500 if n < 3 else 204, 0)))
    job_id = _portrait_job(client, receiver.url)
    status = _webhook_settles(client, job_id)
    assert [a.status for a in status.webhook.attempts] == [500, 500, 500, 204]
    assert [a.outcome for a in status.webhook.attempts] == [DeliveryOutcome.HTTP_ERROR] * 3 + [
        DeliveryOutcome.DELIVERED
    ]
    assert [a.attempt for a in status.webhook.attempts] == [1, 2, 3, 4]
    ids = {headers[EVENT_ID_HEADER] for headers, _ in receiver.calls}
    assert len(ids) == 1, "every attempt carries the same event id, to deduplicate on"
    bodies = {body for _, body in receiver.calls}
    assert len(bodies) == 1, "the body is frozen at the event and re-sent byte for byte"
    assert all(verify_webhook(WEBHOOK_SECRET, h, b) for h, b in receiver.calls)
    times = [a.at for a in status.webhook.attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps[-1] > gaps[0], f"the backoff grows: {gaps}"


def test_a_slow_receiver_hits_the_timeout(client, receivers) -> None:
    receivers.append(receiver := Receiver(lambda n: (200, 3.0 if n == 0 else 0)))
    job_id = _portrait_job(client, receiver.url)
    status = _webhook_settles(client, job_id)
    first = status.webhook.attempts[0]
    assert first.status is None and first.outcome == DeliveryOutcome.TIMEOUT, first
    assert status.webhook.state == "delivered" and status.webhook.attempts[-1].status == 200


def test_a_job_without_callback_has_no_webhook(client) -> None:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    job_id = client.submit(JobRequest(photo_key=photo, mode="portrait", styles=[])).job_id
    final = client.wait(job_id, 60)
    assert final.state == JobState.SUCCEEDED and final.webhook is None


@pytest.mark.parametrize("status", [410, 400, 401, 404])
def test_a_4xx_answer_ends_the_delivery_at_once(client, receivers, status: int) -> None:
    receivers.append(receiver := Receiver(lambda n: (status, 0)))
    job_id = _portrait_job(client, receiver.url)
    final = _webhook_settles(client, job_id)
    time.sleep(1.0)  # past the first backoff (0.3 s): no second attempt comes
    assert final.webhook.state == "failed" and len(receiver.calls) == 1
    [attempt] = client.status(job_id).webhook.attempts
    assert attempt.outcome == DeliveryOutcome.HTTP_ERROR and attempt.status == status


@pytest.mark.parametrize("status", [408, 429, 503])
def test_a_busy_or_failing_receiver_is_tried_again(client, receivers, status: int) -> None:
    receivers.append(receiver := Receiver(lambda n: (status if n == 0 else 200, 0)))
    job_id = _portrait_job(client, receiver.url)
    final = _webhook_settles(client, job_id)
    assert [a.status for a in final.webhook.attempts] == [status, 200]
    assert final.webhook.state == "delivered"


def test_the_event_id_is_inside_the_signature(client, receivers) -> None:
    """A receiver deduplicating on the signed id sees a replay with a new
    Backdrop-Event-Id header for what it is: the signature no longer holds."""
    receivers.append(receiver := Receiver(lambda n: (200, 0)))
    job_id = _portrait_job(client, receiver.url)
    status = _webhook_settles(client, job_id)
    headers, body = receiver.calls[0]
    event = verified_event(WEBHOOK_SECRET, headers, body)
    assert event is not None and event["id"] == status.webhook.event_id
    replayed = {**headers, EVENT_ID_HEADER: "9999999999999-0"}
    assert not verify_webhook(WEBHOOK_SECRET, replayed, body)
    assert verified_event(WEBHOOK_SECRET, replayed, body) is None


MALFORMED_CALLBACKS = ["https://127.0.0.1:99999/", "https://[::1/", "https:///hook",
                       "https://hooks.example.com:port/", "https://hooks.example.com:0/",
                       "https://bad_host-.example..com/",
                       # Accepted, then every delivery failed as a connect error for hours:
                       "https://hooks.example.com/caf\u00e9", "https://hooks.example.com/a\x00b",
                       "https://hooks.example.com/a\x7fb"]  # fmt: skip


@pytest.mark.parametrize("url", MALFORMED_CALLBACKS)
def test_a_malformed_callback_is_refused_by_the_model(url: str) -> None:
    with pytest.raises(ValidationError, match="callback_url"):
        JobRequest(photo_key="uploads/x", mode="portrait", styles=[], callback_url=url)


def test_a_malformed_callback_is_refused_at_submit_and_nothing_is_queued(
    gateway_url: str, redis_client
) -> None:
    auth = {"Authorization": f"Bearer {tenant_key(redis_client, 'hooks-malformed')}"}
    with httpx.Client(base_url=gateway_url, timeout=60, headers=auth) as api:
        uploaded = api.post("/v1/photos", content=(PHOTOS / "grace_hopper.png").read_bytes())
        assert uploaded.status_code == 201, uploaded.text
        before = set(redis_client.scan_iter("backdrop:job:*"))
        for url in MALFORMED_CALLBACKS:
            request = {"photo_key": uploaded.json()["key"], "mode": "portrait", "styles": [],
                       "callback_url": url}  # fmt: skip
            answer = api.post("/v1/jobs", json=request)
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert set(redis_client.scan_iter("backdrop:job:*")) == before, "no job was recorded"
    assert not list(redis_client.scan_iter("backdrop:fair:*hooks-malformed*"))
