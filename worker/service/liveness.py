"""Liveness judged by consumption, not by ping.

Celery on Redis has a known failure where a live worker stops consuming after a
reconnect (celery issues #8082, #8030, #4453) while `inspect ping` still
answers. So each worker records, in `backdrop:liveness:<node>`, the queues it
serves, when its consumer last took a message, and which children are busy;
`backdrop worker --check` fails when a queue it serves has messages waiting,
no child is busy, and nothing was taken for `stalled_after_seconds`.
"""

import os
import time
from functools import lru_cache
from typing import Any

from celery.signals import task_postrun, task_prerun, task_received, worker_ready
from redis import Redis

from jobstore.redis_keys import LIVENESS_PREFIX
from worker.runtime.settings import get_settings

KEY = LIVENESS_PREFIX  # one small hash per worker node; kept while the node exists


@lru_cache(maxsize=1)
def _redis() -> Redis:
    """One client per process for these signals (not a pool per signal)."""
    return Redis.from_url(get_settings().redis.url, socket_timeout=5)


def _node_of(sender: Any) -> str:
    return str(getattr(sender, "hostname", None) or f"celery@{os.uname().nodename}")


@worker_ready.connect
def _record_queues(sender: Any = None, **_: Any) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    key = KEY + _node_of(sender)
    _redis().hset(key, mapping={"queues": ",".join(queues), "last_taken": time.time()})


@task_received.connect
def _record_take(sender: Any = None, request: Any = None, **_: Any) -> None:
    node = getattr(request, "hostname", None) or _node_of(getattr(sender, "controller", sender))
    _redis().hset(KEY + str(node), "last_taken", time.time())


@task_prerun.connect
def _record_busy(task: Any = None, **_: Any) -> None:
    node = getattr(getattr(task, "request", None), "hostname", None)
    if node:
        _redis().hset(KEY + str(node), f"busy.{os.getpid()}", time.time())


@task_postrun.connect
def _record_idle(task: Any = None, **_: Any) -> None:
    node = getattr(getattr(task, "request", None), "hostname", None)
    if node:
        _redis().hdel(KEY + str(node), f"busy.{os.getpid()}")


def check(redis: Redis, node: str, stalled_after: float, busy_limit: float) -> tuple[bool, str]:
    """(healthy, why) for the worker `node`, from what it recorded."""
    raw = {_text(k): _text(v) for k, v in redis.hgetall(KEY + node).items()}
    if "queues" not in raw:
        return False, f"{node} has not recorded itself (not started, or another name)"
    now = time.time()
    idle_for = now - float(raw.get("last_taken", 0))
    busy = [k for k, v in raw.items() if k.startswith("busy.") and now - float(v) < busy_limit]
    waiting = {q: int(redis.llen(q)) for q in raw["queues"].split(",") if q}
    backlog = {q: n for q, n in waiting.items() if n}
    if backlog and not busy and idle_for > stalled_after:
        return False, (f"{node} took nothing for {idle_for:.0f} s while {backlog} waited "
                       "and no child was busy: it stopped consuming")  # fmt: skip
    return True, f"{node} ok: last take {idle_for:.0f} s ago, busy {len(busy)}, waiting {waiting}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
