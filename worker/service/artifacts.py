"""Objects a job reads and makes: its inputs, and intermediates produced once.

An intermediate (working photo, mask, content features) is made by the first
task that needs it and read by every other task, on any worker
(worker.service.producer_lock), so jobs on the same photo started at once do
not all compute it.
"""

import io
from datetime import timedelta

import numpy as np

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import StyleRef
from worker.pipeline.matting import Edge
from worker.pipeline.png import decode_png, encode_png
from worker.pipeline.stages import refined_edge
from worker.service import keys
from worker.service.context import Services
from worker.service.plan import JobPlan
from worker.service.producer_lock import produce_once
from worker.storage import ObjectNotFound


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
