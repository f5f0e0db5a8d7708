"""The sweep: restart jobs whose tasks vanished (a Redis restart, a lost
message), give up on jobs restarted too often. Runs in each worker's parent;
idempotent, so several workers may sweep at once."""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis import Redis

from api_contracts.models import TERMINAL_STATES
from api_contracts.names import PRIORITY_QUEUES, QUEUE_CPU, QUEUE_GPU, TASK_SEGMENT
from jobstore.admission import PRIORITIES, inflight_key, reenter_window, rehold
from jobstore.records import CorruptRecord, JobRecord, now
from jobstore.redis_keys import JOB_KEY_PREFIX, SWEEP_MISSING, TENANT_PREFIX
from worker.service import finish
from worker.service.context import Services

log = logging.getLogger(__name__)
# Restart a job: (its record, the new generation) -> sends its first task again.
Restart = Callable[[JobRecord, int], None]


def sweep_stale_jobs(
    services: Services, stale_after: float, max_requeues: int, restart: Restart | None = None
) -> list[str]:
    """Hand back unfinished jobs whose record has not moved for `stale_after`
    seconds; finished outputs are reused by key, so nothing is computed twice.
    After `max_requeues` restarts the open outputs fail with INTERNAL and the
    job ends (PARTIAL if some succeeded). A job with a message still in the
    broker is waiting in a backlog, not lost: left alone. Each job is handled
    on its own: one that cannot be read is logged and skipped."""
    acted: list[str] = []
    backlog: list[str | None] = [None]  # read once per round, only if a job is stale
    for key in services.redis.scan_iter(f"{JOB_KEY_PREFIX}*", count=500):
        job_id = (key.decode() if isinstance(key, bytes) else key).removeprefix(JOB_KEY_PREFIX)
        if ":" in job_id:  # a side key (:sweep), not a record
            continue
        try:
            if _sweep_one(services, services.record(job_id), stale_after, max_requeues,
                          restart, backlog):  # fmt: skip
                acted.append(job_id)
        except Exception as exc:  # one bad record must not stop the round
            log.warning("sweep skipped job %.200s: %.300s", job_id, exc)
    return acted


def _sweep_one(
    services: Services, record: JobRecord, stale_after: float, max_requeues: int,
    restart: Restart | None, backlog: list[str | None],
) -> bool:  # fmt: skip
    try:
        status = record.status()
    except CorruptRecord as exc:
        if record.field("state") not in TERMINAL_STATES:
            log.warning("job %.200s: %.300s; failing it", record.job_id, exc.message)
            finish.fail_job(record, exc.code, exc.message)
        return False
    if status.done or status.updated_at is None:
        return False
    age = (datetime.fromisoformat(now()) - status.updated_at).total_seconds()
    if record.field("held") == "1":  # waiting for its turn in the fair queue, not lost
        record.set(held="1")  # a long wait must not let the record expire
        if age >= stale_after:  # its submit may have died before holding it
            tenant, priority = record.owner()
            rehold(services.redis, tenant, priority, record.job_id)  # type: ignore[arg-type]
        return False
    if age < stale_after:
        return False
    if backlog[0] is None:
        backlog[0] = broker_backlog(services.redis)
    if record.job_id in (backlog[0] or ""):
        return False
    # Claim the sweep of this job for a while, so two sweepers do not both act.
    claim = f"{record.key}:sweep"
    if not services.redis.set(claim, "1", nx=True, ex=max(1, int(stale_after))):
        return False
    if record.generation() >= max_requeues:
        finish.give_up(record)
        return False
    # Counted and sent in the same step: a counted restart is never lost.
    generation = record.count("requeued")
    record.set(updated=now())
    if restart is not None:
        restart(record, generation)
    return True


def restart_job(record: JobRecord, generation: int) -> None:
    """Send a job's first task again, as a new generation with its own id."""
    from worker.service.celery_app import app

    task_id = record.segment_task_id(generation)
    priority = record.owner()[1]
    queue = PRIORITY_QUEUES[priority]
    # Its GPU steps run again: back into the window it may have left (they
    # leave it again under this generation's marks).
    reenter_window(record.redis, record.job_id, priority)
    app.send_task(TASK_SEGMENT, args=[record.job_id], queue=queue, task_id=task_id)


def broker_backlog(redis: Redis) -> str:
    """Every message waiting in a queue or held unacknowledged by a worker, as
    raw text. Kombu's Redis transport keeps the task's id and `argsrepr` (which
    hold the job id) in plain JSON headers: lists named after the queues (plus
    priority suffixes) and the `unacked` hash."""
    parts: list[Any] = []
    for queue in (QUEUE_GPU, QUEUE_CPU):
        for key in redis.scan_iter(match=f"{queue}*", _type="LIST"):
            parts.extend(redis.lrange(key, 0, -1))
    parts.extend(redis.hvals("unacked"))
    return "\n".join(p.decode() if isinstance(p, bytes) else str(p) for p in parts)


MISSING = SWEEP_MISSING  # slot holders without a record last round


def release_ended_jobs(redis: Redis) -> int:
    """Give back the open-job slots and in-flight places of jobs that ended or
    expired without their release (a record that vanished: its end never ran).
    Normally JobRecord.finish releases them in the step that ends the job. A
    holder without a record is released only if it had none last round too:
    a submit takes its slot a moment before it writes the record."""
    released, missing = 0, set()
    before: Any = redis.smembers(MISSING)
    sets = [inflight_key(p) for p in PRIORITIES]
    sets += list(redis.scan_iter(match=f"{TENANT_PREFIX}*:open", _type="SET"))
    for name in sets:
        members: Any = redis.smembers(name)
        for member in members:
            job_id = member.decode() if isinstance(member, bytes) else str(member)
            state: Any = redis.hget(JOB_KEY_PREFIX + job_id, "state")
            if state is None and member not in before:
                missing.add(member)
            elif state is None or state.decode() in TERMINAL_STATES:
                released += int(redis.srem(name, member))
    redis.delete(MISSING)
    if missing:
        redis.sadd(MISSING, *missing)
    return released
