"""Completion webhooks: every `job.finished` event (the Redis stream written by
JobRecord.finish, whichever way the job ended) of a job with a callback_url
becomes a signed POST, on its own queue, retried with backoff, each attempt
recorded on the job.

A consumer group on the stream hands each event to one worker parent, which
queues its delivery and only then acknowledges it: an event read by a worker
that died is claimed again by another after CLAIM_IDLE_MS.
"""

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from api_contracts.models import WebhookAttempt
from api_contracts.names import EVENTS_STREAM
from api_contracts.records import JobRecord
from api_contracts.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
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
        if job_id and _wants_webhook(record):
            record.set_fields({"webhook.state": "pending", "webhook.event_id": event_id.decode()})
            send(job_id, event_id.decode())
        redis.xack(EVENTS_STREAM, GROUP, event_id)
    return len(entries)


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
        check_destination(url, settings)
        status = _post(url, body, event_id, settings.webhooks.secret_value(), settings)
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except WebhookRefused as exc:
        error = f"refused: {exc}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {str(getattr(exc, 'reason', exc))[:200]}"
    outcome = _outcome(status, error, attempt, settings.webhooks.max_attempts)
    at = datetime.now(UTC)
    state = "pending" if outcome == "retry" else outcome
    record.webhook_attempt(state, WebhookAttempt(at=at, status=status, error=error))
    log.info("webhook of job %.200s attempt %d: %s %s", job_id, attempt + 1, status, error)
    return outcome


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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere, past the address check: not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post(url: str, body: bytes, event_id: str, secret: str, settings: Any) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
        EVENT_ID_HEADER: event_id, "User-Agent": "backdrop-webhooks/1"})  # fmt: skip
    opener = urllib.request.build_opener(_NoRedirects())
    try:
        with opener.open(request, timeout=settings.webhooks.timeout_seconds) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def backoff(attempt: int, settings: Any) -> float:
    w = settings.webhooks
    return float(w.backoff_seconds * w.backoff_factor**attempt)
