"""Liveness by consumption, a task that keeps killing its worker, and Redis
restarted again and again under a backlog: real processes throughout."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api_contracts.models import JobRequest, JobState, StyleRef
from api_contracts.names import QUEUE_GPU
from tests.conftest import PHOTOS, REPO, STYLES
from tests.faults.harness import OwnRedis, make_client, workers
from tests.services import service_env
from worker.service.dead_letters import DEAD_LETTERS

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _job(client, seed: int, iterations: int = 10) -> str:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))
    options = {"iterations": iterations, "seed": seed}
    return client.submit(JobRequest(photo_key=photo, styles=[style], options=options)).job_id


def _check(redis_url: str, s3: str) -> subprocess.CompletedProcess[str]:
    env = service_env(s3, BACKDROP_REDIS__URL=redis_url,
                      BACKDROP_QUEUE__STALLED_AFTER_SECONDS="2")  # fmt: skip
    return subprocess.run([sys.executable, "-m", "worker.cli", "worker", "--check"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip


def test_check_fails_when_the_worker_stops_consuming_and_passes_when_it_resumes(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint) as (worker,):
        client = make_client(own_redis.url, s3_endpoint)
        assert client.wait(_job(client, seed=800), 120).state == JobState.SUCCEEDED
        assert _check(own_redis.url, s3_endpoint).returncode == 0, "idle and consuming"
        os.kill(worker.proc.pid, signal.SIGSTOP)  # the consumer is alive but takes nothing
        try:
            # The first message answers the read the consumer had already
            # issued; the second waits in the list.
            job_id, other = _job(client, seed=801), _job(client, seed=803)
            time.sleep(3)
            stalled = _check(own_redis.url, s3_endpoint)
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        final, final_other = client.wait(job_id, 120), client.wait(other, 120)
        resumed = _check(own_redis.url, s3_endpoint)
    assert stalled.returncode == 1 and "stopped consuming" in stalled.stdout, stalled.stdout
    assert final.state == final_other.state == JobState.SUCCEEDED
    assert resumed.returncode == 0, resumed.stdout


def test_a_task_that_kills_its_worker_is_dead_lettered_after_max_deliveries(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint, BACKDROP_QUEUE__MAX_DELIVERIES="2") as (
        worker,
    ):
        client = make_client(own_redis.url, s3_endpoint)
        job_id = _job(client, seed=802, iterations=2000)
        killed: set[int] = set()
        deadline = time.monotonic() + 240
        while not client.status(job_id).done and time.monotonic() < deadline:
            where = client.redis.hget(f"backdrop:job:{job_id}", "s0.worker")
            pid = int(where.decode().rsplit(":", 1)[1]) if where else 0
            if pid and pid not in killed:
                time.sleep(0.5)  # inside the optimization: an out-of-memory kill
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.1)
        final = client.status(job_id)
        letters = client.redis.lrange(DEAD_LETTERS, 0, -1)
        assert worker.proc.poll() is None, "the worker itself lives on"
    assert len(killed) == 2, killed
    assert final.state == JobState.FAILED and final.styles[0].error.code == "INTERNAL", final
    assert "stopped" in final.styles[0].error.message
    assert len(letters) == 1 and b"backdrop.stylize" in letters[0]


def test_redis_restarted_three_times_under_a_50_job_backlog_loses_no_job(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    sweep = {"BACKDROP_QUEUE__SWEEP_INTERVAL_SECONDS": "1",
             "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "10"}  # fmt: skip
    with workers(tmp_path, own_redis.url, s3_endpoint, **sweep) as (_worker,):
        client = make_client(own_redis.url, s3_endpoint)
        # A message taken while the child still loads the models, then orphaned
        # by a restart that also fails kombu's give-back, is given back by the
        # sweep (worker.service.orphans), not after the 2 h visibility timeout.
        jobs = [_job(client, seed=900 + n, iterations=3) for n in range(50)]
        for _ in range(3):
            time.sleep(4)
            own_redis.restart(down_seconds=2)
        finals = [client.wait(job_id, timeout=400) for job_id in jobs]
        backlog = client.redis.llen(QUEUE_GPU)
    assert all(f.state == JobState.SUCCEEDED for f in finals), [
        (f.job_id, f.state, f.error) for f in finals if f.state != JobState.SUCCEEDED
    ]
    assert backlog == 0
