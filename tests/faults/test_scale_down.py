"""Scale-down loses nothing: a worker told to stop (SIGTERM to its main
process, as Kubernetes does when it removes a pod) in the middle of a load
lets its step run for the soft-shutdown time, then hands it back; the other
worker finishes every job, and every job ends exactly once."""

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from api_contracts.models import JobState
from jobstore.redis_keys import EVENTS_STREAM
from tests.faults.harness import OwnRedis, make_client, workers
from tests.faults.test_faults import _submit

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _running(client, job_ids: list[str]) -> int:  # type: ignore[no-untyped-def]
    return sum(client.status(j).styles[0].progress >= 5 for j in job_ids)


def test_sigterm_mid_load_hands_the_step_back_and_every_job_ends_once(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    env = {"BACKDROP_QUEUE__SOFT_SHUTDOWN_SECONDS": "1"}
    with workers(tmp_path, own_redis.url, s3_endpoint, count=2, **env) as (_, leaving):
        client = make_client(own_redis.url, s3_endpoint)
        jobs = [_submit(client, iterations=50, seed=120 + i) for i in range(5)]
        deadline = time.monotonic() + 120
        while _running(client, jobs) < 2:  # both workers in the middle of a step
            assert time.monotonic() < deadline, "two steps never ran at once"
            time.sleep(0.05)
        started = time.monotonic()
        os.kill(leaving.proc.pid, signal.SIGTERM)
        leaving.proc.wait(timeout=60)
        gone_after = time.monotonic() - started
        finals = [client.wait(job_id, timeout=300, max_interval=0.5) for job_id in jobs]
    assert gone_after < 30, f"the worker took {gone_after:.0f} s to leave (soft shutdown 1 s)"
    assert [f.state for f in finals] == [JobState.SUCCEEDED] * len(jobs), finals
    assert all(f.counters.get("composite") == 1 for f in finals), [f.counters for f in finals]
    ends = Counter(fields[b"job_id"].decode() for _, fields in client.redis.xrange(EVENTS_STREAM))
    assert all(ends[job_id] == 1 for job_id in jobs), ends
    log = leaving.log_path.read_text()
    assert "Soft Shutdown" in log, "the leaving worker waited, then handed its step back"
