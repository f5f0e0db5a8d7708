"""A tenant whose webhook receiver hangs slows no one: deliveries never hold a
worker's task slot. Compose's layout for CPU work (one worker, concurrency 2,
every queue it serves sharing those two processes), real Redis, a real
`backdrop worker`, a receiver that accepts TCP and never answers."""

import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from redis import Redis

from api_contracts.models import JobRequest, JobState
from tests.conftest import PHOTOS
from tests.integration.receivers import HangingReceiver, Receiver
from tests.services import ACCESS, SECRET, WorkerProcess, service_env, tenant_key

pytestmark = pytest.mark.integration
# Its own database (flushed) and worker: the session's worker must not take these jobs.
ISOLATION_REDIS = os.environ.get("BACKDROP_TEST_WEBHOOK_REDIS", "redis://127.0.0.1:6379/9")
HANG_SECONDS = 10  # each attempt at the hanging receiver waits this long
A_JOBS = 6


@pytest.fixture(scope="module")
def stack(s3_endpoint: str, tmp_path_factory) -> Iterator[dict[str, Any]]:
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig

    redis = Redis.from_url(ISOLATION_REDIS)
    redis.flushdb()
    env = service_env(s3_endpoint, BACKDROP_REDIS__URL=ISOLATION_REDIS,
                      BACKDROP_WEBHOOKS__TIMEOUT_SECONDS=str(HANG_SECONDS),
                      BACKDROP_WEBHOOKS__MAX_ATTEMPTS="2", BACKDROP_WEBHOOKS__CONCURRENCY="4",
                      BACKDROP_WEBHOOKS__PER_TENANT="2")  # fmt: skip
    worker = WorkerProcess(env, tmp_path_factory.mktemp("isolation") / "worker.log", concurrency=2)

    def client(tenant: str) -> Any:
        config = TrustedClientConfig(redis_url=ISOLATION_REDIS, s3_endpoint=s3_endpoint,
                                     access_key=ACCESS, secret_key=SECRET,
                                     api_key=tenant_key(redis, tenant))  # fmt: skip
        return TrustedClient(config)

    try:
        worker.wait_ready()
        yield {"a": client("hangs-a"), "b": client("bystander-b"), "log": worker.log_path}
    finally:
        worker.stop()
        redis.flushdb()


def _submit(client: Any, photo: str, url: str | None) -> str:
    request = JobRequest(photo_key=photo, mode="portrait", styles=[], callback_url=url)
    return str(client.submit(request).job_id)


def _end_to_end(client: Any, job_id: str) -> tuple[float, datetime]:
    """Submit to end, as the job's record has it; and when it ended."""
    final = client.wait(job_id, 120, max_interval=0.2)
    assert final.state == JobState.SUCCEEDED, final.error
    return (final.finished_at - final.created_at).total_seconds(), final.finished_at


def _b_after_a_batch(stack: dict[str, Any], a_url: str | None, b_url: str) -> tuple[float, str]:
    """Tenant A's jobs run and end, then tenant B's job: B's end-to-end seconds."""
    a, b = stack["a"], stack["b"]
    photo_a = a.upload((PHOTOS / "grace_hopper.png").read_bytes())
    # A new upload for each of B's jobs (bytes past the PNG's end, which
    # decoders ignore): B's job does its work, no result is reused.
    photo_b = b.upload((PHOTOS / "grace_hopper.png").read_bytes() + os.urandom(8))
    for job_id in [_submit(a, photo_a, a_url) for _ in range(A_JOBS)]:
        _end_to_end(a, job_id)
    return _submit(b, photo_b, b_url), photo_b


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(condition())


def test_a_tenants_hanging_receiver_leaves_other_jobs_and_deliveries_alone(stack) -> None:
    b = stack["b"]
    quiet, fast, hanging = (
        Receiver(lambda n: (200, 0)),
        Receiver(lambda n: (200, 0)),
        HangingReceiver(),
    )
    try:
        _end_to_end(b, _b_after_a_batch(stack, None, quiet.url)[0])  # warm: both children
        baseline, _ = _end_to_end(b, _b_after_a_batch(stack, None, quiet.url)[0])

        b_job, _ = _b_after_a_batch(stack, hanging.url, fast.url)
        assert _wait_for(lambda: len(hanging.connections) >= 2, HANG_SECONDS), "A's hooks hang"
        with_hang, b_end = _end_to_end(b, b_job)
        _wait_for(lambda: fast.calls, 3 * HANG_SECONDS)
        b_delivered = fast.times[0] - b_end.timestamp() if fast.calls else None
    finally:
        for receiver in (quiet, fast, hanging):
            receiver.close()
    print(f"tenant B's job: {baseline:.2f} s alone, {with_hang:.2f} s beside "
          f"{A_JOBS} hanging deliveries; B's webhook {b_delivered} s after its end")  # fmt: skip
    assert with_hang <= baseline * 1.5 + 2, (baseline, with_hang)
    # A holds at most its share of the delivery threads: B's webhook went out
    # at once, not after one of A's hung attempts gave up.
    assert b_delivered is not None and b_delivered < HANG_SECONDS / 2, b_delivered
