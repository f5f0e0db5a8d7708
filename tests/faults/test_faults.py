"""Faults on real processes: killed workers, a restarted Redis, an S3 outage,
a task past its time limit, a graceful shutdown. No job may be lost."""

import os
import signal
import time
from pathlib import Path

import pytest
from minio import Minio

from api_contracts.models import JobRequest, JobState, StyleRef
from jobstore.records import JobRecord
from tests.conftest import PHOTOS, STYLES
from tests.faults.harness import OwnRedis, TcpProxy, make_client, workers
from worker.service.fault_points import pause_key

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _submit(client, iterations: int, seed: int, styles: int = 1) -> str:
    """Each scenario uses its own seed: outputs are cached by key in the shared
    S3 server, and a cached image would skip the very step a test breaks."""
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    refs = [StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))] * styles
    options = {"iterations": iterations, "seed": seed}
    return client.submit(JobRequest(photo_key=photo, styles=refs, options=options)).job_id


def _wait_progress(client, job_id: str, at_least: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while client.status(job_id).styles[0].progress < at_least:
        assert time.monotonic() < deadline, f"no progress {at_least}% on {job_id}"
        time.sleep(0.05)


def _wait_watching(client, job_id: str, timeout: float) -> tuple[object, list[int]]:
    seen: list[int] = []
    final = client.wait(job_id, timeout=timeout, max_interval=0.2,
                        on_status=lambda s: seen.append(s.styles[0].progress))  # fmt: skip
    return final, seen


def test_worker_child_killed_mid_optimization_job_finishes_elsewhere(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint, count=2):
        client = make_client(own_redis.url, s3_endpoint)
        job_id = _submit(client, iterations=150, seed=101)
        _wait_progress(client, job_id, 10)
        where = JobRecord(client.redis, job_id).redis.hget(f"backdrop:job:{job_id}", "s0.worker")
        os.kill(int(where.decode().rsplit(":", 1)[1]), signal.SIGKILL)
        final, seen = _wait_watching(client, job_id, timeout=180)
    assert final.state == JobState.SUCCEEDED, final
    assert seen == sorted(seen), "progress never went backwards"
    assert final.counters["stylize"] == 1 and final.counters["composite"] == 1, final.counters


def test_graceful_shutdown_finishes_the_running_task_and_loses_nothing(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    client = make_client(own_redis.url, s3_endpoint)
    # Celery's soft shutdown waits all of this once a step is running: long
    # enough for the step, short enough for the test.
    patient = {"BACKDROP_QUEUE__SOFT_SHUTDOWN_SECONDS": "15"}
    with workers(tmp_path / "a", own_redis.url, s3_endpoint, **patient) as (first,):
        job_id = _submit(client, iterations=60, seed=102)
        _wait_progress(client, job_id, 10)
        os.kill(first.proc.pid, signal.SIGTERM)  # a step shorter than the soft shutdown
        first.proc.wait(timeout=120)  # (1: Celery's cold shutdown after its soft wait)
    assert client.status(job_id).counters.get("stylize") == 1, "the running task finished"
    with workers(tmp_path / "b", own_redis.url, s3_endpoint):
        final = client.wait(job_id, timeout=120)
    assert final.state == JobState.SUCCEEDED


def test_task_past_its_soft_time_limit_fails_with_timeout(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    limits = {"BACKDROP_QUEUE__SOFT_TIME_LIMIT": "4", "BACKDROP_QUEUE__HARD_TIME_LIMIT": "30",
              "TMPDIR": str(scratch)}  # fmt: skip
    with workers(tmp_path, own_redis.url, s3_endpoint, **limits):
        client = make_client(own_redis.url, s3_endpoint)
        final = client.wait(_submit(client, iterations=1900, seed=103), timeout=120)
        assert final.state == JobState.FAILED and final.error.code == "TIMEOUT"
        assert final.styles[0].error.code == "TIMEOUT"
        photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
        after = client.wait(client.submit(JobRequest(photo_key=photo, mode="portrait")).job_id, 60)
        assert after.state == JobState.SUCCEEDED, "the same worker serves the next job"
    # Backdrop writes no temporary files (images stay in memory). Libraries
    # leave markers once per process, not per job: TensorFlow's autograph keeps
    # the source of traced functions, onnxruntime a session id file (.ses).
    library = ("__autograph_generated", ".ses")
    left = [p.name for p in scratch.iterdir() if not p.name.startswith(library)]
    assert not left, "no temporary files left behind"


def _hold_at(client, point: str, job_id: str, timeout: float = 90) -> None:
    """Wait until the job's step holds at the fault point (worker.service.fault_points)."""
    key = pause_key(point, job_id)
    deadline = time.monotonic() + timeout
    while client.redis.get(key) != b"reached":
        assert time.monotonic() < deadline, f"{job_id} never reached {point}"
        time.sleep(0.05)


def _release(client, point: str, job_id: str) -> None:
    client.redis.set(pause_key(point, job_id), "go", ex=120)


def test_s3_down_for_seconds_is_retried_and_succeeds(
    tmp_path: Path, own_redis: OwnRedis, proxy: TcpProxy
) -> None:
    s3 = f"127.0.0.1:{proxy.port}"
    env = {"BACKDROP_QUEUE__STORAGE_RETRIES": "6", "BACKDROP_QUEUE__PAUSE_AT": '["stylized"]'}
    with workers(tmp_path, own_redis.url, s3, **env) as (worker,):
        client = make_client(own_redis.url, s3)
        job_id = _submit(client, iterations=20, seed=104)
        _hold_at(client, "stylized", job_id)  # optimized, about to store the image
        assert client.status(job_id).styles[0].state == JobState.RUNNING, "cut while it runs"
        proxy.down()
        _release(client, "stylized", job_id)
        time.sleep(2.5)
        proxy.up()
        final = client.wait(job_id, timeout=120)
        log = worker.log_path.read_text()
    assert final.state == JobState.SUCCEEDED, final
    assert "storage unavailable, retry" in log, "the outage really hit a storage call"


def _results(s3: Minio) -> set[str]:
    """Objects under result keys (previews and intermediates live beside them)."""
    listed = s3.list_objects("backdrop-results", prefix="results/", recursive=True)
    return {o.object_name or "" for o in listed}


def test_s3_down_for_long_fails_with_storage_unavailable_and_writes_nothing(
    tmp_path: Path, own_redis: OwnRedis, proxy: TcpProxy, s3_endpoint: str
) -> None:
    s3 = f"127.0.0.1:{proxy.port}"
    direct = Minio(s3_endpoint, access_key="x", secret_key="y", secure=False)
    env = {"BACKDROP_QUEUE__STORAGE_RETRIES": "3", "BACKDROP_QUEUE__PAUSE_AT": '["composited"]'}
    with workers(tmp_path, own_redis.url, s3, **env) as (_worker,):
        client = make_client(own_redis.url, s3)
        before = _results(direct)
        job_id = _submit(client, iterations=20, seed=77)
        _hold_at(client, "composited", job_id)  # the result is built, about to be stored
        proxy.down()
        _release(client, "composited", job_id)
        try:
            final = client.wait(job_id, timeout=120)
        finally:
            proxy.up()
    assert final.state == JobState.FAILED and final.error.code == "STORAGE_UNAVAILABLE", final
    assert str(proxy.port) not in final.error.message, "the store's address stays inside"
    after = _results(direct)
    assert after == before, "no object, whole or partial, under a result key"
    assert final.styles[0].result_key is None


def test_redis_restart_loses_no_job(tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str) -> None:
    sweep = {"BACKDROP_QUEUE__SWEEP_INTERVAL_SECONDS": "1",
             "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "8"}  # fmt: skip
    with workers(tmp_path, own_redis.url, s3_endpoint, **sweep) as (worker,):
        client = make_client(own_redis.url, s3_endpoint)
        jobs = [_submit(client, iterations=80, seed=200 + i) for i in range(4)]
        _wait_progress(client, jobs[0], 10)
        own_redis.restart(down_seconds=3)
        finals = [client.wait(job_id, timeout=150) for job_id in jobs]
        log = worker.log_path.read_text()
    lost = [f.job_id for f in finals if f.state not in (JobState.SUCCEEDED, JobState.FAILED)]
    assert not lost
    assert all(f.state == JobState.SUCCEEDED or f.error for f in finals)
    assert sum(f.state == JobState.SUCCEEDED for f in finals) >= 3, [
        (f.state, f.error) for f in finals
    ]
    assert "connection" in log.lower(), "the worker really lost Redis"
