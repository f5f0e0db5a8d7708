"""The gateway's Prometheus metrics on /metrics: requests by route and status,
their latency, and the depth of every queue (Celery's, and the jobs held in
the fair queues), read from Redis when Prometheus scrapes."""

import hmac
import time
from collections.abc import Callable, Iterator

from fastapi import FastAPI, Header, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import SecretStr
from redis import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.names import QUEUE_CPU, QUEUE_GPU, QUEUE_GPU_BATCH, QUEUE_NOTIFY
from jobstore.admission import PRIORITIES, held_total, inflight_key

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
                                   "Jobs sent to the workers and not past their GPU steps,"
                                   " by priority",
                                   labels=["priority"])  # fmt: skip
        for priority in PRIORITIES:
            held.add_metric([priority], held_total(redis, priority))
            flight.add_metric([priority], int(redis.scard(inflight_key(priority))))
        yield held
        yield flight


# Every label comes from a closed set: a client picks the method and the path,
# and a label value per made-up method or path grew /metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def labels(scope: Scope, status: int) -> tuple[str, str, str]:
    """(method, route, status): a known method or "other"; the matched route's
    template or "unmatched"; the status the app sent (the app's own, bounded)."""
    method = scope["method"] if scope["method"] in METHODS else "other"
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    return method, route, str(status) if 100 <= status < 600 else "other"


def install(app: FastAPI, redis: Callable[[], Redis], token: SecretStr | None = None) -> None:
    """Count every request under its route's template (not the raw path: job
    ids would make a label per job) and serve /metrics. The registry is the
    app's own: two apps in one process (tests, the OpenAPI export) never clash.
    With a token, /metrics answers only `Authorization: Bearer <token>`, and
    404 to anyone else (docker-compose publishes the API's port whole)."""
    registry = CollectorRegistry()
    requests = Counter("backdrop_http_requests_total", "Gateway requests by route and status",
                       ["method", "route", "status"], registry=registry)  # fmt: skip
    latency = Histogram("backdrop_http_request_seconds", "Gateway request latency by route",
                        ["method", "route"], buckets=LATENCY_BUCKETS,
                        registry=registry)  # fmt: skip
    registry.register(QueueDepth(redis))

    def observe(scope: Scope, status: int, seconds: float) -> None:
        method, route, code = labels(scope, status)
        requests.labels(method, route, code).inc()
        latency.labels(method, route).observe(seconds)

    app.add_middleware(Observed, observe=observe)

    @app.get("/metrics", include_in_schema=False)
    def metrics(authorization: str | None = Header(None)) -> Response:
        if token is not None and not _bearer_is(authorization, token):
            raise BackdropError(ErrorCode.NOT_FOUND, "no such address")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _bearer_is(authorization: str | None, token: SecretStr) -> bool:
    expected = f"Bearer {token.get_secret_value()}".encode()
    return hmac.compare_digest((authorization or "").encode(), expected)


class Observed:
    """Pure ASGI (no body buffering, streams pass through): times each HTTP
    request and reports its status, 500 when the app raised before answering."""

    def __init__(self, app: ASGIApp, observe: Callable[[Scope, int, float], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.observe(scope, status, time.perf_counter() - start)
