"""Tenants, quotas and fair queues on the real Redis, through the real client
(its Celery producer writes to Redis lists; no worker is needed to see what
was sent, in which queue and in which order)."""

import json
from collections.abc import Iterator

import pytest
from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobError, JobOptions, JobRequest, JobState, StyleRef
from api_contracts.names import QUEUE_GPU, QUEUE_GPU_BATCH
from jobstore.admission import (
    held_count,
    held_total,
    inflight_key,
    publish_windows,
    reenter_window,
)
from jobstore.records import JobRecord
from jobstore.redis_keys import TENANT_PREFIX
from jobstore.tenants import Limits, Tenants
from jobstore.trusted_client import TrustedClient, TrustedClientConfig

pytestmark = pytest.mark.integration
URL = "redis://127.0.0.1:6379/7"  # its own database: these tests flush it


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(URL)
    client.flushdb()
    yield client
    client.flushdb()


def _client(api_key: str | None = None) -> TrustedClient:
    client = TrustedClient(
        TrustedClientConfig(redis_url=URL, access_key="k", secret_key="s", api_key=api_key)
    )  # type: ignore[arg-type]
    if client.tenant:  # as if it had uploaded the photo the requests name
        client.uploads.claim(client.tenant, "uploads/p")
    return client


def _request(styles: int = 1, priority: str = "interactive") -> JobRequest:
    return JobRequest(photo_key="uploads/p", styles=[StyleRef(name="starry")] * styles,
                      priority=priority)  # type: ignore[arg-type]  # fmt: skip


def _sent(redis: Redis, queue: str) -> list[str]:
    """Job ids of the first tasks waiting in a Celery queue, oldest first."""
    bodies = redis.lrange(queue, 0, -1)
    return [json.loads(b)["headers"]["argsrepr"].strip("[]'\"") for b in reversed(bodies)]  # type: ignore[union-attr]


def test_keys_are_stored_hashed_and_a_revoked_key_is_403(redis: Redis) -> None:
    tenants = Tenants(redis)
    issued = tenants.add("acme", Limits(max_open_jobs=3))
    key = issued.api_key.get_secret_value()
    names = list(redis.scan_iter())
    dump = b"".join(v for k in names if redis.type(k) == b"hash" for v in redis.hvals(k))
    dump += b"".join(names) + b"".join(redis.get(k) or b"" for k in redis.scan_iter("*apikey*"))
    assert key.encode() not in dump, "the API key itself is never stored"
    assert tenants.authenticate(key).name == "acme"
    with pytest.raises(BackdropError) as conflict:
        tenants.add("acme", Limits())
    assert conflict.value.code == ErrorCode.CONFLICT
    for bad in (None, "", "bdk_not-a-key"):
        with pytest.raises(BackdropError) as unknown:
            tenants.authenticate(bad)
        assert unknown.value.code == ErrorCode.UNAUTHORIZED
    tenants.revoke("acme")
    with pytest.raises(BackdropError) as revoked:
        tenants.authenticate(key)
    assert revoked.value.code == ErrorCode.FORBIDDEN
    assert [(t.name, t.revoked) for t in tenants.list()] == [("acme", True)]


def test_past_the_open_jobs_limit_429_and_nothing_is_queued(redis: Redis) -> None:
    key = Tenants(redis).add("small", Limits(max_open_jobs=2)).api_key.get_secret_value()
    client = _client(key)
    first = client.submit(_request()).job_id
    client.submit(_request())
    keys_before = set(redis.keys())
    with pytest.raises(BackdropError) as refused:
        client.submit(_request())
    assert refused.value.code == ErrorCode.QUOTA_EXCEEDED and refused.value.retry_after
    assert set(redis.keys()) == keys_before, "a refused job leaves nothing behind"
    assert len(_sent(redis, QUEUE_GPU)) == 2
    client.cancel(first)  # its end frees its slot
    assert client.submit(_request()).job_id


