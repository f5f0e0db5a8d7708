"""The fleet's live capacity, and the fair queues' windows that follow it.

Each worker node registers how many processes it runs for job steps (those
consuming the GPU queues) under a key that expires unless its heartbeat renews
it, so a node that dies leaves the sum by itself. The window of each priority
is about two jobs per live process (one running, one waiting behind it so no
process idles between jobs), with the settings as floor and ceiling: a fleet
of 50 GPUs runs ~100 jobs at once, not the 8 a fixed window allowed.
"""

import math
from dataclasses import dataclass

from redis import Redis

from jobstore.admission import publish_windows
from jobstore.redis_keys import CAPACITY_PREFIX
from jobstore.redis_text import text


@dataclass(frozen=True)
class WindowRule:
    per_process: float  # jobs in flight per live process
    floor: int  # never below (a fleet still starting, or one that just lost a node)
    ceiling: int  # never above (Redis, S3 and the sweep sized for it)

    def window(self, processes: int) -> int:
        return max(self.floor, min(self.ceiling, math.ceil(self.per_process * processes)))


def register(redis: Redis, node: str, processes: int, ttl_seconds: float) -> None:
    """This node serves `processes` for the next `ttl_seconds` (renew before)."""
    redis.set(CAPACITY_PREFIX + node, processes, px=max(1, int(ttl_seconds * 1000)))


def unregister(redis: Redis, node: str) -> None:
    """A node leaving on purpose (scale-down): its share goes at once."""
    redis.delete(CAPACITY_PREFIX + node)


def live_processes(redis: Redis) -> int:
    keys = list(redis.scan_iter(match=CAPACITY_PREFIX + "*", count=1000))
    values = redis.mget(keys) if keys else []
    return sum(int(text(v)) for v in values if v is not None and text(v).isdigit())


def follow_capacity(redis: Redis, interactive: WindowRule, batch: WindowRule) -> tuple[int, int]:
    """Publish both windows for the live capacity (every node does it on its
    heartbeat: they all compute the same numbers); returns them."""
    processes = live_processes(redis)
    windows = interactive.window(processes), batch.window(processes)
    publish_windows(redis, *windows)
    return windows
