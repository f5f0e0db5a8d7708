"""Objects a job reads and makes: its inputs, and intermediates produced once.

An intermediate (working photo, mask, content features) is made by the first
task that needs it, behind a Redis lock, and read by every other task, on any
worker, so jobs on the same photo started at once do not all compute it.
"""

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import numpy as np

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import StyleRef
from jobstore import redis_keys
from worker.pipeline.matting import Edge
from worker.pipeline.png import decode_png, encode_png
from worker.pipeline.stages import refined_edge
from worker.service import keys
from worker.service.context import Services
from worker.service.plan import JobPlan
from worker.storage import ObjectNotFound

# The maker's lock lives this long unless renewed; it is renewed every third
# of it while the maker works (a strength dial takes minutes on a CPU), so a
# maker that died frees it within this. Askers wait for a live maker up to
# PRODUCER_WAIT_SECONDS (far above any intermediate; the task's time limit is lower).
PRODUCER_LOCK_SECONDS = 30
PRODUCER_WAIT_SECONDS = 900
T = TypeVar("T")


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
            services.redis.eval(_RENEW, 1, lock, token, PRODUCER_LOCK_SECONDS)

    beat = threading.Thread(target=renew, name="producer-lock", daemon=True)
    beat.start()
    try:
        yield
    finally:
        done.set()
        beat.join()


def _wait_for_other_producer(
    services: Services, bucket: str, key: str
) -> tuple[bool, str | None]:  # fmt: skip
    """(True, None) when the object exists (now, or once a concurrent task
    that holds the lock has stored it); (False, this task's lock token, or
    None when the holder died) when this task should make it."""
    lock, token = redis_keys.producer_lock(key), uuid.uuid4().hex
    deadline = time.monotonic() + PRODUCER_WAIT_SECONDS
    while not services.store.exists(bucket, key):
        # A maker that died stops renewing: its lock expires and this takes it.
        if services.redis.set(lock, token, nx=True, ex=PRODUCER_LOCK_SECONDS):
            return False, token
        if time.monotonic() > deadline:
            return False, None  # a maker alive this long is stuck: make it here
        time.sleep(0.05)
    return True, None


def photo_bytes(services: Services, photo_key: str) -> bytes:
    try:
        return services.store.get(services.settings.storage.input_bucket, photo_key)
    except ObjectNotFound:
        raise BackdropError(ErrorCode.INPUT_NOT_FOUND, f"no photo at {photo_key!r}") from None


def working_photo(services: Services, plan: JobPlan) -> np.ndarray:
    """The photo at working size, stored by the job's first step: later steps
    decode a small PNG, never the upload again."""
    return decode_png(_work_object(services, plan.working_photo_key()))


def subject_mask_of(services: Services, plan: JobPlan, shape: tuple[int, ...]) -> np.ndarray:
    key = plan.mask_key()
    if key is None:
        return np.ones(shape[:2], np.float32)
    return decode_mask(_work_object(services, key))


def subject_edge(services: Services, plan: JobPlan, photo: np.ndarray) -> Edge:
    """The mask's refined edge (guided filter or matting), made once by the
    first step that needs it and read by every other picture of the job."""
    key = plan.edge_key()
    if key is None:
        return Edge(np.ones(photo.shape[:2], np.float32), photo, photo)
    edge, _ = produce_once(
        services, key, lambda: refined_edge(photo, subject_mask_of(services, plan, photo.shape),
                                            plan.composite),
        encode_edge, lambda data: decode_edge(data, photo), "application/octet-stream",
    )  # fmt: skip
    return edge


def preview_edge(services: Services, plan: JobPlan, photo: np.ndarray) -> Edge:
    """The instant preview's edge: the guided filter's where the plan says so
    (JobPlan.quick_preview_edge; milliseconds, never stored), else the job's."""
    if not plan.quick_preview_edge:
        return subject_edge(services, plan, photo)
    guided = plan.composite.model_copy(update={"edge": "guided"})
    return refined_edge(photo, subject_mask_of(services, plan, photo.shape), guided)


