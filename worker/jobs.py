"""The steps of a queued job, one per task, on object keys and the job record.

A job: segment once -> per output (stylize -> composite) in parallel ->
finalize when the last output is done. Every step writes the record itself,
so a failure anywhere shows as FAILED with a code, never as a silent PENDING.
"""

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError
from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobRequest, JobState, StyleRef
from api_contracts.records import JobRecord, now
from worker import keys
from worker.feature_maps import LevelFeatures, decode_features, encode_features
from worker.model_cache import get_feature_net, get_previewer, get_segmenter
from worker.pipeline import intake
from worker.pipeline.segmentation import (
    require_subject,
    segmentation_input,
    subject_class_ids,
    subject_mask,
)
from worker.pipeline.style import StyleProgress, photo_features, stylize
from worker.pipeline.style_params import StyleParams
from worker.png import decode_png, encode_png, read_metadata
from worker.run_local import composite_stage, decode_styles, limits_of
from worker.settings import Settings
from worker.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)
PRODUCER_LOCK_SECONDS = 30  # far above one segmentation or VGG pass (~0.1-1 s)
STYLIZE_SHARE = 90  # percent of an output's progress bar spent optimizing


class Cancelled(Exception):
    """The job was cancelled while this step ran."""


class JobOver(Exception):
    """The job already ended (e.g. given up by the sweep): nothing left to do."""


@dataclass
class Services:
    """What a step needs besides its arguments; one per worker process."""

    settings: Settings
    store: ObjectStore
    redis: Redis

    def record(self, job_id: str) -> JobRecord:
        return JobRecord(self.redis, job_id, self.settings.queue.result_expires)


@dataclass(frozen=True)
class JobPlan:
    """The request resolved against this deployment's settings and limits."""

    request: JobRequest
    size: int
    params: StyleParams
    quality: str = "standard"

    def params_key(self) -> dict[str, Any]:
        """What shaped the stylized image: the parameters, or just 'preview'."""
        if self.quality == "preview":
            return {"quality": "preview"}
        return {"quality": self.quality, **self.params.model_dump(mode="json")}

    @classmethod
    def of(cls, request: JobRequest, settings: Settings) -> "JobPlan":
        q, opts = settings.queue, request.options
        if len(request.styles) > q.max_styles:
            raise BackdropError(
                ErrorCode.INVALID_REQUEST,
                f"{len(request.styles)} styles; the limit is {q.max_styles}",
            )
        if opts.iterations is not None and opts.iterations > q.max_iterations:
            raise BackdropError(
                ErrorCode.INVALID_REQUEST,
                f"iterations above this service's limit {q.max_iterations}",
            )
        overrides = opts.model_dump(exclude_none=True, exclude={"size", "quality"})
        base = settings.style.model_dump()
        if opts.quality == "high":
            # Twice the iterations at the same scales: an extra coarse scale was
            # measured to buy nothing at full size (256 px, 200 L-BFGS iterations:
            # one scale 1075, two scales 1091, the standard 100 iterations 1091).
            base.update(iterations=2 * base["iterations"])
        try:
            params = StyleParams.model_validate({**base, **overrides})
        except ValidationError as exc:
            raise BackdropError(ErrorCode.INVALID_REQUEST, str(exc.errors()[0]["msg"])) from None
        size = min(opts.size or settings.intake.max_side, settings.intake.max_side)
        return cls(request, size, params, opts.quality)

    def limits(self, settings: Settings) -> intake.IntakeLimits:
        base = limits_of(settings)
        return intake.IntakeLimits(base.max_bytes, base.max_pixels, base.min_side, self.size)


def load_photo(services: Services, plan: JobPlan) -> tuple[np.ndarray, np.ndarray, str]:
    """The photo at full and at working size, and the hash of its bytes."""
    s = services.settings.storage
    try:
        data = services.store.get(s.input_bucket, plan.request.photo_key)
    except ObjectNotFound:
        raise BackdropError(
            ErrorCode.INPUT_NOT_FOUND, f"no photo at {plan.request.photo_key!r}"
        ) from None
    full = intake.decode_image(data, plan.limits(services.settings))
    return full, intake.to_working_size(full, plan.size), keys.content_hash(data)


def segment_step(services: Services, job_id: str) -> list[dict[str, Any]]:
    """Validate the photo, find the subject once; return one context per output."""
    record = services.record(job_id)
    if record.cancelled():
        return []
    record.advance(JobState.RUNNING, started=now())  # `started` only the first time
    plan = JobPlan.of(record.request(), services.settings)
    request = plan.request
    full, photo, photo_sha = load_photo(services, plan)
    mask_key = None
    if request.mode != "full":
        mask_key = _subject_mask_key(services, record, plan, full, photo.shape[:2], photo_sha)
    return [
        {"job_id": job_id, "index": i, "photo_sha": photo_sha, "mask_key": mask_key}
        for i in range(request.output_count)
    ]


