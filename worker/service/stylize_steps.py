"""The stylize step: one output, or up to `queue.style_batch` outputs of the
same job optimized as one batch (stylize_many: one VGG pass per step for all).

Each output of a batch is prepared on its own (its paintings, its preview), so
a painting that cannot be read fails only its output; each keeps its own
progress bar and intermediates, and its image is stored under its own key.
"""

import os
import socket
import time
from dataclasses import dataclass

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobState
from jobstore.records import JobRecord
from worker.pipeline import intake
from worker.pipeline.feature_maps import LevelFeatures, decode_features, encode_features
from worker.pipeline.png import encode_png
from worker.pipeline.stages import Painting, paint_regions
from worker.pipeline.style import BatchProgress, photo_features, stylize_many
from worker.runtime.model_cache import get_previewer
from worker.service import artifacts, keys
from worker.service.context import Cancelled, Services, open_record
from worker.service.dial import output_gain
from worker.service.fault_points import pause_at
from worker.service.guard import tenant_message
from worker.service.paint_step import paint_all
from worker.service.plan import JobPlan, load_plan
from worker.service.plan_models import plan_feature_net
from worker.service.progressive import latest_every, publish_latest, publish_preview

STYLIZE_SHARE = 90  # percent of an output's progress bar spent optimizing
Failure = tuple[int, ErrorCode, str]  # an output that failed on its own


@dataclass
class Prepared:
    """One output ready to optimize: its paintings, regions and preview."""

    index: int
    style_sha: str
    paintings: list[Painting]
    regions: list[np.ndarray] | None
    preview: np.ndarray
    gain: float  # its strength through its paintings' dial (worker.service.dial)


@dataclass
class Batch:
    """Outputs of one job after preparation: read once (record, plan, the
    working photo) and handed to the optimization as they are."""

    record: JobRecord
    plan: JobPlan
    photo: np.ndarray | None  # None when the mode stylizes nothing
    todo: list[Prepared]  # to optimize
    ready: list[int]  # image or result exists already
    failed: list[Failure]  # failed on their own: a painting that cannot be read
    # The soft limit from the task's start: preparing (a dial's calibration) spends it too.
    deadline: float = float("inf")


def stylize_step(services: Services, job_id: str, index: int) -> None:
    """Optimize one output's stylized image (unless it or the result exists)."""
    _, failed = stylize_batch_step(services, job_id, [index])
    if failed:  # one output alone: its failure is the step's
        raise BackdropError(failed[0][1], failed[0][2])


def stylize_batch_step(
    services: Services, job_id: str, indices: list[int]
) -> tuple[list[int], list[Failure]]:
    """Stylize these outputs; returns (outputs ready to composite, outputs
    that failed on their own). A failure of the optimization itself (a
    timeout, a cancel) is raised: it ends every output still being optimized."""
    batch = prepare_batch(services, job_id, indices)
    return batch.ready + optimize_batch(services, batch), batch.failed


def prepare_batch(services: Services, job_id: str, indices: list[int]) -> Batch:
    """Each output on its own: its paintings, its preview, or its failure."""
    deadline = time.monotonic() + services.settings.queue.soft_time_limit
    record = open_record(services, job_id)
    plan = load_plan(record)
    indices = [plan.check_output(i) for i in indices]
    for i in indices:
        record.advance(JobState.RUNNING, output=i)
        # Which process runs it: for operators, and for the fault tests that kill it.
        record.set(output=i, worker=f"{socket.gethostname()}:{os.getpid()}")
    if not plan.stage.stylizes:
        return Batch(record, plan, None, [], indices, [])
    photo = artifacts.working_photo(services, plan)
    batch = Batch(record, plan, photo, [], [], [], deadline)
    for i in indices:
        try:
            prepared = _prepare(services, record, plan, i, photo)
        except BackdropError as exc:  # told as the guard tells it
            batch.failed.append((i, exc.code, tenant_message(exc, {"job_id": job_id})))
            continue
        if prepared is None:
            batch.ready.append(i)
        else:
            batch.todo.append(prepared)
    return batch


def optimize_batch(services: Services, batch: Batch) -> list[int]:
    """Optimize the prepared outputs (together where they can share a batch)
    and store each image under its own key; returns their indices."""
    record, plan, todo = batch.record, batch.plan, batch.todo
    if not todo or batch.photo is None:
        return []
    if plan.quality == "preview":
        pause_at(services, "stylized", record.job_id)
        meta: dict[str, object] = {"feature_net": "none", "stylizer": get_previewer().name}
        for p in todo:
            _store(services, record, plan, p, p.preview, meta, "preview_only")
    else:
        _optimize_together(services, record, plan, batch.photo, todo, batch.deadline)
    return [p.index for p in todo]


def _prepare(
    services: Services, record: JobRecord, plan: JobPlan, index: int, photo: np.ndarray
) -> Prepared | None:
    """None when the output's result or stylized image exists already."""
    styles = artifacts.fetch_styles(services, plan, index)
    subject_style = artifacts.fetch_subject_style(services, plan)
    style_sha = artifacts.styles_hash(styles, subject_style)
    record.set(output=index, style_sha=style_sha)
    if artifacts.reusable_result(services, plan.result_key(style_sha)):
        return None  # an identical request finished before: the composite step reports it
    if services.store.exists(services.settings.storage.work_bucket, plan.stylized_key(style_sha)):
        return None
    slots, regions = paintings_of(services, plan, photo, styles, subject_style)
    preview = publish_preview(services, record, plan, index, photo, slots, regions, style_sha)
    if plan.quality == "preview":  # the feed-forward picture has no gain to resolve
        return Prepared(index, style_sha, slots, regions, preview, 0.0)
    gain = output_gain(services, plan, photo, style_sha, slots, regions, preview)
    return Prepared(index, style_sha, slots, regions, preview, gain)


