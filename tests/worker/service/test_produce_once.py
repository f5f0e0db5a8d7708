"""An intermediate is made once whoever asks (worker.service.artifacts.
produce_once), and a failed maker does not hold the next asker."""

import time

import pytest

from api_contracts.errors import BackdropError, ErrorCode
from worker.service import artifacts

pytestmark = pytest.mark.integration


def _fail() -> bytes:
    raise BackdropError(ErrorCode.INVALID_IMAGE, "not a photo at the working size")


def test_a_failed_maker_lets_the_next_asker_make_it_at_once(svc) -> None:
    """The same bad photo asked again (a retry, another job): it waited out
    the 30 s lock of a maker that had failed, holding a worker each time."""
    args = ("image/png",)
    with pytest.raises(BackdropError):
        artifacts.produce_once(svc, "masks/x", _fail, bytes, bytes, *args)
    started = time.monotonic()
    with pytest.raises(BackdropError):
        artifacts.produce_once(svc, "masks/x", _fail, bytes, bytes, *args)
    assert time.monotonic() - started < 5, "it waited for a lock nobody would release"
    value, read = artifacts.produce_once(svc, "masks/x", lambda: b"made", bytes, bytes, *args)
    assert (value, read) == (b"made", False)
    again = artifacts.produce_once(svc, "masks/x", _fail, bytes, bytes, *args)
    assert again == (b"made", True), "made once, then read"
