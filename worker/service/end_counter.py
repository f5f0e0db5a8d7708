"""Job-end metrics from the `job.finished` stream, on a consumer group of their
own: every end is counted exactly once whichever process ended the job (a
cancel ends it in the gateway), and counting neither waits on nor repeats with
the webhook bookkeeping (worker.service.notify), which reads the same events
in its group."""

from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from jobstore.records import JobRecord
from jobstore.redis_keys import EVENTS_STREAM
from worker.service import metrics

GROUP = "metrics"
CLAIM_IDLE_MS = 60_000  # a counter that died: another parent counts its events


def count_ends(redis: Redis, consumer: str) -> int:
    """Count the ends not counted yet (never blocks); how many."""
    ensure_group(redis, GROUP)
    claimed: Any = redis.xautoclaim(EVENTS_STREAM, GROUP, consumer, CLAIM_IDLE_MS, count=100)
    entries: list[Any] = list(claimed[1]) if claimed else []
    read: Any = redis.xreadgroup(GROUP, consumer, {EVENTS_STREAM: ">"}, count=100)
    for _, messages in read or []:
        entries += messages
    for event_id, fields in entries:
        job_id = (fields or {}).get(b"job_id", b"").decode(errors="replace")
        if job_id:
            _count(JobRecord(redis, job_id))
        redis.xack(EVENTS_STREAM, GROUP, event_id)
    return len(entries)


def _count(record: JobRecord) -> None:
    try:
        status = record.status()
    except Exception:  # gone or corrupt: nothing left to count it by
        return
    code = status.error.code if status.error else None
    metrics.job_ended(status.state, code, status.created_at, status.finished_at)


def ensure_group(redis: Redis, group: str) -> None:
    """The consumer group on the events stream, from its first entry."""
    try:
        redis.xgroup_create(EVENTS_STREAM, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
