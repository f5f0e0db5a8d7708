"""What a failed step tells the tenant: the service's code and message, and
for an unexpected exception only its kind (the log has the rest)."""

from types import SimpleNamespace
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from api_contracts.errors import BackdropError, ErrorCode
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


@pytest.mark.parametrize("error", [OutOfMemoryError, ReadOnlyError, RedisConnectionError])
def test_redis_unable_to_write_is_left_to_the_sweep_not_a_failure(error) -> None:
    # At its maxmemory Redis refuses writes (noeviction): a step that could not
    # write its progress must not end the job as INTERNAL for good.
    with pytest.raises(error):
        _told(error("OOM command not allowed when used memory > 'maxmemory'"))