def _subject_mask_key(
    services: Services, record: JobRecord, plan: JobPlan,
    full: np.ndarray, size: tuple[int, int], photo_sha: str,
) -> str:  # fmt: skip
    settings = services.settings
    names = plan.request.subjects
    key = keys.mask_key(photo_sha, names, plan.size, settings.segmentation.backend)
    bucket = settings.storage.work_bucket
    if _wait_for_other_producer(services, bucket, key):
        mask = decode_png(services.store.get(bucket, key)).astype(np.float32) / 255.0
        record.count("mask_reused")
    else:
        ids = subject_class_ids(names)
        mask = subject_mask(segmentation_input(full), get_segmenter(settings), ids, size)
        services.store.put(bucket, key, encode_png(mask), "image/png")
        record.count("segment")
    require_subject(mask, settings.segmentation.min_subject_fraction, names)
    return key


def _content_features(
    services: Services, record: JobRecord, plan: JobPlan, photo: np.ndarray, photo_sha: str
) -> LevelFeatures:
    """The photo's VGG content features, computed by the job's first output to
    get here (after its preview is out) and read by every other output, on
    whichever worker; a later job on the same photo and recipe reuses them too."""
    params = plan.params
    net = get_feature_net(params, services.settings)
    recipe = {"layer": params.content_layer, "levels": params.levels,
              "precision": net.precision}  # fmt: skip
    key = keys.features_key(photo_sha, plan.size, net.name, recipe)
    bucket = services.settings.storage.work_bucket
    if _wait_for_other_producer(services, bucket, key):
        try:
            features = decode_features(services.store.get(bucket, key))
            record.count("content_features_reused")
            return features
        except ObjectNotFound:
            pass  # expired in between: compute them here
    features = photo_features(photo, params, net)
    services.store.put(bucket, key, encode_features(features), "application/octet-stream")
    record.count("content_features")
    return features


def _wait_for_other_producer(services: Services, bucket: str, key: str) -> bool:
    """True when the object exists (now, or once a concurrent job that holds the
    lock has stored it); False when this task should compute it. Without the
    lock, jobs on the same photo started at once would all compute it."""
    lock = f"backdrop:lock:{key}"
    deadline = time.monotonic() + PRODUCER_LOCK_SECONDS
    while not services.store.exists(bucket, key):
        if services.redis.set(lock, "1", nx=True, ex=PRODUCER_LOCK_SECONDS):
            return False
        if time.monotonic() > deadline:
            return False  # the holder died: compute it here
        time.sleep(0.05)
    return True


def fetch_styles(services: Services, refs: list[StyleRef]) -> list[tuple[bytes, float]]:
    s = services.settings.storage
    fetched = []
    for ref in refs:
        bucket, key = (
            (s.input_bucket, ref.key)
            if ref.key
            else (s.styles_bucket, keys.catalog_key(ref.name or ""))
        )
        try:
            fetched.append((services.store.get(bucket, key), ref.weight))
        except ObjectNotFound:
            what = f"style {ref.name!r}" if ref.name else f"style object {ref.key!r}"
            raise BackdropError(ErrorCode.STYLE_NOT_FOUND, f"no {what}") from None
    return fetched


def stylize_step(services: Services, ctx: dict[str, Any]) -> dict[str, Any]:
    """Optimize one output's stylized image (unless it or the result exists)."""
    record, index = services.record(ctx["job_id"]), ctx["index"]
    if record.cancelled():
        raise Cancelled
    if record.finished():
        raise JobOver
    record.advance(JobState.RUNNING, output=index)
    # Which process runs it: for operators, and for the fault tests that kill it.
    record.redis.hset(record.key, f"s{index}.worker", f"{socket.gethostname()}:{os.getpid()}")
    plan = JobPlan.of(record.request(), services.settings)
    refs = [plan.request.styles[j] for j in plan.request.outputs()[index]]
    styles = fetch_styles(services, refs)
    style_sha = keys.content_hash(
        b"".join(f"{keys.content_hash(d)}:{w};".encode() for d, w in styles)
    )
    ctx = {**ctx, "result_key": _result_key(services, plan, ctx["photo_sha"], style_sha)}
    if services.store.exists(services.settings.storage.results_bucket, ctx["result_key"]):
        # An identical request finished before: the composite step just reports it.
        return {**ctx, "stylized_key": None, "reused": True}
    if plan.request.mode == "portrait":
        return {**ctx, "stylized_key": None}
    key = keys.stylized_key(ctx["photo_sha"], style_sha, plan.size, plan.params_key())
    if not services.store.exists(services.settings.storage.work_bucket, key):
        _, photo, _ = load_photo(services, plan)
        decoded = decode_styles(styles, services.settings)
        preview = _publish_preview(services, record, plan, ctx, photo, decoded, style_sha)
        if plan.quality == "preview":
            meta = {"feature_net": "none", "stylizer": get_previewer().name}
            services.store.put(services.settings.storage.work_bucket, key,
                               encode_png(preview, meta), "image/png")  # fmt: skip
        else:
            _optimize(services, record, plan, ctx, photo, decoded, key)
    return {**ctx, "stylized_key": key}


