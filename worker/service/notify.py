"""Completion webhooks: every `job.finished` event (the Redis stream written by
JobRecord.finish, whichever way the job ended) of a job with a callback_url
becomes a signed POST, on its own queue, retried with backoff, each attempt
recorded on the job.

A consumer group on the stream hands each event to one worker parent, which
queues its delivery and only then acknowledges it: an event read by a worker
that died is claimed again by another after CLAIM_IDLE_MS.
"""

import http.client
import json
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import ResponseError

from api_contracts.models import WebhookAttempt
from api_contracts.names import EVENTS_STREAM
from api_contracts.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from jobstore.records import JobRecord
from jobstore.tenants import Tenants
from worker.service import metrics
from worker.service.context import Services
from worker.service.webhook_guard import WebhookRefused, check_destination

log = logging.getLogger(__name__)
GROUP = "notify"
CLAIM_IDLE_MS = 60_000
Send = Callable[[str, str], None]  # (job id, event id): queue one delivery


def dispatch_events(redis: Redis, consumer: str, send: Send, block_ms: int = 1000) -> int:
    """Queue a delivery for each new job.finished event whose job asked for one."""
    _ensure_group(redis)
    claimed: Any = redis.xautoclaim(EVENTS_STREAM, GROUP, consumer, CLAIM_IDLE_MS, count=100)
    entries: list[Any] = list(claimed[1]) if claimed else []
    read: Any = redis.xreadgroup(GROUP, consumer, {EVENTS_STREAM: ">"}, count=100, block=block_ms)
    for _, messages in read or []:
        entries += messages
    for event_id, fields in entries:
        job_id = (fields or {}).get(b"job_id", b"").decode(errors="replace")
        record = JobRecord(redis, job_id)
        _count_end(record)
        if job_id and _wants_webhook(record):
            record.set_fields({"webhook.state": "pending", "webhook.event_id": event_id.decode()})
            send(job_id, event_id.decode())
        redis.xack(EVENTS_STREAM, GROUP, event_id)
    return len(entries)


def _count_end(record: JobRecord) -> None:
    """Every job's end passes here once (the stream's consumer group): the one
    place that counts them, whichever process ended the job (a cancel ends it
    in the gateway)."""
    try:
        status = record.status()
    except Exception:  # gone or corrupt: counted by the state the event names
        return
    code = status.error.code if status.error else None
    metrics.job_ended(status.state, code, status.created_at, status.finished_at)


def _ensure_group(redis: Redis) -> None:
    try:
        redis.xgroup_create(EVENTS_STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _wants_webhook(record: JobRecord) -> bool:
    try:
        return record.request().callback_url is not None
    except Exception:  # gone or corrupt: nothing to call
        return False


def deliver(services: Services, job_id: str, event_id: str, attempt: int) -> str:
    """One attempt: 'delivered', 'retry' or 'failed' (attempts used up) or
    'refused' (the address is not allowed: never retried)."""
    record = services.record(job_id)
    url = record.request().callback_url
    assert url is not None
    settings = services.settings
    body = json.dumps(_payload(services, record, event_id), sort_keys=True).encode()
    status, error = None, None
    try:
        address = check_destination(url, settings)
        secret = signing_secret(services, record)
        status = _post(url, address, body, event_id, secret, settings.webhooks.timeout_seconds)
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except WebhookRefused as exc:
        error = f"refused: {exc}"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    outcome = _outcome(status, error, attempt, settings.webhooks.max_attempts)
    metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
    at = datetime.now(UTC)
    state = "pending" if outcome == "retry" else outcome
    record.webhook_attempt(state, WebhookAttempt(at=at, status=status, error=error))
    log.info("webhook of job %.200s attempt %d: %s %s", job_id, attempt + 1, status, error)
    return outcome


def signing_secret(services: Services, record: JobRecord) -> str:
    """The job's tenant's secret; the service's for the default tenant (or a
    tenant from before per-tenant secrets)."""
    tenant = Tenants(services.redis).get(record.owner()[0])
    if tenant is not None and tenant.webhook_secret is not None:
        return tenant.webhook_secret.get_secret_value()
    return services.settings.webhooks.secret_value()


def _outcome(status: int | None, error: str | None, attempt: int, max_attempts: int) -> str:
    if error is None:
        return "delivered"
    if error.startswith("refused"):
        return "refused"
    return "retry" if attempt + 1 < max_attempts else "failed"


def _payload(services: Services, record: JobRecord, event_id: str) -> dict[str, Any]:
    status = json.loads(record.status().model_dump_json(exclude={"webhook"}))
    bucket = services.settings.storage.results_bucket
    expires = timedelta(seconds=services.settings.storage.url_expiry_seconds)
    for style in status["styles"]:
        if style.get("result_key"):
            style["result_url"] = services.store.presigned_get(bucket, style["result_key"], expires)
    return {"id": event_id, "type": "job.finished", "data": status}


def _post(url: str, address: str, body: bytes, event_id: str, secret: str, timeout: float) -> int:
    """POST to the checked address (the URL's host only names it, for TLS and
    the Host header); no proxy, no redirect followed. The receiver's status."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    connection = _pinned(https)(parts.hostname or "", port, timeout=timeout)
    connection.pinned_address = address  # type: ignore[attr-defined]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
               EVENT_ID_HEADER: event_id, "User-Agent": "backdrop-webhooks/1"}  # fmt: skip
    try:
        connection.request("POST", path, body=body, headers=headers)
        return int(connection.getresponse().status)
    finally:
        connection.close()


def _pinned(https: bool) -> type[http.client.HTTPConnection]:
    base = http.client.HTTPSConnection if https else http.client.HTTPConnection

    class Pinned(base):  # type: ignore[valid-type,misc]
        pinned_address = ""

        def connect(self) -> None:
            # The TCP connection goes to the checked address; for https the
            # certificate is still checked against the host name (SNI).
            self.sock = socket.create_connection((self.pinned_address, self.port), self.timeout)
            if https:
                self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)

    return Pinned


def backoff(attempt: int, settings: Any) -> float:
    w = settings.webhooks
    return float(w.backoff_seconds * w.backoff_factor**attempt)
