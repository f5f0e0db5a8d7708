"""An intermediate is made once whoever asks (worker.service.producer_lock.
produce_once), and a failed maker does not hold the next asker, nor free
another's lock."""

import threading
import time

import pytest

from api_contracts.errors import BackdropError, ErrorCode
from worker.service import producer_lock as artifacts

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

    monkeypatch.setattr(artifacts, "PRODUCER_WAIT_SECONDS", 1)  # the wait, not the point
    lock = redis_keys.producer_lock("masks/y")
    svc.redis.set(lock, "someone-else", ex=60)
    with pytest.raises(BackdropError):  # it waits the holder out, then makes it and fails
        artifacts.produce_once(svc, "masks/y", _fail, bytes, bytes, "image/png")
    assert svc.redis.get(lock) == b"someone-else", "the holder's lock was freed"


def test_a_maker_slower_than_the_lock_keeps_it_and_the_asker_reads_its_object(
    svc, monkeypatch
) -> None:
    """A strength dial takes minutes on a CPU and the lock lived 30 s: every
    asker after that made the dial again, each job used its own while the
    store kept the last writer's. The maker now renews its lock."""
    monkeypatch.setattr(artifacts, "PRODUCER_LOCK_SECONDS", 2)
    made: list[str] = []

    def slow() -> bytes:
        made.append("slow")
        time.sleep(5.0)  # two and a half lock lifetimes
        return b"slow"

    def other() -> bytes:
        made.append("other")
        return b"other"

    first: list = []

    def make_first() -> None:
        first.append(artifacts.produce_once(svc, "dials/z", slow, bytes, bytes, "text/plain"))

    maker = threading.Thread(target=make_first)
    maker.start()
    time.sleep(0.3)
    second = artifacts.produce_once(svc, "dials/z", other, bytes, bytes, "text/plain")
    maker.join()
    assert made == ["slow"], "the asker made it again while the maker worked"
    assert first == [(b"slow", False)] and second == (b"slow", True)
