"""The job record on the real Redis: it owns its task ids, no write brings it
back once gone, every write renews its expiry, and a job ends once."""

from collections.abc import Iterator

import pytest
from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobError, JobRequest, JobState, StyleRef
from jobstore.records import JobRecord, publish_service_settings
from jobstore.redis_keys import EVENTS_STREAM, SERVICE_KEY

pytestmark = pytest.mark.integration
REQUEST = JobRequest(photo_key="uploads/p", styles=[StyleRef(key="a"), StyleRef(key="b")])


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/10")
    client.flushdb()
    yield client
    client.flushdb()


def test_the_service_sets_the_ttl_and_every_write_renews_it(redis: Redis) -> None:
    publish_service_settings(redis, 5000)
    record = JobRecord(redis, "j")
    record.create(REQUEST)
    assert 4990 < redis.ttl(record.key) <= 5000
    redis.expire(record.key, 100)
    record.progress(0, 10)
    assert redis.ttl(record.key) > 4990, "a progress tick renews the expiry"
    record.set_ttl(9000)
    redis.expire(record.key, 100)
    record.count("x")
    assert redis.ttl(record.key) > 8990


def test_the_workers_working_size_is_published_for_the_quota(redis: Redis) -> None:
    from jobstore.records import published_max_side
    from jobstore.redis_keys import SERVICE_KEY

    assert published_max_side(redis) == 512, "before any worker: the default"
    publish_service_settings(redis, 5000, 1024)
    assert published_max_side(redis) == 1024
    for junk in ("-1", "99999999", "1e3", "10"):  # never trusted past the bounds
        redis.hset(SERVICE_KEY, "max_side", junk)
        assert published_max_side(redis) == 512


def test_no_write_recreates_a_deleted_record(redis: Redis) -> None:
    record = JobRecord(redis, "gone")
    record.create(REQUEST)
    redis.delete(record.key)
    record.count("segment")
    record.progress(0, 50)
    record.advance(JobState.RUNNING, output=1)
    record.set(output=0, worker="w")
    assert record.set_once("plan", "{}") is None
    assert record.mark_done(0, 2) is False
    assert record.finish(JobState.FAILED) is False
    assert not record.request_cancel()
    assert not redis.exists(record.key)
    assert not [k for k in redis.keys("*") if k not in (SERVICE_KEY.encode(),)]


def test_a_job_ends_once_with_one_event_and_open_outputs_follow(redis: Redis) -> None:
    record = JobRecord(redis, "end")
    record.create(REQUEST)
    record.advance(JobState.SUCCEEDED, output=0, progress=100, result_key="results/x.png")
    error = JobError(code=ErrorCode.CANCELLED, message="cancelled by request")
    assert record.finish(JobState.CANCELLED, error, open_outputs=JobState.CANCELLED)
    assert not record.finish(JobState.SUCCEEDED), "an ended job stays ended"
    status = record.status()
    assert status.state == JobState.CANCELLED and status.finished_at is not None
    assert [s.state for s in status.styles] == [JobState.SUCCEEDED, JobState.CANCELLED]
    assert redis.xlen(EVENTS_STREAM) == 1, "one job.finished event, written with the end"
    event = redis.xrange(EVENTS_STREAM)[0][1]
    assert event[b"job_id"] == b"end" and event[b"state"] == b"CANCELLED"
    with pytest.raises(ValueError):
        record.advance(JobState.SUCCEEDED)  # the job itself ends only through finish


def test_cancel_names_the_tasks_of_every_generation_the_sweep_made(redis: Redis) -> None:
    record = JobRecord(redis, "gen")
    record.create(REQUEST)
    for _ in range(7):  # far past any fixed guess of restarts
        record.count("requeued")
    ids = set(record.all_task_ids())
    assert record.segment_task_id() in ids and record.segment_task_id(7) in ids
    assert set(record.output_task_ids(7, 1)) <= ids
    assert len(ids) == 8 * (1 + 2 * 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [("outputs", "-1"), ("outputs", "abc"), ("s0.progress", "xx"), ("state", "WHAT"),
     ("s1.state", "NOPE"), ("created", "yesterday")],
)  # fmt: skip
def test_a_corrupt_record_reads_as_internal_naming_the_field(redis, field, value) -> None:
    record = JobRecord(redis, "corrupt")
    record.create(REQUEST)
    redis.hset(record.key, field, value)
    with pytest.raises(BackdropError) as err:
        record.status()
    assert err.value.code == ErrorCode.INTERNAL
    assert field.split(".")[-1] in err.value.message or "corrupt" in err.value.message


def test_corrupt_numbers_never_loop_or_half_write(redis: Redis) -> None:
    """A huge output count must not make the end of a job walk 10**15 outputs,
    and a counter that is not an integer is reported, not incremented."""
    record = JobRecord(redis, "huge")
    record.create(REQUEST)
    redis.hset(record.key, mapping={"outputs": "1" + "0" * 15, "done": "1.5", "c.segment": "x"})
    assert record.finish(JobState.FAILED, None, open_outputs=JobState.FAILED)
    assert redis.hget(record.key, "state") == b"FAILED"
    with pytest.raises(BackdropError):
        record.count("segment")
    with pytest.raises(BackdropError):
        record.mark_done(0, 2)