def _optimize_together(
    services: Services, record: JobRecord, plan: JobPlan, photo: np.ndarray,
    todo: list[Prepared], deadline: float,
) -> None:  # fmt: skip
    """One optimization per group of outputs that can share a batch: outputs
    painted in regions (two paintings) each have their own region count.
    The loops check Celery's soft limit themselves at every report (AutoGraph
    swallows its signal while converting a function), from the task's start."""
    groups = [todo] if todo[0].regions is None else [[p] for p in todo]
    for group in groups:
        images, metas = _optimize(services, record, plan, photo, group, deadline)
        if plan.paint is not None:  # quality high, output original: detail at full size
            images = paint_all(services, record, plan, group, images, (STYLIZE_SHARE, deadline))
            metas = [{**m, "painted_shape": list(images[0].shape[:2])} for m in metas]
        pause_at(services, "stylized", record.job_id)
        for p, image, meta in zip(group, images, metas, strict=True):
            _store(services, record, plan, p, image, {**meta, "gain": p.gain}, "stylize")
        if len(group) > 1:
            record.count("stylize_batches")


def _optimize(
    services: Services, record: JobRecord, plan: JobPlan, photo: np.ndarray,
    group: list[Prepared], deadline: float,
) -> tuple[list[np.ndarray], list[dict[str, object]]]:  # fmt: skip
    """The group's pictures, and each one's metadata (its losses, its iterations)."""
    settings = services.settings
    net = plan_feature_net(plan, settings)
    every = settings.queue.progress_every(plan.params.iterations)
    features = content_features(services, record, plan, photo)
    if len(group) > 1:  # the other outputs of the batch use the same features
        record.count("content_features_reused", len(group) - 1)
    # init "preview": each output starts from the preview it already published.
    starts = [p.preview for p in group] if plan.params.init == "preview" else None
    steps = stylize_many(photo, [p.paintings for p in group], plan.params, net,
                         checkpoint_every=latest_every(plan), init_images=starts,
                         xla=settings.compute.xla, features=features, regions=group[0].regions,
                         lbfgs_every=settings.compute.lbfgs_round_trip(every),
                         gains=[p.gain for p in group])  # fmt: skip
    last: BatchProgress | None = None
    reported = 0
    for last in steps:
        if time.monotonic() > deadline:
            raise SoftTimeLimitExceeded()
        if last.images is not None and last.iteration < last.total:
            for p, image in zip(group, last.images, strict=True):
                publish_latest(services, record, plan, p.index, photo, image, p.style_sha)
        if last.iteration // every > reported // every:  # a progress step was passed
            reported = last.iteration
            for p in group:
                record.progress(p.index, last.iteration * STYLIZE_SHARE // last.total)
            if record.cancelled():
                raise Cancelled
    assert last is not None and last.images is not None
    # Nothing of the batch (its size, its count): each picture is stored under
    # its own key, as if it had been made alone.
    runs = last.runs or [last.iteration] * len(group)
    meta = {"feature_net": net.name, "precision": net.precision}
    return last.images, [{**meta, "iterations_run": n, "losses": own}
                         for own, n in zip(last.losses, runs, strict=True)]  # fmt: skip


def _store(
    services: Services, record: JobRecord, plan: JobPlan, prepared: Prepared,
    image: np.ndarray, meta: dict[str, object], counter: str,
) -> None:  # fmt: skip
    key = plan.stylized_key(prepared.style_sha)
    services.store.put(services.settings.storage.work_bucket, key, encode_png(image, meta),
                       "image/png")  # fmt: skip
    record.count(counter)


def paintings_of(
    services: Services, plan: JobPlan, photo: np.ndarray, styles: list[artifacts.Fetched],
    subject_style: artifacts.Fetched | None,
) -> tuple[list[Painting], list[np.ndarray] | None]:  # fmt: skip
    """The decoded paintings of one output and, for two paintings in one
    photo, the region each applies to (the refined subject alpha and its rest)."""
    background = intake.load_styles(styles, plan.limits)
    if not plan.stage.two_paintings:
        return background, None
    assert subject_style is not None  # the contract requires it with this mode
    subject = intake.load_styles([subject_style], plan.limits)[0]
    alpha = artifacts.subject_edge(services, plan, photo).alpha
    return paint_regions(plan.mode, subject, background, alpha)


def content_features(
    services: Services, record: JobRecord, plan: JobPlan, photo: np.ndarray
) -> LevelFeatures:
    """The photo's VGG content features, computed by the job's first output to
    get here (after its preview is out) and read by every other output; a later
    job on the same photo and recipe reuses them too."""
    params = plan.params
    net = plan_feature_net(plan, services.settings)
    recipe = {"layer": params.content_layer, "levels": params.levels,
              "precision": net.precision}  # fmt: skip
    key = keys.features_key(plan.photo_sha, plan.size, net.name, recipe)
    features, reused = artifacts.produce_once(
        services, key, lambda: photo_features(photo, params, net),
        encode_features, decode_features, "application/octet-stream",
    )  # fmt: skip
    record.count("content_features_reused" if reused else "content_features")
    return features
