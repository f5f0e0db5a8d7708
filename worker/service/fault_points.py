"""Named points where a step can be held, so a fault test cuts a service at a
known moment instead of racing a running job.

Off unless BACKDROP_QUEUE__PAUSE_AT names the point (refused in production).
The first time a job's step gets there, it sets `backdrop:pause:<point>:<job_id>`
to "reached" and waits until the test sets it to "go" (or PAUSE_LIMIT_SECONDS
pass, so it cannot hang).
"""

import time

from jobstore import redis_keys
from worker.service.context import Services

PAUSE_LIMIT_SECONDS = 60.0


def pause_key(point: str, job_id: str) -> str:
    return redis_keys.pause_point(point, job_id)


def pause_at(services: Services, point: str, job_id: str) -> None:
    if point not in services.settings.queue.pause_at:
        return
    key = pause_key(point, job_id)
    # Once per job: a retried step passes the point without holding again.
    if not services.redis.set(key, "reached", nx=True, ex=int(PAUSE_LIMIT_SECONDS) * 2):
        return
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while time.monotonic() < deadline and services.redis.get(key) != b"go":
        time.sleep(0.05)
