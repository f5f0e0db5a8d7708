"""Every failure ends in a final state with a code: never a job stuck RUNNING or PENDING."""

import time

import pytest
from pydantic import ValidationError

from api_contracts.errors import BackdropError
from api_contracts.models import JobRequest, JobState, StyleRef
from jobstore.records import JobRecord
from tests.conftest import PHOTOS, STYLES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def starry(client) -> StyleRef:
    return StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))


@pytest.fixture(scope="module")
def hopper(client) -> str:
    return client.upload((PHOTOS / "grace_hopper.png").read_bytes())


def _job_keys(redis_client) -> set[bytes]:
    return set(redis_client.scan_iter("backdrop:job:*"))


def test_missing_photo_key_fails_with_input_not_found(client, starry) -> None:
    request = JobRequest(photo_key="uploads/no-such-photo", styles=[starry, starry])
    final = client.wait(client.submit(request).job_id, timeout=60)
    assert final.state == JobState.FAILED
    assert final.error is not None and final.error.code == "INPUT_NOT_FOUND"
    assert all(
        s.state == JobState.FAILED and s.error.code == "INPUT_NOT_FOUND" for s in final.styles
    )


def test_corrupt_upload_fails_with_invalid_image(client, starry) -> None:
    broken = client.upload((PHOTOS / "cat_720p.jpg").read_bytes()[:4000])
    final = client.wait(client.submit(JobRequest(photo_key=broken, styles=[starry])).job_id, 60)
    assert final.state == JobState.FAILED and final.error.code == "INVALID_IMAGE"


def test_photo_without_a_person_fails_with_no_subject_found(client, starry) -> None:
    bird = client.upload((PHOTOS / "bird_segmentation.png").read_bytes())
    final = client.wait(client.submit(JobRequest(photo_key=bird, styles=[starry])).job_id, 60)
    assert final.state == JobState.FAILED and final.error.code == "NO_SUBJECT_FOUND"


def test_one_missing_style_among_three_gives_partial(client, hopper, starry) -> None:
    waves = StyleRef(key=client.upload((STYLES / "waves.jpg").read_bytes()))
    missing = StyleRef(key="uploads/never-uploaded")
    final = client.wait(
        client.submit(JobRequest(photo_key=hopper, styles=[starry, missing, waves])).job_id, 120
    )
    assert final.state == JobState.PARTIAL
    states = [s.state for s in final.styles]
    assert states == [JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED]
    assert final.styles[1].error.code == "STYLE_NOT_FOUND"
    for style in (final.styles[0], final.styles[2]):
        assert client.download(style.result_key).startswith(b"\x89PNG")


def test_catalog_styles_by_name(client, hopper) -> None:
    client.add_style("sketch", (STYLES / "sketch.jpg").read_bytes())
    assert "sketch" in client.list_styles()
    request = JobRequest(
        photo_key=hopper, styles=[StyleRef(name="sketch"), StyleRef(name="nonesuch")]
    )
    final = client.wait(client.submit(request).job_id, 120)
    assert final.state == JobState.PARTIAL
    assert final.styles[1].error.code == "STYLE_NOT_FOUND"


def test_cancel_mid_job(client, hopper, starry) -> None:
    request = JobRequest(photo_key=hopper, styles=[starry], options={"iterations": 2000, "seed": 3})
    job_id = client.submit(request).job_id
    deadline = time.monotonic() + 60
    while client.status(job_id).styles[0].progress == 0:
        assert time.monotonic() < deadline, "the optimization never reported progress"
        time.sleep(0.2)
    cancelled = client.cancel(job_id)
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.styles[0].state == JobState.CANCELLED
    # The running optimization notices within one progress interval (5%, 100
    # iterations here) and stops: the worker is free for the next job.
    portrait = client.submit(JobRequest(photo_key=hopper, mode="portrait")).job_id
    assert client.wait(portrait, timeout=60).state == JobState.SUCCEEDED
    final = client.status(job_id)
    assert final.state == JobState.CANCELLED and final.error.code == "CANCELLED"
    assert "stylize" not in final.counters, "the cancelled optimization was not stored"
    # It ran on a GPU: a cancel gives none of its quota units back (admission).
    assert JobRecord(client.redis, job_id).field("fanned") == "1"


@pytest.mark.parametrize(
    "bad",
    [
        {"styles": []},
        {"styles": [{"key": "uploads/x", "weight": -1}]},
        {"styles": [{"key": "uploads/x", "weight": float("nan")}]},
        {"styles": [{"key": "../etc/passwd"}]},
        {"styles": [{"key": "/abs/path"}]},
        {"styles": [{"key": "s3://other-bucket/x"}]},
        {"styles": [{"key": "uploads/x"}], "subjects": ["unicorn"]},
        {"styles": [{"key": "uploads/x"}], "options": {"iterations": 100000}},
        {"styles": [{"key": "uploads/x"}] * 1000},
    ],
)
def test_invalid_requests_are_refused_before_queueing(client, redis_client, bad) -> None:
    before = _job_keys(redis_client)
    with pytest.raises(ValidationError):
        client.submit(JobRequest(photo_key="uploads/photo", **bad))
    assert _job_keys(redis_client) == before


@pytest.mark.parametrize(
    "over_the_limit",
    [{"styles": [StyleRef(key="uploads/s")] * 20}, {"options": {"iterations": 3000}}],
)
def test_requests_above_the_service_limits_are_refused(
    client, redis_client, over_the_limit
) -> None:
    before = _job_keys(redis_client)
    request = {"styles": [StyleRef(key="uploads/s")], **over_the_limit}
    with pytest.raises(BackdropError) as info:
        client.submit(JobRequest(photo_key="uploads/photo", **request))
    assert info.value.code == "INVALID_REQUEST"
    assert _job_keys(redis_client) == before


def test_a_redelivered_segment_task_does_not_run_outputs_twice(client, hopper, starry) -> None:
    from api_contracts.names import QUEUE_GPU, TASK_SEGMENT

    request = JobRequest(photo_key=hopper, styles=[starry], options={"seed": 31, "iterations": 30})
    job_id = client.submit(request).job_id
    client.celery.send_task(TASK_SEGMENT, args=[job_id], queue=QUEUE_GPU)  # as if redelivered
    final = client.wait(job_id, timeout=120)
    assert final.state == JobState.SUCCEEDED
    assert final.counters.get("stylize") == 1 and final.counters.get("composite") == 1
    assert "result_reused" not in final.counters, "the second delivery sent no second chain"
