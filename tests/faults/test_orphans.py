"""A message taken from Redis by a worker that no longer holds it (its channel
dropped while Redis was down, so kombu's give-back failed) runs well before the
2 h visibility timeout; one a live worker holds is never given back."""

import json
import time
from pathlib import Path

import pytest

from api_contracts.models import JobState
from tests.faults.harness import OwnRedis, make_client, workers
from tests.faults.test_faults import _submit, _wait_progress
from worker.runtime.settings import Settings
from worker.service.celery_app import create_app
from worker.service.orphans import UNACKED, UNACKED_INDEX, give_back_orphans

pytestmark = [pytest.mark.integration, pytest.mark.faults]
SWEEP = {"BACKDROP_QUEUE__SWEEP_INTERVAL_SECONDS": "1", "BACKDROP_QUEUE__STALE_AFTER_SECONDS": "5"}


def _take_and_lose(client, queue: str) -> str:  # type: ignore[no-untyped-def]
    """What a worker's BRPOP then a failed give-back leave: the message in
    kombu's `unacked` hash, taken an hour ago, and in no queue."""
    raw = client.redis.rpop(queue)
    assert raw, f"nothing waiting in {queue}"
    message = json.loads(raw)
    info = message["properties"]["delivery_info"]
    tag = message["properties"]["delivery_tag"]
    entry = json.dumps([message, info["exchange"], info["routing_key"]])
    client.redis.hset(UNACKED, tag, entry)
    client.redis.zadd(UNACKED_INDEX, {tag: time.time() - 3600})
    return str(tag)


def test_a_message_no_worker_holds_is_given_back_and_its_job_ends(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    client = make_client(own_redis.url, s3_endpoint)
    bucket = client.config.input_bucket  # made by workers at start; none runs yet
    if not client.s3.bucket_exists(bucket_name=bucket):
        client.s3.make_bucket(bucket_name=bucket)
    job_id = _submit(client, iterations=3, seed=130)  # no worker yet: its step waits
    tag = _take_and_lose(client, "gpu")
    with workers(tmp_path, own_redis.url, s3_endpoint, **SWEEP):
        final = client.wait(job_id, timeout=120)
    assert final.state == JobState.SUCCEEDED, final
    assert client.redis.hget(UNACKED, tag) is None


def test_a_message_a_live_worker_holds_is_left_alone(
    tmp_path: Path, own_redis: OwnRedis, s3_endpoint: str
) -> None:
    with workers(tmp_path, own_redis.url, s3_endpoint):
        client = make_client(own_redis.url, s3_endpoint)
        job_id = _submit(client, iterations=100, seed=131)
        _wait_progress(client, job_id, 10)
        app = create_app(Settings(redis={"url": own_redis.url}))
        assert give_back_orphans(app, client.redis, older_than=0) == [], "the worker holds it"
        final = client.wait(job_id, timeout=180)
    assert final.state == JobState.SUCCEEDED
    assert final.counters["stylize"] == 1, "never run twice"
