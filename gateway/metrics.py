"""The gateway's Prometheus metrics on /metrics: requests by route and status,
their latency, and the depth of every queue (Celery's, and the jobs held in
the fair queues), read from Redis when Prometheus scrapes."""

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis

from api_contracts.names import FAIR_PREFIX, QUEUE_CPU, QUEUE_GPU, QUEUE_GPU_BATCH, QUEUE_NOTIFY
from jobstore.admission import PRIORITIES, inflight_key

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
QUEUES = (QUEUE_GPU, QUEUE_GPU_BATCH, QUEUE_CPU, QUEUE_NOTIFY)


class QueueDepth(Collector):
    def __init__(self, redis: Callable[[], Redis]) -> None:
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        redis = self.redis()
        depth = GaugeMetricFamily("backdrop_queue_depth", "Messages waiting in each Celery queue",
                                  labels=["queue"])  # fmt: skip
        for queue in QUEUES:  # kombu keeps priority levels in suffixed lists
            lists = [queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))]
            depth.add_metric([queue], sum(int(redis.llen(k)) for k in lists))
        yield depth
        held = GaugeMetricFamily("backdrop_held_jobs",
                                 "Jobs waiting for their tenant's turn, by priority",
                                 labels=["priority"])  # fmt: skip
        flight = GaugeMetricFamily("backdrop_inflight_jobs",
                                   "Jobs sent to the workers and not ended, by priority",
                                   labels=["priority"])  # fmt: skip
        for priority in PRIORITIES:
            pending = redis.scan_iter(match=f"{FAIR_PREFIX}{priority}:pending:*", _type="LIST")
            held.add_metric([priority], sum(int(redis.llen(k)) for k in pending))
            flight.add_metric([priority], int(redis.scard(inflight_key(priority))))
        yield held
        yield flight


def install(app: FastAPI, redis: Callable[[], Redis]) -> None:
    """Count every request under its route's template (not the raw path: job
    ids would make a label per job) and serve /metrics. The registry is the
    app's own: two apps in one process (tests, the OpenAPI export) never clash."""
    registry = CollectorRegistry()
    requests = Counter("backdrop_http_requests_total", "Gateway requests by route and status",
                       ["method", "route", "status"], registry=registry)  # fmt: skip
    latency = Histogram("backdrop_http_request_seconds", "Gateway request latency by route",
                        ["method", "route"], buckets=LATENCY_BUCKETS,
                        registry=registry)  # fmt: skip
    registry.register(QueueDepth(redis))

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - start)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
