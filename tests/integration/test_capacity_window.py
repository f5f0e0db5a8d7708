"""The fair queues' window follows the fleet (real workers, Redis, S3 server):
one worker, then a second, and more jobs are in flight; the second killed,
the window shrinks back when its heartbeat expires, and every job still ends
SUCCEEDED."""

import os
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from api_contracts.models import JobRequest, JobState, StyleRef
from jobstore.admission import inflight_key
from jobstore.capacity import live_processes
from jobstore.redis_keys import SERVICE_KEY
from tests.conftest import PHOTOS, STYLES
from tests.faults.harness import make_client
from tests.services import WorkerProcess, service_env
from worker.service.fault_points import PAUSE_LIMIT_SECONDS, pause_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CAPACITY_REDIS = "redis://127.0.0.1:6379/1"  # its own database: flushed here
ENV = {"BACKDROP_QUEUE__INTERACTIVE_WINDOW": "1", "BACKDROP_QUEUE__WINDOW_PER_PROCESS": "1",
       "BACKDROP_QUEUE__CAPACITY_BEAT_SECONDS": "0.3", "BACKDROP_STYLE__ITERATIONS": "30",
       "BACKDROP_QUEUE__SWEEP_INTERVAL_SECONDS": "2", "BACKDROP_QUEUE__VISIBILITY_TIMEOUT": "60",
       "BACKDROP_QUEUE__SOFT_TIME_LIMIT": "40", "BACKDROP_QUEUE__HARD_TIME_LIMIT": "50",
       "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "15"}  # fmt: skip


def _until(what, timeout: float = 60.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, f"not reached in {timeout} s"
        time.sleep(every)
    return value


def _most_in_flight(redis: Redis, seconds: float) -> int:
    most, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        most = max(most, int(redis.scard(inflight_key("interactive"))))
        time.sleep(0.05)
    return most


def _window(redis: Redis) -> int:
    return int(redis.hget(SERVICE_KEY, "interactive_window") or 0)


def test_the_window_grows_with_a_second_worker_and_shrinks_when_it_dies(
    tmp_path: Path, s3_endpoint: str
) -> None:
    redis = Redis.from_url(CAPACITY_REDIS)
    redis.flushdb()
    env = service_env(s3_endpoint, BACKDROP_REDIS__URL=CAPACITY_REDIS, **ENV)
    first = WorkerProcess(env, tmp_path / "first.log", concurrency=1)
    second = None
    try:
        first.wait_ready()
        _until(lambda: live_processes(redis) == 1 and _window(redis) == 1)
        client = make_client(CAPACITY_REDIS, s3_endpoint)
        photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
        style = StyleRef(key=client.upload((STYLES / "hubble.jpg").read_bytes()))
        jobs = [client.submit(JobRequest(photo_key=photo, styles=[style],
                                         options={"seed": 90_000 + i})).job_id
                for i in range(8)]  # fmt: skip
        assert _most_in_flight(redis, 3.0) == 1, "one process: one job at a time"
        second = WorkerProcess(env, tmp_path / "second.log", concurrency=1)
        second.wait_ready()
        _until(lambda: live_processes(redis) == 2 and _window(redis) == 2)
        assert _until(lambda: _most_in_flight(redis, 0.5) == 2, timeout=30)
        # No goodbye: its capacity key must expire, and its unacknowledged step
        # comes back after the visibility timeout (60 s here).
        os.killpg(second.proc.pid, signal.SIGKILL)
        _until(lambda: live_processes(redis) == 1 and _window(redis) == 1, timeout=10)
        finals = [client.wait(job_id, timeout=300, max_interval=0.5) for job_id in jobs]
        assert [f.state for f in finals] == [JobState.SUCCEEDED] * len(jobs), finals
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_job_whose_composite_is_held_leaves_the_window_to_the_next(
    tmp_path: Path, s3_endpoint: str
) -> None:
    """Window 1, two processes: the first job's composite is held (as a slow
    full-size one would be) and the second job still runs to its end."""
    redis = Redis.from_url(CAPACITY_REDIS)
    redis.flushdb()
    env = service_env(s3_endpoint, BACKDROP_REDIS__URL=CAPACITY_REDIS,
                      **{**ENV, "BACKDROP_QUEUE__INTERACTIVE_WINDOW_MAX": "1",
                         "BACKDROP_QUEUE__PAUSE_AT": '["composited"]',
                         # The hold (up to 60 s) must end by "go", not by a time limit.
                         "BACKDROP_QUEUE__SOFT_TIME_LIMIT": "100",
                         "BACKDROP_QUEUE__HARD_TIME_LIMIT": "110",
                         "BACKDROP_QUEUE__VISIBILITY_TIMEOUT": "150",
                         "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "150"})  # fmt: skip
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=2)
    try:
        worker.wait_ready()
        _until(lambda: live_processes(redis) == 2 and _window(redis) == 1)
        client = make_client(CAPACITY_REDIS, s3_endpoint)
        photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
        style = StyleRef(key=client.upload((STYLES / "hubble.jpg").read_bytes()))
        held, after = (client.submit(JobRequest(photo_key=photo, styles=[style],
                                                options={"seed": 91_000 + i})).job_id
                       for i in range(2))  # fmt: skip
        redis.set(pause_key("composited", after), "go", ex=120)  # only the first is held
        pause = pause_key("composited", held)
        _until(lambda: redis.get(pause) == b"reached", timeout=120)
        # Before the hold could end by itself (PAUSE_LIMIT_SECONDS).
        second = client.wait(after, timeout=PAUSE_LIMIT_SECONDS - 10, max_interval=0.5)
        assert second.state == JobState.SUCCEEDED, second
        assert client.status(held).state == JobState.RUNNING, "the first is still compositing"
        redis.set(pause, "go", ex=120)
        first = client.wait(held, timeout=120, max_interval=0.5)
        assert first.state == JobState.SUCCEEDED, first
        assert redis.scard(inflight_key("interactive")) == 0
    finally:
        worker.stop()