def _publish_preview(
    services: Services, record: JobRecord, plan: JobPlan, ctx: dict[str, Any],
    photo: np.ndarray, styles: list[tuple[np.ndarray, float]], style_sha: str,
) -> np.ndarray:  # fmt: skip
    """The feed-forward stylization, composited with the job's mask and shown in
    the status at once; returns the raw (uncomposited) preview."""
    settings = services.settings
    preview = get_previewer().stylize(photo, styles)
    mask = _mask(services, ctx, photo)
    _, shown = composite_stage(photo, mask, preview, plan.request.mode, settings)
    key = keys.preview_key(ctx["photo_sha"], style_sha, plan.size, plan.request.mode,
                           plan.request.subjects)  # fmt: skip
    meta = {"job_id": ctx["job_id"], "index": ctx["index"], "preview": True}
    services.store.put(settings.storage.results_bucket, key, encode_png(shown, meta), "image/png")
    record.redis.hset(record.key, f"s{ctx['index']}.preview_key", key)
    record.progress(ctx["index"], 1)
    record.count("preview")
    return preview


def _mask(services: Services, ctx: dict[str, Any], photo: np.ndarray) -> np.ndarray:
    if not ctx["mask_key"]:
        return np.ones(photo.shape[:2], np.float32)
    png = services.store.get(services.settings.storage.work_bucket, ctx["mask_key"])
    return decode_png(png).astype(np.float32) / 255.0


def _result_key(services: Services, plan: JobPlan, photo_sha: str, style_sha: str) -> str:
    style = None if plan.request.mode == "portrait" else style_sha
    params = {} if plan.request.mode == "portrait" else plan.params_key()
    return keys.result_key(
        photo_sha, style, plan.size, plan.request.mode, plan.request.subjects, params,
        services.settings.composite.model_dump(),
    )  # fmt: skip


