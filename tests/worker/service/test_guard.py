"""What a failed step tells the tenant: the service's code and message, and
for an unexpected exception only its kind (the log has the rest)."""

from types import SimpleNamespace
from typing import Any

import cv2
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobState
from worker.service.guard import _failure


def _told(exc: Exception) -> tuple[Any, str]:
    task = SimpleNamespace(request=SimpleNamespace(retries=0))
    return _failure(SimpleNamespace(), task, exc, {"job_id": "j1"})  # type: ignore[arg-type]


def test_an_unexpected_exception_tells_its_kind_not_its_text() -> None:
    secret = "connect to 10.0.3.7:9000 as backdrop-admin failed in /srv/backdrop/.venv/lib"
    code, message = _told(RuntimeError(secret))
    assert code == ErrorCode.INTERNAL and "RuntimeError" in message
    assert "10.0.3.7" not in message and "/srv" not in message and "admin" not in message


def test_a_service_error_keeps_its_code_and_message() -> None:
    code, message = _told(BackdropError(ErrorCode.INVALID_IMAGE, "the image is 16384x32"))
    assert (code, message) == (ErrorCode.INVALID_IMAGE, "the image is 16384x32")


def test_a_missing_model_tells_the_tenant_no_path_or_address() -> None:
    """MODEL_UNAVAILABLE's text is for the operator: a worker's models
    directory, an upstream address (a mixed fleet, where a step lands on a
    worker without the plan's VGG19)."""
    detail = (
        "the plan's network vgg19 is not in /home/backdrop/models (vgg19.npz, from "
        "http://10.0.3.7:8000/vgg19.npz): give every worker the same models directory"
    )
    code, message = _told(BackdropError(ErrorCode.MODEL_UNAVAILABLE, detail))
    assert code == ErrorCode.MODEL_UNAVAILABLE and "logged under this job's id" in message
    assert "/" not in message and "10.0.3.7" not in message


def test_an_allocation_too_large_for_the_worker_says_so() -> None:
    """Two paintings' mode with 17 regions at 2048 px needs about 64 GiB an
    evaluation: TensorFlow's refusal ended as INTERNAL, a code that tells
    the tenant nothing to change."""
    import tensorflow as tf

    no_memory = cv2.error("Insufficient memory")
    no_memory.code = cv2.Error.StsNoMem
    for exc in (tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
                MemoryError("Unable to allocate 64.0 GiB"), no_memory):  # fmt: skip
        code, message = _told(exc)
        assert code == ErrorCode.INVALID_REQUEST and "more memory than the worker" in message
        assert "GiB" not in message and "tensor" not in message
    # A batch of outputs (the operator's choice) may fit apart: not the tenant's to change.
    task = SimpleNamespace(request=SimpleNamespace(retries=0))
    batch = {"job_id": "j1", "outputs": "2"}
    code, _ = _failure(SimpleNamespace(), task, MemoryError("x"), batch)  # type: ignore[arg-type]
    assert code == ErrorCode.INTERNAL
    other = cv2.error("bad argument")
    other.code = cv2.Error.StsBadArg
    assert _told(other)[0] == ErrorCode.INTERNAL


@pytest.mark.parametrize("error", [OutOfMemoryError, ReadOnlyError, RedisConnectionError])
def test_redis_unable_to_write_is_left_to_the_sweep_not_a_failure(error) -> None:
    # At its maxmemory Redis refuses writes (noeviction): a step that could not
    # write its progress must not end the job as INTERNAL for good.
    with pytest.raises(error):
        _told(error("OOM command not allowed when used memory > 'maxmemory'"))


@pytest.mark.integration
def test_a_batch_that_dies_in_its_second_step_ends_after_max_deliveries(svc) -> None:
    """stylize_batch guards two steps under one message: its prepare ended
    cleanly and forgot the delivery count, so a batch whose optimization
    killed its worker (out of memory) every time was redelivered for ever,
    its job RUNNING. The count is the message's: kept until the last step."""
    from tests.worker.service.conftest import new_job
    from worker.service.guard import guarded

    record = new_job(svc, "batch-dies")
    task = SimpleNamespace(name="stylize_batch", request=SimpleNamespace(
        id="batch-dies-task", retries=0, delivery_info={"routing_key": "gpu"}))  # fmt: skip
    finalized: list[str] = []
    for _ in range(svc.settings.queue.max_deliveries):
        prepared = guarded(svc, task, record.job_id, [0, 1], lambda: "prepared",  # type: ignore[arg-type]
                           finalized.append, part="first")  # fmt: skip
        assert prepared == "prepared"  # ... and the worker dies in the optimization
    again = guarded(svc, task, record.job_id, [0, 1], lambda: "prepared",  # type: ignore[arg-type]
                    finalized.append, part="first")  # fmt: skip
    assert again is None
    status = record.status()
    assert status.state == JobState.FAILED and status.error is not None
    assert status.error.code == ErrorCode.INTERNAL
    # A batch that ends cleanly forgets its count: its next message starts afresh.
    clean = SimpleNamespace(name="stylize_batch", request=SimpleNamespace(
        id="batch-ends-task", retries=0, delivery_info={"routing_key": "gpu"}))  # fmt: skip
    for _ in range(svc.settings.queue.max_deliveries + 1):
        for part in ("first", "last"):
            assert guarded(svc, clean, record.job_id, [0, 1], lambda p=part: p,  # type: ignore[arg-type, misc]
                           finalized.append, part=part) == part  # fmt: skip