def test_outputs_per_minute_is_a_sliding_window_with_retry_after(redis: Redis) -> None:
    key = Tenants(redis).add("rate", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    client.submit(_request(styles=3))
    with pytest.raises(BackdropError) as refused:
        client.submit(_request(styles=3))
    assert refused.value.code == ErrorCode.QUOTA_EXCEEDED
    assert 55 <= (refused.value.retry_after or 0) <= 60
    client.submit(_request(styles=2))  # still within the 5
    with pytest.raises(BackdropError) as later:
        client.submit(_request(styles=6))  # more than a minute's worth: into an empty window
    assert later.value.code == ErrorCode.QUOTA_EXCEEDED
    assert 55 <= (later.value.retry_after or 0) <= 60


def test_outputs_per_minute_counts_each_output_by_its_cost(redis: Redis) -> None:
    """400 iterations count 4 default outputs: without the cost, a tenant
    allowed 5 a minute could ask for 5 x 2000 iterations in one minute."""
    key = Tenants(redis).add("cost", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    heavy = _request().model_copy(update={"options": JobOptions(iterations=400)})
    client.submit(heavy)
    with pytest.raises(BackdropError) as refused:
        client.submit(_request(styles=2))  # 4 + 2 > 5
    assert refused.value.code == ErrorCode.QUOTA_EXCEEDED
    assert "5 outputs a minute (at the default size and iterations)" in refused.value.message
    client.submit(_request())  # 4 + 1
    with pytest.raises(BackdropError) as later:
        client.submit(_request().model_copy(update={"options": JobOptions(iterations=600)}))
    assert later.value.code == ErrorCode.QUOTA_EXCEEDED
    assert "this job counts as 6 by its cost" in later.value.message


def test_a_job_costlier_than_a_minute_runs_and_the_tenant_pays_it_off(redis: Redis) -> None:
    """1100 iterations count 11 at a limit of 5 a minute: refused for good, a
    request the API accepts could never run; taken whole, a tenant could run
    one such job a minute. It is taken into an empty window and its units fill
    the next minutes: the next job waits until they are paid (about 2 minutes)."""
    key = Tenants(redis).add("big", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    client.submit(_request().model_copy(update={"options": JobOptions(iterations=1100)}))
    with pytest.raises(BackdropError) as refused:
        client.submit(_request())
    assert refused.value.code == ErrorCode.QUOTA_EXCEEDED
    # 11 units: 5 leave after 60 s, 5 after 120 s; then one is left and 1 + 1 fits.
    assert 115 <= (refused.value.retry_after or 0) <= 120


@pytest.mark.parametrize("end", [JobState.CANCELLED, JobState.FAILED])
def test_a_costly_job_that_ends_unrun_gives_back_the_minutes_ahead(
    redis: Redis, end: JobState
) -> None:
    """1100 iterations at 5 a minute hold the tenant's window for 2 minutes
    ahead. A job refused at intake (or cancelled while held) will not run
    them: the minute it was admitted in stays paid, the rest is given back.
    A job that succeeds keeps them (its work was done)."""
    key = Tenants(redis).add("big", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    costly = JobOptions(iterations=1100)
    kept = client.submit(_request().model_copy(update={"options": costly})).job_id
    JobRecord(redis, kept).finish(JobState.SUCCEEDED)
    with pytest.raises(BackdropError) as paid:
        client.submit(_request())
    assert 115 <= (paid.value.retry_after or 0) <= 120, "a success gave its units back"
    redis.delete(f"{TENANT_PREFIX}big:outputs")  # a new minute, long after
    job = client.submit(_request().model_copy(update={"options": costly})).job_id
    error = JobError(code=ErrorCode.INVALID_IMAGE, message="x")
    if end == JobState.CANCELLED:
        client.cancel(job)
    else:
        JobRecord(redis, job).finish(JobState.FAILED, error, JobState.FAILED)
    with pytest.raises(BackdropError) as refused:
        client.submit(_request())  # the first minute's 5 still count
    assert 55 <= (refused.value.retry_after or 0) <= 60, "the minutes ahead were kept"
    assert redis.zcard(f"{TENANT_PREFIX}big:outputs") == 5


def test_the_admitted_minute_stays_paid_whatever_the_workers_clock(redis: Redis) -> None:
    """The gateway scores the window by its clock, a worker ends the job by
    its own: with the gateway 10 s ahead, every member was 'after now' and a
    job refused at intake cost nothing at all."""
    key = Tenants(redis).add("big", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    job = client.submit(_request().model_copy(update={"options": JobOptions(iterations=1100)}))
    window = f"{TENANT_PREFIX}big:outputs"
    for member, score in redis.zrange(window, 0, -1, withscores=True):
        redis.zadd(window, {member: score + 10})  # as if admitted by a clock 10 s ahead
    error = JobError(code=ErrorCode.INVALID_IMAGE, message="x")
    JobRecord(redis, job.job_id).finish(JobState.FAILED, error, JobState.FAILED)
    assert redis.zcard(window) == 5, "the admitted minute was given back"


def test_a_costly_job_cancelled_after_its_fan_out_keeps_its_units(redis: Redis) -> None:
    """The attack a refund on cancel opens: 16 outputs of 2000 iterations
    sent to 16 GPUs, cancelled at 59 s, the next such job admitted at 60 s,
    a minute's quota paying for the fleet. Once sent, the units stay."""
    key = Tenants(redis).add("big", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    job = client.submit(_request().model_copy(update={"options": JobOptions(iterations=1100)}))
    JobRecord(redis, job.job_id).mark_fanned_out()  # as the segment step does
    client.cancel(job.job_id)
    with pytest.raises(BackdropError) as refused:
        client.submit(_request())
    assert 115 <= (refused.value.retry_after or 0) <= 120, "a sent job's units were given back"


def test_a_default_job_counts_the_working_size_the_workers_publish(redis: Redis) -> None:
    """A deployment painting at 1024 px: a job without `size` is 4 of 512 px."""
    from jobstore.records import publish_service_settings

    publish_service_settings(redis, 3600, 1024)
    key = Tenants(redis).add("wide", Limits(outputs_per_minute=5)).api_key.get_secret_value()
    client = _client(key)
    client.submit(_request())
    with pytest.raises(BackdropError) as refused:
        client.submit(_request(styles=2))  # 4 + 8 > 5
    assert refused.value.code == ErrorCode.QUOTA_EXCEEDED
    client.submit(_request().model_copy(update={"options": JobOptions(size=256)}))  # 4 + 1


def test_an_unlimited_tenant_leaves_no_window_behind(redis: Redis) -> None:
    key = Tenants(redis).add("free", Limits()).api_key.get_secret_value()
    _client(key).submit(_request().model_copy(update={"options": JobOptions(iterations=2000)}))
    assert not redis.exists(f"{TENANT_PREFIX}free:outputs"), "20 members counted for no limit"


def test_a_client_with_a_key_sees_only_its_tenants_jobs(redis: Redis) -> None:
    tenants = Tenants(redis)
    a = _client(tenants.add("a", Limits()).api_key.get_secret_value())
    b = _client(tenants.add("b", Limits()).api_key.get_secret_value())
    job = a.submit(_request()).job_id
    assert a.status(job).tenant == "a"
    for call in (b.status, b.cancel):
        with pytest.raises(BackdropError) as hidden:
            call(job)
        assert hidden.value.code == ErrorCode.NOT_FOUND
    assert _client().status(job).state == JobState.QUEUED, "no key: the operator sees every job"


def test_tenants_take_turns_and_batch_goes_to_its_own_queue(redis: Redis) -> None:
    publish_windows(redis, interactive=8, batch=2)
    tenants = Tenants(redis)
    a = _client(tenants.add("a", Limits()).api_key.get_secret_value())
    b = _client(tenants.add("b", Limits()).api_key.get_secret_value())
    a_jobs = [a.submit(_request(priority="batch")).job_id for _ in range(6)]
    b_job = b.submit(_request(priority="batch")).job_id
    assert _sent(redis, QUEUE_GPU_BATCH) == a_jobs[:2], "the window: 2 batch jobs in flight"
    assert held_count(redis, "batch", "a") == 4 and held_count(redis, "batch", "b") == 1
    assert held_total(redis, "batch") == 5 and held_total(redis, "interactive") == 0  # /metrics
    assert JobRecord(redis, a_jobs[2]).field("held") == "1"
    for done in a_jobs[:2]:  # two of A's jobs end; each end frees a place
        JobRecord(redis, done).finish(JobState.SUCCEEDED, open_outputs=JobState.SUCCEEDED)
        a.pump()
    assert _sent(redis, QUEUE_GPU_BATCH) == [*a_jobs[:3], b_job], "B's job went after one of A's"
    assert held_total(redis, "batch") == 3, "B's ring place is gone with its last held job"
    interactive = b.submit(_request()).job_id
    assert _sent(redis, QUEUE_GPU) == [interactive], "interactive has its own window"


def test_a_job_cancelled_while_held_is_never_sent_and_frees_its_slot(redis: Redis) -> None:
    publish_windows(redis, interactive=1, batch=1)
    key = Tenants(redis).add("c", Limits(max_open_jobs=3)).api_key.get_secret_value()
    client = _client(key)
    running, held, later = (client.submit(_request()).job_id for _ in range(3))
    assert client.cancel(held).state == JobState.CANCELLED
    client.submit(_request())  # the cancelled job's slot is free again
    error = JobError(code=ErrorCode.INTERNAL, message="x")
    JobRecord(redis, running).finish(JobState.FAILED, error, JobState.FAILED)
    client.pump()
    assert _sent(redis, QUEUE_GPU) == [running, later], "the cancelled job was skipped"


@pytest.mark.parametrize("end", [JobState.CANCELLED, JobState.FAILED])
def test_a_job_that_ran_nothing_keeps_its_record_a_day_not_a_week(redis: Redis, end) -> None:
    """Submit and cancel at the quota's rate: each record of nothing stayed a
    week (about 2.8 GB of Redis a week for one tenant at the default 60 a
    minute, past the shipped 2 GB ceiling). A job that ran keeps the week."""
    from jobstore.records import DEFAULT_TTL, UNRUN_TTL

    client = _client(Tenants(redis).add("churn", Limits()).api_key.get_secret_value())
    unrun, ran = (client.submit(_request()).job_id for _ in range(2))
    JobRecord(redis, ran).mark_fanned_out()
    error = JobError(code=ErrorCode.INVALID_IMAGE, message="x")
    for job in (unrun, ran):
        if end == JobState.CANCELLED:
            client.cancel(job)
        else:
            JobRecord(redis, job).finish(JobState.FAILED, error, JobState.FAILED)
    assert UNRUN_TTL - 60 < redis.ttl(JobRecord(redis, unrun).key) <= UNRUN_TTL
    assert redis.ttl(JobRecord(redis, ran).key) > UNRUN_TTL + 3600
    assert DEFAULT_TTL > UNRUN_TTL
    # Later writes renew the expiry from the record's ttl: a second cancel, a
    # webhook's state. They must not give the week back.
    client.cancel(unrun)
    JobRecord(redis, unrun).set_fields({"webhook.state": "pending"})
    assert UNRUN_TTL - 60 < redis.ttl(JobRecord(redis, unrun).key) <= UNRUN_TTL


def test_a_job_leaves_the_window_when_its_gpu_steps_end_not_its_composites(redis: Redis) -> None:
    publish_windows(redis, interactive=1, batch=1)
    client = _client(Tenants(redis).add("g", Limits()).api_key.get_secret_value())
    first = client.submit(_request(styles=3)).job_id
    second = client.submit(_request()).job_id
    assert _sent(redis, QUEUE_GPU) == [first], "a window of one"
    record = JobRecord(redis, first)
    record.fail_output(2, ErrorCode.INVALID_REQUEST, "x")  # an output that ended on its own
    assert not record.leave_window([0], 0)
    assert not record.leave_window([1, 99], 0) and not record.leave_window([True], 0)  # type: ignore[list-item]
    client.pump()
    assert _sent(redis, QUEUE_GPU) == [first], "output 1 is still on a GPU"
    assert not record.leave_window([1], 1), "a generation the job is not at marks nothing"
    assert record.leave_window([1], 0), "every output is past its GPU step or ended"
    assert record.field("state") not in ("SUCCEEDED", "FAILED"), "its composites still run"
    client.pump()
    assert _sent(redis, QUEUE_GPU) == [first, second], "the next job went while it composites"
    assert record.field("gpu.0.99") is None, "an index outside the job is never written"
    # Restarted by the sweep (a new generation): back in, and last generation's
    # marks do not count; a late task of generation 0 marks nothing.
    record.count("requeued")
    assert reenter_window(redis, first, "interactive")
    assert not record.leave_window([0, 1], 0) and not record.leave_window([0], 1)
    assert redis.sismember(inflight_key("interactive"), first)
    record.finish(JobState.SUCCEEDED, open_outputs=JobState.SUCCEEDED)
    assert not reenter_window(redis, first, "interactive"), "an ended job is not put back"
    redis.delete(record.key)
    assert not record.leave_window([0, 1], 1) and not redis.exists(record.key), "nothing recreated"