def _optimize(
    services: Services, record: JobRecord, plan: JobPlan, ctx: dict[str, Any],
    photo: np.ndarray, decoded: list[tuple[np.ndarray, float]], key: str,
) -> None:  # fmt: skip
    settings, index = services.settings, ctx["index"]
    net = get_feature_net(plan.params, settings)
    every = max(1, plan.params.iterations * settings.queue.progress_every_percent // 100)
    features = _content_features(services, record, plan, photo, ctx["photo_sha"])
    last: StyleProgress | None = None
    steps = stylize(photo, decoded, plan.params, net, xla=settings.compute.xla, features=features)
    for last in steps:
        if last.iteration % every == 0:
            record.progress(index, last.iteration * STYLIZE_SHARE // last.total)
            if record.cancelled():
                raise Cancelled
    assert last is not None and last.image is not None
    meta = {"feature_net": net.name, "losses": last.losses}
    services.store.put(settings.storage.work_bucket, key, encode_png(last.image, meta), "image/png")
    record.count("stylize")


def composite_step(services: Services, ctx: dict[str, Any]) -> bool:
    """Build and store one result. True when it was the job's last output."""
    settings, record, index = services.settings, services.record(ctx["job_id"]), ctx["index"]
    if record.cancelled():
        raise Cancelled
    if record.finished():
        raise JobOver
    if ctx.get("reused"):
        record.count("result_reused")
        return complete_output(services, record, index, ctx["result_key"])
    plan = JobPlan.of(record.request(), settings)
    _, photo, _ = load_photo(services, plan)
    work = settings.storage.work_bucket
    mask = _mask(services, ctx, photo)
    stylized, meta = None, {}
    if ctx["stylized_key"]:
        png = services.store.get(work, ctx["stylized_key"])
        stylized, meta = decode_png(png), read_metadata(png)
    _, result = composite_stage(photo, mask, stylized, plan.request.mode, settings)
    meta.update(job_id=ctx["job_id"], index=index, mode=plan.request.mode, size=plan.size)
    services.store.put(
        settings.storage.results_bucket, ctx["result_key"], encode_png(result, meta), "image/png"
    )
    record.count("composite")
    return complete_output(services, record, index, ctx["result_key"])


def complete_output(services: Services, record: JobRecord, index: int, result_key: str) -> bool:
    record.advance(JobState.SUCCEEDED, output=index, progress=100, result_key=result_key)
    return output_finished(record, index)


def output_finished(record: JobRecord, index: int) -> bool:
    """Count an output as done (once, even if redelivered); True for the last one."""
    done_key = record.key + ":done"
    with record.redis.pipeline() as pipe:
        pipe.sadd(done_key, index)
        pipe.expire(done_key, record.ttl)
        pipe.scard(done_key)
        _, _, count = pipe.execute()
    return int(count) >= record.output_count()


def finalize_step(services: Services, job_id: str) -> JobState:
    """The job's state from its outputs: all succeeded, some, or none."""
    record = services.record(job_id)
    status = record.status()
    states = [s.state for s in status.styles]
    ok = states.count(JobState.SUCCEEDED)
    if ok == len(states):
        record.advance(JobState.SUCCEEDED)
    elif ok:
        record.advance(JobState.PARTIAL)
    elif record.cancelled():
        record.cancel()
    else:
        first = next((s.error for s in status.styles if s.error), None)
        code = first.code if first else ErrorCode.INTERNAL
        record.fail(code, first.message if first else "no output succeeded")
    return record.status().state


def fail_job(services: Services, job_id: str, code: ErrorCode, message: str) -> None:
    """A failure before the fan-out: the job and every output fail with it."""
    record = services.record(job_id)
    record.fail(code, message)
    for i in range(record.output_count()):
        record.fail(code, message, output=i)


def fail_output(services: Services, job_id: str, index: int, code: ErrorCode, message: str) -> bool:
    """One output fails; the others go on. True when it was the last output."""
    record = services.record(job_id)
    if code == ErrorCode.CANCELLED:
        record.advance(JobState.CANCELLED, output=index, error_code=code, error_message=message)
    else:
        record.fail(code, message, output=index)
    return output_finished(record, index)


def sweep_stale_jobs(services: Services, stale_after: float, max_requeues: int) -> list[str]:
    """Find unfinished jobs whose record has not moved for `stale_after` seconds
    (their task vanished: a Redis restart, a lost message) and hand them back
    for a restart; finished outputs are reused by key, so nothing is computed
    twice. After `max_requeues` attempts the outputs still open fail with
    INTERNAL and the job is finalized (PARTIAL if some succeeded). A job with a
    message still in the broker is waiting in a backlog, not lost: left alone.
    Idempotent: several workers may sweep at once."""
    from datetime import datetime

    from redis.exceptions import ResponseError

    from api_contracts.names import JOB_KEY_PREFIX

    acted = []
    backlog: str | None = None  # read once per round, and only if a job is stale
    for key in services.redis.scan_iter(f"{JOB_KEY_PREFIX}*", count=500):
        job_id = (key.decode() if isinstance(key, bytes) else key).removeprefix(JOB_KEY_PREFIX)
        if ":" in job_id:  # the job's side keys (:done, :sweep), not a record
            continue
        record = services.record(job_id)
        try:
            status = record.status()
        except (KeyError, ResponseError):
            continue
        if status.done or status.updated_at is None:
            continue
        age = (datetime.fromisoformat(now()) - status.updated_at).total_seconds()
        if age < stale_after:
            continue
        backlog = broker_backlog(services.redis) if backlog is None else backlog
        if job_id in backlog:
            continue
        # Claim the sweep of this job for a while, so two sweepers do not both act.
        claim = f"{record.key}:sweep"
        if not services.redis.set(claim, "1", nx=True, ex=max(1, int(stale_after))):
            continue
        if record.count("requeued") > max_requeues:
            _give_up(services, record, status)
        else:
            services.redis.hset(record.key, "updated", now())
            acted.append(job_id)
    return acted


def broker_backlog(redis: Redis) -> str:
    """Every message waiting in a queue or held unacknowledged by a worker, as
    raw text. Kombu's Redis transport keeps the task's id and `argsrepr` (which
    hold the job id) in plain JSON headers: lists named after the queues (plus
    priority suffixes) and the `unacked` hash."""
    from api_contracts.names import QUEUE_CPU, QUEUE_GPU

    parts: list[Any] = []
    for queue in (QUEUE_GPU, QUEUE_CPU):
        for key in redis.scan_iter(match=f"{queue}*", _type="LIST"):
            parts.extend(redis.lrange(key, 0, -1))
    parts.extend(redis.hvals("unacked"))
    return "\n".join(p.decode() if isinstance(p, bytes) else str(p) for p in parts)


def _give_up(services: Services, record: JobRecord, status: Any) -> None:
    message = "the job's tasks were lost repeatedly"
    for style in status.styles:
        if style.state in (JobState.QUEUED, JobState.RUNNING):
            record.fail(ErrorCode.INTERNAL, message, output=style.index)
    finalize_step(services, record.job_id)


def open_outputs(services: Services, job_id: str) -> list[int]:
    """Outputs not yet final: what a restarted job still has to do."""
    styles = services.record(job_id).status().styles
    return [s.index for s in styles if s.state in (JobState.QUEUED, JobState.RUNNING)]
