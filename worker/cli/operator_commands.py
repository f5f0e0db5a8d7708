"""`backdrop deadletters list|replay|purge`, `backdrop tenants add|list|revoke|rotate|rotate-secret`
and `backdrop worker --check`: what an operator runs against a live service."""

import argparse
import json
import socket
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from redis import Redis

from jobstore.connection import RedisConnection
from worker.runtime.settings import Settings


class _RedisOnly(BaseSettings):
    """BACKDROP_REDIS__* alone: tenants and dead letters need nothing else, so
    they run wherever the Redis URL is (the gateway's container, which has
    no webhook secret for the workers' production settings to ask for)."""

    model_config = SettingsConfigDict(env_prefix="BACKDROP_", env_nested_delimiter="__",
                                      extra="ignore")  # fmt: skip
    redis: RedisConnection = RedisConnection()


def _redis_url() -> str:
    return _RedisOnly().redis.url


def add_operator_commands(commands: Any) -> None:
    letters = commands.add_parser(
        "deadletters", help="messages no worker could take: list, replay or purge them"
    )
    letters.add_argument("action", choices=("list", "replay", "purge"))
    letters.set_defaults(handler=cmd_deadletters)
    tenants = commands.add_parser("tenants", help="API keys and limits of the apps using Backdrop")
    actions = tenants.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="a new tenant; prints its API key and webhook secret once")
    add.add_argument("name")
    add.add_argument("--max-open-jobs", type=int, default=20, help="0: no limit (default 20)")
    add.add_argument("--outputs-per-minute", type=int, default=60,
                     help="outputs at the default size and iterations; a costlier one "
                     "counts more (jobstore/job_cost.py). 0: no limit (default 60)")  # fmt: skip
    add.add_argument("--uploads-per-hour", type=int, default=600, help="0: no limit (default 600)")
    add.add_argument("--upload-mb-per-hour", type=int, default=1024,
                     help="megabytes uploaded an hour; 0: no limit (default 1024)")  # fmt: skip
    actions.add_parser("list", help="tenants, their limits and whether their key works")
    revoke = actions.add_parser("revoke", help="the tenant's key stops working (403)")
    revoke.add_argument("name")
    rotate = actions.add_parser("rotate", help="a new key for the tenant; the old one stops")
    rotate.add_argument("name")
    secret = actions.add_parser("rotate-secret", help="a new webhook secret; the old one "
                                "signs too for --grace-hours")  # fmt: skip
    secret.add_argument("name")
    secret.add_argument("--grace-hours", type=float, default=24.0,
                        help="deliveries carry both signatures this long, 0-168 "
                        "(default 24; 0 after a leak)")  # fmt: skip
    tenants.set_defaults(handler=cmd_tenants)


def cmd_tenants(args: argparse.Namespace) -> int:
    from api_contracts.errors import BackdropError
    from jobstore.tenants import Limits, Tenants

    registry = Tenants(Redis.from_url(_redis_url()))
    try:
        if args.action == "add":
            limits = Limits(max_open_jobs=args.max_open_jobs,
                            outputs_per_minute=args.outputs_per_minute,
                            uploads_per_hour=args.uploads_per_hour,
                            upload_mb_per_hour=args.upload_mb_per_hour)  # fmt: skip
            issued = registry.add(args.name, limits)
            print(json.dumps({"tenant": args.name, "api_key": issued.api_key.get_secret_value(),
                              "webhook_secret": issued.webhook_secret.get_secret_value(),
                              **limits.model_dump()}))  # fmt: skip
            return 0
        if args.action == "rotate":
            key = registry.new_key(args.name).get_secret_value()
            print(json.dumps({"tenant": args.name, "api_key": key}))
            return 0
        if args.action == "rotate-secret":
            return _rotate_secret(registry, args.name, args.grace_hours)
        if args.action == "revoke":
            registry.revoke(args.name)
            print(f"revoked the key of {args.name}")
            return 0
    except BackdropError as exc:
        print(f"{exc.code}: {exc.message}")
        return 1
    print(f"{'tenant':<20} {'key':<10} {'open jobs':>9} {'outputs/min':>11}  state")
    for t in registry.list():
        state = "revoked" if t.revoked else "active"
        print(f"{t.name:<20} {t.key_hint:<10} {t.limits.max_open_jobs or '-':>9} "
              f"{t.limits.outputs_per_minute or '-':>11}  {state}")  # fmt: skip
    return 0


def _rotate_secret(registry: Any, name: str, grace_hours: float) -> int:
    """A new webhook secret; a grace still running from a rotation before
    ends now (its old secret stops signing), which the output says."""
    import time

    before = registry.get(name)
    running = before is not None and before.previous_until > time.time()
    new = registry.new_webhook_secret(name, grace_hours * 3600)
    print(json.dumps({"tenant": name, "webhook_secret": new.get_secret_value(),
                      "old_secret_signs_for_hours": grace_hours,
                      "ended_an_earlier_grace": running}))  # fmt: skip
    return 0


def cmd_deadletters(args: argparse.Namespace) -> int:
    from worker.service.dead_letters import (
        list_dead_letters,
        purge_dead_letters,
        replay_dead_letters,
    )

    redis = Redis.from_url(_redis_url())
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

    producer = Celery("backdrop-replay", broker=_redis_url(), set_as_current=False)
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
