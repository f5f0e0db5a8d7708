"""`backdrop deadletters list|replay|purge` and `backdrop worker --check`: what
an operator runs against a live service."""

import argparse
import json
import socket
from typing import Any

from redis import Redis

from worker.runtime.settings import Settings


def add_operator_commands(commands: Any) -> None:
    letters = commands.add_parser(
        "deadletters", help="messages no worker could take: list, replay or purge them"
    )
    letters.add_argument("action", choices=("list", "replay", "purge"))
    letters.set_defaults(handler=cmd_deadletters)


def cmd_deadletters(args: argparse.Namespace) -> int:
    from worker.service.dead_letters import (
        list_dead_letters,
        purge_dead_letters,
        replay_dead_letters,
    )

    redis = Redis.from_url(Settings().redis.url)
    if args.action == "list":
        for entry in list_dead_letters(redis):
            what = f"task {entry['task']} {entry['args'][:120]}" if entry.get("task") else (
                f"{len(entry['body_b64']) * 3 // 4} bytes")  # fmt: skip
            print(f"{entry['at']}  {entry['queue']:<8} {entry['reason'][:120]}  ({what})")
        return 0
    if args.action == "purge":
        print(f"purged {purge_dead_letters(redis)} dead letter(s)")
        return 0
    print(f"replayed {replay_dead_letters(redis, _send_task)} dead letter(s)")
    return 0


def _send_task(name: str, task_args: list[Any], queue: str) -> None:
    from celery import Celery

    settings = Settings()
    producer = Celery("backdrop-replay", broker=settings.redis.url, set_as_current=False)
    producer.conf.update(task_serializer="json", accept_content=["json"])
    producer.send_task(name, args=task_args, queue=queue)


def check_worker(name: str) -> int:
    """The compose health check: 0 when the worker consumes, 1 when it stalled."""
    from worker.service.liveness import check

    settings = Settings()
    node = name.replace("%h", socket.gethostname()) if name else f"celery@{socket.gethostname()}"
    q = settings.queue
    healthy, why = check(Redis.from_url(settings.redis.url, socket_timeout=5), node,
                         q.stalled_after_seconds, q.hard_time_limit)  # fmt: skip
    print(json.dumps({"healthy": healthy, "why": why}))
    return 0 if healthy else 1
