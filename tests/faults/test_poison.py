"""Poison on real processes: garbage in a queue, hostile task arguments and
corrupt job records. The worker never exits, and every job ends with a code."""

import json
import random
import time
from pathlib import Path

import pytest
from celery import Celery

from api_contracts.models import TERMINAL_STATES, JobRequest, JobState, StyleRef
from api_contracts.names import QUEUE_GPU, TASK_SEGMENT, TASK_STYLIZE
from tests.conftest import PHOTOS, STYLES
from tests.faults.harness import OwnRedis, make_client, workers
from worker.service.dead_letters import DEAD_LETTERS

pytestmark = [pytest.mark.integration, pytest.mark.faults]
FAST_SWEEP = {"BACKDROP_QUEUE__SWEEP_INTERVAL_SECONDS": "1",
              "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "30"}  # fmt: skip
GARBAGE = [b"not json at all {{{", b"[1, 2, 3]", b'"just a string"', b"{}",
           json.dumps({"body": "%%%not base64%%%", "content-encoding": "utf-8",
                       "content-type": "application/json", "headers": {},
                       "properties": {"body_encoding": "base64", "delivery_tag": "x",
                                      "delivery_info": {"exchange": "", "routing_key": "gpu"}}}
                      ).encode()]  # fmt: skip


def _job(client, seed: int, iterations: int = 10) -> str:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))
    options = {"iterations": iterations, "seed": seed}
    return client.submit(JobRequest(photo_key=photo, styles=[style], options=options)).job_id


def test_garbage_in_the_queue_is_dead_lettered_and_the_worker_goes_on(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint) as (worker,):
        client = make_client(own_redis.url, s3_endpoint)
        for body in GARBAGE:
            client.redis.lpush(QUEUE_GPU, body)
        final = client.wait(_job(client, seed=500), timeout=120)
        assert worker.proc.poll() is None, "the worker never exited"
        letters = [json.loads(x) for x in client.redis.lrange(DEAD_LETTERS, 0, -1)]
    assert final.state == JobState.SUCCEEDED, final
    assert len(letters) == len(GARBAGE)
    assert all(entry["queue"] == QUEUE_GPU and entry["reason"] for entry in letters)
    assert "Unrecoverable error" not in worker.log_path.read_text()


def test_hostile_task_arguments_touch_no_record_and_keep_the_logs_small(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint) as (worker,):
        client = make_client(own_redis.url, s3_endpoint)
        job_id = _job(client, seed=501)
        assert client.wait(job_id, timeout=120).state == JobState.SUCCEEDED
        producer = Celery("hostile", broker=own_redis.url, set_as_current=False)
        producer.send_task(TASK_SEGMENT, args=["x" * 10_000_000], queue=QUEUE_GPU)
        producer.send_task(TASK_STYLIZE, args=[job_id, 7], queue=QUEUE_GPU)  # no output 7
        producer.send_task(TASK_STYLIZE, args=[job_id, "0"], queue=QUEUE_GPU)
        deadline = time.monotonic() + 60
        while client.redis.llen(DEAD_LETTERS) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        status = client.status(job_id)
        assert worker.proc.poll() is None
    assert status.state == JobState.SUCCEEDED and status.styles[0].state == JobState.SUCCEEDED
    assert not [k for k in client.redis.keys("backdrop:job:x*")], "no record for a hostile id"
    log = worker.log_path.read_text()
    assert max(len(line) for line in log.splitlines()) < 20_000, "log lines stay bounded"


CORRUPTIONS = [("outputs", "-1"), ("outputs", "abc"), ("s0.progress", "xx"), ("state", None),
               ("state", "WHAT"), ("request", "{not json"), ("plan", "[]")]  # fmt: skip


def _corrupt(redis, job_id: str, field: str, value: str | None) -> None:
    key = f"backdrop:job:{job_id}"
    if value is None:
        redis.hdel(key, field)
    else:
        redis.hset(key, field, value)


def _ends(client, job_id: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.status(job_id)  # only ever a status or a BackdropError
        if status.state in TERMINAL_STATES:
            return status
        time.sleep(0.2)
    raise AssertionError(f"{job_id} did not end: {status}")


def test_corrupt_records_end_failed_with_a_code_and_a_lost_job_beside_them_succeeds(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    env = {**FAST_SWEEP, "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "3"}
    with workers(tmp_path, own_redis.url, s3_endpoint, **env) as (_worker,):
        client = make_client(own_redis.url, s3_endpoint)
        jobs = {}
        for n, (field, value) in enumerate(CORRUPTIONS):
            jobs[field, value] = job_id = _job(client, seed=600 + n)
            _corrupt(client.redis, job_id, field, value)
        lost = _job(client, seed=650)
        client.redis.delete(QUEUE_GPU)  # its message is gone; the sweep must restart it
        finals = {what: _ends(client, job_id) for what, job_id in jobs.items()}
        lost_final = client.wait(lost, timeout=120)
    for what, final in finals.items():
        assert final.state == JobState.FAILED and final.error.code == "INTERNAL", (what, final)
    assert lost_final.state == JobState.SUCCEEDED, lost_final


def test_randomly_corrupted_records_all_end_in_a_final_state(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    """A property over the record: any field of any job, corrupted at any
    moment, still ends in a final state, and a failure carries a code."""
    rng = random.Random(7)
    fields = ["state", "outputs", "request", "plan", "s0.state", "s0.progress", "updated",
              "c.segment", "s0.error_code", "ttl", "done"]  # fmt: skip
    values = [None, "", "-1", "abc", "{", "9" * 30, "RUNNING", "SUCCEEDED"]
    with workers(tmp_path, own_redis.url, s3_endpoint, **FAST_SWEEP) as (worker,):
        client = make_client(own_redis.url, s3_endpoint)
        jobs = [_job(client, seed=700 + n) for n in range(8)]
        for job_id in jobs:
            time.sleep(rng.uniform(0, 1.5))
            _corrupt(client.redis, job_id, rng.choice(fields), rng.choice(values))
        finals = [_ends(client, job_id, timeout=120) for job_id in jobs]
        assert worker.proc.poll() is None
    for final in finals:
        assert final.state in TERMINAL_STATES
        assert final.state == JobState.SUCCEEDED or final.error is not None, final


def test_a_record_deleted_mid_run_stays_gone_and_no_job_key_lives_forever(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint) as (_worker,):
        client = make_client(own_redis.url, s3_endpoint)
        job_id = _job(client, seed=660, iterations=400)
        key = f"backdrop:job:{job_id}"
        deadline = time.monotonic() + 90
        while int(client.redis.hget(key, "s0.progress") or 0) < 5:
            assert time.monotonic() < deadline, "never got going"
            time.sleep(0.1)
        client.redis.delete(key)
        time.sleep(8)  # progress ticks, the end of the optimization, composite, finalize
        keys = list(client.redis.scan_iter("backdrop:*"))
        immortal = [k for k in keys if k.startswith(b"backdrop:job:") and client.redis.ttl(k) < 0]
        assert not client.redis.exists(key), "no write brought the record back"
    assert not immortal, immortal
