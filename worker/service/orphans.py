"""Messages a worker took and no worker holds any more.

Kombu keeps a taken message in Redis (`unacked`) until it is acknowledged, and
gives it back when the taker's channel closes, or after the visibility timeout
(2 h here: above the longest step). When Redis itself is down at the moment a
worker's connection drops, that give-back fails and is never tried again: the
message (a step the worker had prefetched, or taken while its child still
loaded the models) would wait the full visibility timeout. The sweep gives it
back sooner, once it is older than `stale_after` and no live worker reports
holding it (Celery's inspect of active and reserved tasks); when no worker
answers, it decides nothing.
"""

import json
import logging
import time
from typing import Any

from celery import Celery
from redis import Redis

log = logging.getLogger(__name__)
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"  # kombu's Redis transport


def held_task_ids(app: Celery, timeout: float = 1.0) -> set[str] | None:
    """Every task id a live worker is running or holds reserved; None when no
    worker answered (then nobody can say what is orphaned)."""
    inspect = app.control.inspect(timeout=timeout)
    replies = [inspect.active(), inspect.reserved()]
    if not any(replies):
        return None
    return {str(task.get("id")) for reply in replies for tasks in (reply or {}).values()
            for task in tasks}  # fmt: skip


def orphaned_tags(redis: Redis, held: set[str], older_than: float) -> list[str]:
    """Delivery tags of messages taken more than `older_than` seconds ago whose
    task no live worker holds."""
    taken: Any = redis.zrangebyscore(UNACKED_INDEX, 0, time.time() - older_than)
    orphans = []
    for tag in taken:
        raw: Any = redis.hget(UNACKED, tag)
        if raw is None:
            continue  # acknowledged or given back in between
        try:
            task_id = json.loads(raw)[0]["headers"]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not a task message of ours: leave it to kombu
        if task_id not in held:
            orphans.append(tag.decode() if isinstance(tag, bytes) else str(tag))
    return orphans


def give_back_orphans(app: Celery, redis: Redis, older_than: float) -> list[str]:
    """Put orphaned messages back at the head of their queues; their tags."""
    if not redis.zcount(UNACKED_INDEX, 0, time.time() - older_than):
        return []  # the common case: nothing old, no broadcast
    held = held_task_ids(app)
    if held is None:
        return []
    tags = orphaned_tags(redis, held, older_than)
    if tags:
        with app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            for tag in tags:  # a transaction: two sweepers never push it twice
                qos.restore_by_tag(tag, leftmost=True)
    return tags
