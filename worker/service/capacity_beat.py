"""Each worker node's share of the fleet: the parent registers the processes it
serves GPU job steps with (jobstore.capacity) on every beat, publishes the
windows that follow from the live total, and unregisters on a clean shutdown,
so a node removed by a scale-down gives its share back at once and one that
dies gives it back when its key expires (three beats)."""

import logging
import threading
from typing import Any

from celery.signals import worker_shutdown

from api_contracts.names import QUEUE_GPU, QUEUE_GPU_BATCH
from jobstore.capacity import WindowRule, follow_capacity, register, unregister
from worker.runtime.settings import QueueSettings, get_settings
from worker.service.context import make_services

log = logging.getLogger(__name__)
_stop = threading.Event()
_node: list[str] = []  # the node this parent registered, for the shutdown hook


def rules(q: QueueSettings) -> tuple[WindowRule, WindowRule]:
    return (WindowRule(q.window_per_process, q.interactive_window, q.interactive_window_max),
            WindowRule(q.window_per_process, q.batch_window, q.batch_window_max))  # fmt: skip


def gpu_processes(consumer: Any) -> int:
    """The processes of this worker that take job steps: its pool's size when
    it consumes a GPU queue (a CPU-only worker adds no GPU capacity)."""
    queues = set(consumer.app.amqp.queues.consume_from or consumer.app.amqp.queues)
    if not queues & {QUEUE_GPU, QUEUE_GPU_BATCH}:
        return 0
    return int(getattr(consumer.controller, "concurrency", 1) or 1)


def beat_forever(node: str, processes: int) -> None:
    settings = get_settings()
    q, redis = settings.queue, make_services(settings).redis
    _node.append(node)
    while True:
        try:
            if processes:
                register(redis, node, processes, 3 * q.capacity_beat_seconds)
            follow_capacity(redis, *rules(q))
        except Exception as exc:  # Redis down: the last windows stand
            log.warning("capacity beat skipped: %.300s", exc)
        if _stop.wait(q.capacity_beat_seconds):
            return


@worker_shutdown.connect
def _leave(**_: Any) -> None:
    _stop.set()
    if not _node:
        return
    try:
        settings = get_settings()
        redis = make_services(settings).redis
        unregister(redis, _node[0])
        follow_capacity(redis, *rules(settings.queue))
    except Exception as exc:
        log.warning("capacity not given back (it expires by itself): %.300s", exc)
