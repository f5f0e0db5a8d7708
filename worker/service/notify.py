"""Completion webhooks: every `job.finished` event (the Redis stream written by
JobRecord.finish, whichever way the job ended) of a job with a callback_url
becomes a delivery record (worker.service.webhook_deliveries) whose body is
frozen then; worker.service.webhook_pool makes its attempts, each one signed,
recorded on the job and retried with backoff while retrying can help.

A consumer group on the stream hands each event to one worker parent, which
stores its delivery and only then acknowledges it: an event read by a worker
that died is claimed again by another after CLAIM_IDLE_MS.
"""

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import RedisError

from api_contracts.models import DeliveryOutcome, WebhookAttempt
from jobstore.records import JobRecord
from jobstore.redis_keys import EVENTS_STREAM
from jobstore.tenants import Tenants
from worker.runtime.settings import Settings
from worker.service import metrics, webhook_deliveries
from worker.service.context import Services
from worker.service.end_counter import ensure_group
from worker.service.webhook_deliveries import Delivery
from worker.service.webhook_post import PostResult, post_signed

log = logging.getLogger(__name__)
GROUP = "notify"
CLAIM_IDLE_MS = 60_000


def dispatch_events(services: Services, consumer: str, block_ms: int = 1000) -> int:
    """Store a delivery for each new job.finished event whose job asked for
    one (the ends are counted by worker.service.end_counter, in its own group)."""
    redis = services.redis
    ensure_group(redis, GROUP)
    claimed: Any = redis.xautoclaim(EVENTS_STREAM, GROUP, consumer, CLAIM_IDLE_MS, count=100)
    entries: list[Any] = list(claimed[1]) if claimed else []
    read: Any = redis.xreadgroup(GROUP, consumer, {EVENTS_STREAM: ">"}, count=100, block=block_ms)
    for _, messages in read or []:
        entries += messages
    for event_id, fields in entries:
        job_id = (fields or {}).get(b"job_id", b"").decode(errors="replace")
        record = JobRecord(redis, job_id)
        url = _callback(record) if job_id else None
        if url is not None:
            _freeze(services, record, url, event_id.decode())
        redis.xack(EVENTS_STREAM, GROUP, event_id)
    return len(entries)


def _freeze(services: Services, record: JobRecord, url: str, event_id: str) -> None:
    """The event's body, made once: every attempt sends these same bytes."""
    try:
        body = json.dumps(_payload(services, record, event_id), sort_keys=True).encode()
        tenant = record.owner()[0]
    except RedisError:
        raise  # Redis down: the event stays unacknowledged and is read again
    except Exception as exc:  # a record gone or unreadable: one bad job stops no other
        log.warning("webhook of job %.200s not made: %.300s", record.job_id, exc)
        return
    if webhook_deliveries.create(services.redis, event_id, record.job_id, tenant, url, body,
                                 time.time()):  # fmt: skip
        record.set_fields({"webhook.state": "pending", "webhook.event_id": event_id})


def _callback(record: JobRecord) -> str | None:
    try:
        return record.request().callback_url
    except Exception:  # gone or corrupt: nothing to call
        return None


def _payload(services: Services, record: JobRecord, event_id: str) -> dict[str, Any]:
    status = json.loads(record.status().model_dump_json(exclude={"webhook"}))
    bucket = services.settings.storage.results_bucket
    expires = timedelta(seconds=services.settings.storage.url_expiry_seconds)
    for style in status["styles"]:
        if style.get("result_key"):
            style["result_url"] = services.store.presigned_get(bucket, style["result_key"], expires)
    return {"id": event_id, "type": "job.finished", "data": status}


def attempt(services: Services, delivery: Delivery) -> PostResult:
    """One attempt of `delivery`: POST, record it on the job, then settle the
    delivery or schedule its next attempt."""
    settings = services.settings
    secret = signing_secrets(services, delivery.tenant)
    result = post_signed(delivery.url, delivery.body, delivery.event_id, secret, settings,
                         services.resolver, delivery.tenant)  # fmt: skip
    number = delivery.attempt + 1
    again = result.retryable and number < settings.webhooks.max_attempts
    metrics.WEBHOOK_DELIVERIES.labels(str(result.outcome)).inc()
    record = services.record(delivery.job_id)
    entry = WebhookAttempt(at=datetime.now(UTC), attempt=number, outcome=result.outcome,
                           status=result.status, error=result.error)  # fmt: skip
    try:
        record.webhook_attempt(_state(result, again), entry)
    except Exception as exc:  # the record is gone: the attempt still counts
        log.warning("webhook attempt of job %.200s not recorded: %.300s", delivery.job_id, exc)
    if again:
        due = time.time() + backoff(delivery.attempt, settings)
        webhook_deliveries.retry_at(services.redis, delivery, due)
    else:
        webhook_deliveries.settle(services.redis, delivery.event_id, delivery.tenant)
    log.info("webhook of job %.200s attempt %d: %s %s %s", delivery.job_id, number,
             result.outcome, result.status, result.error)  # fmt: skip
    return result


def _state(result: PostResult, again: bool) -> str:
    if again:
        return "pending"
    if result.outcome in (DeliveryOutcome.DELIVERED, DeliveryOutcome.REFUSED):
        return str(result.outcome)
    return "failed"


def signing_secrets(services: Services, tenant_name: str) -> list[str]:
    """The tenant's secret (and its previous one while a rotation's grace
    runs); the service's for the default tenant, or a tenant from before
    per-tenant secrets (`backdrop tenants rotate-secret` gives it its own)."""
    shared = services.settings.webhooks.secret_value()
    tenant = Tenants(services.redis).get(tenant_name)
    return tenant.signing_secrets(time.time(), shared) if tenant is not None else [shared]


def backoff(attempt: int, settings: Settings) -> float:
    w = settings.webhooks
    return float(w.backoff_seconds * w.backoff_factor**attempt)
