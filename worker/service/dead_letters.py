"""The dead-letter list: messages no worker could take, kept for an operator
(`backdrop deadletters list|replay|purge`) instead of killing workers or
vanishing. Entries are JSON: queue, reason, time, and the raw body."""

import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from jobstore.redis_keys import DEAD_LETTERS

log = logging.getLogger(__name__)

MAX_DEAD_LETTERS = 10_000  # the oldest go first past this
MAX_BODY_BYTES = 1 << 20  # a body kept for replay; larger ones are cut (and marked)
LOG_CHARS = 300


def dead_letter(
    redis: Redis, queue: str, body: bytes, reason: str, task: str | None = None,
    args: str | None = None,
) -> None:  # fmt: skip
    """Keep a message no worker could take: a raw body (replayed onto its queue
    as it was), or a task and its JSON arguments (replayed by sending the task)."""
    entry = {
        "task": task[:LOG_CHARS] if task else None,
        "args": args[:MAX_BODY_BYTES] if args else None,
        "queue": queue[:LOG_CHARS],
        "reason": reason[:LOG_CHARS],
        "at": datetime.now(UTC).isoformat(),
        "body_b64": base64.b64encode(body[:MAX_BODY_BYTES]).decode(),
        "truncated": len(body) > MAX_BODY_BYTES,
    }
    log.error("dead-lettered a message from %.100s: %.300s", queue, reason)
    try:
        with redis.pipeline() as pipe:
            pipe.lpush(DEAD_LETTERS, json.dumps(entry))
            pipe.ltrim(DEAD_LETTERS, 0, MAX_DEAD_LETTERS - 1)
            pipe.execute()
    except Exception as exc:  # never let the containment itself kill the worker
        log.error("could not store the dead letter: %.300s", exc)


def list_dead_letters(redis: Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in redis.lrange(DEAD_LETTERS, 0, -1)]


SendTask = Callable[[str, list[Any], str], None]  # (task name, args, queue)


def replay_dead_letters(redis: Redis, send_task: SendTask) -> int:
    """Every dead letter back where it came from, oldest first: a raw body onto
    its queue list, a task message sent again with its arguments."""
    count = 0
    while (raw := redis.rpop(DEAD_LETTERS)) is not None:
        entry = json.loads(raw)  # type: ignore[arg-type]
        if entry.get("task"):
            send_task(entry["task"], json.loads(entry["args"] or "[]"), entry["queue"])
        else:
            redis.lpush(entry["queue"], base64.b64decode(entry["body_b64"]))
        count += 1
    return count


def purge_dead_letters(redis: Redis) -> int:
    count = int(redis.llen(DEAD_LETTERS))
    redis.delete(DEAD_LETTERS)
    return count