def encode_edge(edge: Edge) -> bytes:
    """Alpha as 8 bits (as results are), and the colours only where it is
    fractional: elsewhere they are the photo's, which the reader has."""
    alpha8 = np.rint(edge.alpha * 255).astype(np.uint8)
    soft = (alpha8 > 0) & (alpha8 < 255)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, alpha=alpha8, fg=edge.fg[soft], bg=edge.bg[soft])
    return buffer.getvalue()


def decode_edge(data: bytes, photo: np.ndarray) -> Edge:
    with np.load(io.BytesIO(data)) as stored:
        alpha8, fg_soft, bg_soft = stored["alpha"], stored["fg"], stored["bg"]
    soft = (alpha8 > 0) & (alpha8 < 255)
    fg, bg = photo.copy(), photo.copy()
    fg[soft], bg[soft] = fg_soft, bg_soft
    return Edge(alpha8.astype(np.float32) / 255.0, fg, bg)


def encode_mask(mask: np.ndarray) -> bytes:
    return encode_png(mask)


def decode_mask(png: bytes) -> np.ndarray:
    return decode_png(png).astype(np.float32) / 255.0


def _work_object(services: Services, key: str) -> bytes:
    try:
        return services.store.get(services.settings.storage.work_bucket, key)
    except ObjectNotFound:
        # Intermediates expire after days; a job restarted that late redoes them.
        raise BackdropError(ErrorCode.INTERNAL, f"intermediate {key} expired") from None


Fetched = tuple[bytes, float]


def reusable_result(services: Services, key: str) -> bool:
    """Whether another job's result under `key` may serve this one: only while
    it outlives this job's record (the results bucket forgets an object
    results_expiry_days after it was written, the record lives
    queue.result_expires; a day to spare). An older one is made anew, which
    restarts its clock."""
    return _young(services, services.store.age(services.settings.storage.results_bucket, key))


def _young(services: Services, age: timedelta | None) -> bool:
    if age is None:
        return False
    settings = services.settings
    kept = timedelta(days=settings.storage.results_expiry_days)
    record = timedelta(seconds=settings.queue.result_expires)
    return age < kept - record - timedelta(days=1)


def reuse_at_composite(services: Services, plan: JobPlan, style_sha: str | None) -> bool:
    """The composite step follows the stylize step's choice: a young enough
    result is reused, an older one made again from the stylized image. If
    there is none (the stylize step reused the result, which has aged past
    the edge since), the result is reused rather than the output failed."""
    storage = services.settings.storage
    age = services.store.age(storage.results_bucket, plan.result_key(style_sha))
    if _young(services, age):
        return True
    if style_sha is None or age is None:
        return False
    return not services.store.exists(storage.work_bucket, plan.stylized_key(style_sha))


def fetch_styles(services: Services, plan: JobPlan, index: int) -> list[Fetched]:
    """The paintings of one output, as bytes with their blend weights."""
    return [_fetch(services, plan.styles[j]) for j in plan.outputs[index]]


def fetch_subject_style(services: Services, plan: JobPlan) -> Fetched | None:
    """The subject's own painting (two-painting modes), or None."""
    return None if plan.subject_style is None else _fetch(services, plan.subject_style)


def _fetch(services: Services, ref: StyleRef) -> Fetched:
    s = services.settings.storage
    if ref.key:
        bucket, key = s.input_bucket, ref.key
    else:
        bucket, key = s.styles_bucket, keys.catalog_key(ref.name or "")
    try:
        return services.store.get(bucket, key), ref.weight
    except ObjectNotFound:
        what = f"style {ref.name!r}" if ref.name else f"style object {ref.key!r}"
        raise BackdropError(ErrorCode.STYLE_NOT_FOUND, f"no {what}") from None


def styles_hash(styles: list[Fetched], subject: Fetched | None = None) -> str:
    """The paintings' identity in keys: the subject's painting is marked, so a
    two-painting output never shares a key with a blend of the same paintings."""
    parts = [f"{keys.content_hash(d)}:{w};" for d, w in styles]
    if subject is not None:
        parts.insert(0, f"subject={keys.content_hash(subject[0])};")
    return keys.content_hash("".join(parts).encode())
