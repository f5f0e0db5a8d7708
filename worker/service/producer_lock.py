"""An intermediate made once, whoever asks: the first task that needs it makes
it behind a Redis lock (renewed while it works), every other task, on any
worker, waits for the stored object and reads it."""

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

from redis.exceptions import RedisError

from jobstore import redis_keys
from worker.service.context import Services
from worker.storage import ObjectNotFound

# The maker's lock lives this long unless renewed; it is renewed every third
# of it while the maker works (a strength dial takes minutes on a CPU), so a
# maker that died frees it within this. Askers wait for a live maker up to
# PRODUCER_WAIT_SECONDS (a maker alive that long is stuck: the slowest
# intermediate, a dial, takes 110-210 s on a CPU), looking every 50 ms at
# first and every second after.
PRODUCER_LOCK_SECONDS = 30
PRODUCER_WAIT_SECONDS = 900
T = TypeVar("T")
log = logging.getLogger(__name__)


def produce_once(
    services: Services, key: str, make: Callable[[], T], encode: Callable[[T], bytes],
    decode: Callable[[bytes], T], content_type: str,
) -> tuple[T, bool]:  # fmt: skip
    """The object at `key` in the work bucket, made here or by whoever holds
    the lock; (value, True when it was read rather than made). The value is
    always the stored one, decoded: a mask or edge is stored in 8 bits, and
    the maker's unrounded copy made its own job's pictures differ from every
    later job's under the same key."""
    bucket = services.settings.storage.work_bucket
    exists, token = _wait_for_other_producer(services, bucket, key)
    if exists:
        try:
            return decode(services.store.get(bucket, key)), True
        except ObjectNotFound:
            pass  # expired in between: make it here
    try:
        with _renewed(services, redis_keys.producer_lock(key), token):
            data = encode(make())
            services.store.put(bucket, key, data, content_type)
    except BaseException:
        # Failed (a bad photo, a time limit): the next asker makes it at once,
        # instead of waiting out the lock of a maker that will never store it.
        # Only this task's own lock: another holder's is its business.
        if token is not None:
            services.redis.eval(_RELEASE, 1, redis_keys.producer_lock(key), token)
        raise
    return decode(data), False


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) end"


@contextlib.contextmanager
def _renewed(services: Services, lock: str, token: str | None) -> Iterator[None]:
    """This task's lock kept alive while it makes the object: it lived 30 s
    and a dial takes minutes, so every asker after 30 s made the dial again,
    each job then using its own while the store kept the last writer's."""
    if token is None:
        yield
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(PRODUCER_LOCK_SECONDS / 3):
            try:  # one failed renewal must not end the others (the lock would lapse)
                services.redis.eval(_RENEW, 1, lock, token, PRODUCER_LOCK_SECONDS)
            except RedisError as exc:
                log.warning("could not renew the producer lock %s: %s", lock, exc)

    beat = threading.Thread(target=renew, name="producer-lock", daemon=True)
    beat.start()
    try:
        yield
    finally:
        done.set()
        beat.join(timeout=PRODUCER_LOCK_SECONDS)  # a renewal stuck on Redis: let it go


def _wait_for_other_producer(
    services: Services, bucket: str, key: str
) -> tuple[bool, str | None]:  # fmt: skip
    """(True, None) when the object exists (now, or once a concurrent task
    that holds the lock has stored it); (False, this task's lock token, or
    None when the holder died) when this task should make it."""
    lock, token = redis_keys.producer_lock(key), uuid.uuid4().hex
    deadline, pause = time.monotonic() + PRODUCER_WAIT_SECONDS, 0.05
    while not services.store.exists(bucket, key):
        # A maker that died stops renewing: its lock expires and this takes it.
        if services.redis.set(lock, token, nx=True, ex=PRODUCER_LOCK_SECONDS):
            return False, token
        if time.monotonic() > deadline:
            return False, None  # a maker alive this long is stuck: make it here
        time.sleep(pause)
        pause = min(1.0, pause * 1.5)
    return True, None
