"""An intermediate is made once whoever asks (worker.service.artifacts.
produce_once), and a failed maker does not hold the next asker, nor free
another's lock."""

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


def test_a_failed_maker_leaves_another_holders_lock_alone(svc, monkeypatch) -> None:
    """A maker whose lock timed out while another took it, or that never
    held it, must not free the holder's: two would make the same object."""
    from jobstore import redis_keys

    monkeypatch.setattr(artifacts, "PRODUCER_LOCK_SECONDS", 1)  # the wait, not the point
    lock = redis_keys.producer_lock("masks/y")
    svc.redis.set(lock, "someone-else", ex=60)
    with pytest.raises(BackdropError):  # it waits the holder out, then makes it and fails
        artifacts.produce_once(svc, "masks/y", _fail, bytes, bytes, "image/png")
    assert svc.redis.get(lock) == b"someone-else", "the holder's lock was freed"
