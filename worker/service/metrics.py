"""Prometheus metrics of a worker: jobs by final state and error code, stage
and end-to-end durations, webhook deliveries.

Multiprocess mode: `backdrop worker` sets PROMETHEUS_MULTIPROC_DIR before
anything imports prometheus_client, so every forked child (where the tasks
run) writes its samples to files there, and the parent serves the sum of all
of them on `metrics.port`. Started as `celery -A …` instead, set that
variable to an empty directory yourself, or only the parent's samples show.
"""

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client import start_http_server as _start_http_server

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: a segmentation at 256 px is ~0.1 s on a GPU, a 2000-iteration job
# at 1024 px some minutes on a CPU.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

JOBS_FINISHED = Counter(
    "backdrop_jobs_finished_total", "Jobs that ended, by final state and error code",
    ["state", "code"],
)  # fmt: skip
STAGE_SECONDS = Histogram(
    "backdrop_stage_seconds",
    "Duration of each stage (segment, preview, stylize, composite) and of whole jobs "
    "(end_to_end: submit to end)", ["stage"], buckets=BUCKETS,
)  # fmt: skip
WEBHOOK_DELIVERIES = Counter("backdrop_webhook_deliveries_total",
                             "Webhook attempts by outcome (delivered, http_error, timeout, "
                             "connect_error, refused)",
                             ["outcome"])  # fmt: skip


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Observe a stage's duration, also when it fails (a failure takes time too)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage).observe(time.perf_counter() - start)


def job_ended(state: str, code: str | None, created: Any, finished: Any) -> None:
    JOBS_FINISHED.labels(state, code or "").inc()
    if created is not None and finished is not None:
        STAGE_SECONDS.labels("end_to_end").observe((finished - created).total_seconds())


def serve(port: int) -> bool:
    """In the worker's parent: the children's samples on `port` (0: off).
    A port in use is logged, not fatal: the worker's work matters more."""
    if not port or not os.environ.get(MULTIPROC_ENV):
        return False
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    try:
        _start_http_server(port, registry=registry)
    except OSError as exc:
        log.error("metrics not served on port %d: %s", port, exc)
        return False
    return True


def child_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
