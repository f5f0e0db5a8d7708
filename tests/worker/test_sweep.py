"""The sweep on a real Redis: stale jobs come back, fresh ones and side keys are left alone."""

from pathlib import Path

import pytest
from redis import Redis

from api_contracts.models import JobRequest, JobState, StyleRef
from jobstore.records import JobRecord
from worker.runtime.settings import Settings
from worker.service.context import Services
from worker.service.sweep import sweep_stale_jobs
from worker.storage.local_store import LocalStore

pytestmark = pytest.mark.integration
SWEEP_REDIS = "redis://127.0.0.1:6379/12"  # its own database: the tests flush it
REQUEST = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="a"), StyleRef(key="b")])


@pytest.fixture
def svc(tmp_path: Path) -> Services:
    redis = Redis.from_url(SWEEP_REDIS)
    redis.flushdb()
    return Services(Settings(), LocalStore(tmp_path), redis)


def _job(svc: Services, job_id: str, age_seconds: float) -> JobRecord:
    record = svc.record(job_id)
    record.create(REQUEST)
    record.advance(JobState.RUNNING)
    old = "2020-01-01T00:00:00+00:00" if age_seconds > 0 else None
    if old:
        svc.redis.hset(record.key, "updated", old)
    return record


def test_stale_jobs_are_handed_back_and_side_keys_skipped(svc: Services) -> None:
    _job(svc, "stale", 3600)
    _job(svc, "fresh", 0)
    svc.redis.set("backdrop:job:other:sweep", "1")  # a plain key under the prefix
    svc.redis.sadd("backdrop:job:other:done", 0)
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == ["stale"]
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == [], "claimed, and refreshed"


def test_after_max_requeues_open_outputs_fail_and_the_job_is_finalized(svc: Services) -> None:
    record = _job(svc, "lost", 3600)
    record.advance(JobState.SUCCEEDED, output=0, progress=100, result_key="results/x.png")
    svc.redis.hset(record.key, mapping={"c.requeued": 5, "updated": "2020-01-01T00:00:00+00:00"})
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == []
    status = record.status()
    assert status.state == JobState.PARTIAL
    assert status.styles[0].state == JobState.SUCCEEDED
    assert status.styles[1].state == JobState.FAILED and status.styles[1].error.code == "INTERNAL"


def test_progress_ticks_are_heartbeats(svc: Services) -> None:
    record = _job(svc, "busy", 3600)
    record.advance(JobState.RUNNING, output=0)
    svc.redis.hset(record.key, "s0.progress", 80)
    svc.redis.hset(record.key, "updated", "2020-01-01T00:00:00+00:00")
    record.progress(0, 40)  # a restarted output catching up: no rise, still alive
    assert record.status().styles[0].progress == 80
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == []


def test_a_job_waiting_in_the_queue_backlog_is_not_swept(svc: Services) -> None:
    """Behind a long backlog a job's record does not move, but its message is
    still in the broker: it is waiting, not lost, and must not be given up."""
    from celery import Celery

    from api_contracts.names import QUEUE_GPU, TASK_SEGMENT

    record = _job(svc, "waiting", 3600)
    svc.redis.hset(record.key, "c.requeued", 5)  # the next sweep would give up on it
    Celery(broker=SWEEP_REDIS).send_task(
        TASK_SEGMENT, args=["waiting"], queue=QUEUE_GPU, task_id="waiting.segment"
    )
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == []
    assert record.status().state == JobState.RUNNING, "left alone while its message waits"
    svc.redis.delete(QUEUE_GPU)  # the message is gone (a Redis restart without persistence)
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == []
    assert record.status().state == JobState.FAILED, "now it is lost, and given up"


def test_a_job_held_in_its_tenants_fair_queue_is_not_swept(svc: Services) -> None:
    record = svc.record("held")
    record.create(REQUEST, "acme", held=True)
    svc.redis.hset(record.key, "updated", "2020-01-01T00:00:00+00:00")
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == []
    from jobstore.admission import held_count

    assert held_count(svc.redis, "interactive", "acme") == 1, "never held: the sweep holds it"
    svc.redis.hset(record.key, "held", "0")  # sent, and then its message was lost
    svc.redis.hset(record.key, "updated", "2020-01-01T00:00:00+00:00")
    assert sweep_stale_jobs(svc, stale_after=60, max_requeues=2) == ["held"]


def test_slots_of_jobs_whose_record_vanished_are_given_back(svc: Services) -> None:
    from jobstore.admission import inflight_key, open_key
    from worker.service.sweep import release_ended_jobs

    _job(svc, "alive", 0)
    svc.redis.sadd(open_key("acme"), "alive", "vanished")
    svc.redis.sadd(inflight_key("batch"), "vanished")
    assert release_ended_jobs(svc.redis) == 0, "a record may be on its way: one more round"
    assert release_ended_jobs(svc.redis) == 2
    assert svc.redis.smembers(open_key("acme")) == {b"alive"}


def test_workers_take_batch_work_only_when_nothing_else_waits() -> None:
    from worker.service.safe_transport import BatchLastCycle

    cycle = BatchLastCycle()
    cycle.update(["gpu-batch", "cpu", "gpu", "notify"])
    assert cycle.consume(4)[-1] == "gpu-batch"
    cycle.rotate("cpu")  # kombu's round robin still turns among the others
    assert cycle.consume(4) == ["gpu", "notify", "cpu", "gpu-batch"]
