"""The steps of a queued job, one per task, on the job record and object keys.

A job: segment once (resolve and store the plan, the working photo, the mask)
-> per output, stylize -> composite -> when the last output is done,
finalize. Messages carry the job id and an output index only; everything
else comes from the stored plan.
"""

import numpy as np

from api_contracts.models import JobState
from jobstore.records import JobRecord, now
from worker.pipeline import intake
from worker.pipeline.full_resolution import composite_full
from worker.pipeline.png import decode_png, encode_png, read_metadata
from worker.pipeline.segmentation import (
    require_subject,
    segmentation_input,
    subject_class_ids,
    subject_mask,
)
from worker.pipeline.stages import composite_stage
from worker.service import artifacts, finish, keys, stylize_steps
from worker.service.context import Cancelled, Services, open_record
from worker.service.fault_points import pause_at
from worker.service.paint_step import paint_photo
from worker.service.plan import JobPlan, load_plan, store_plan
from worker.service.plan_models import plan_segmenter


def segment_step(services: Services, job_id: str) -> list[int]:
    """Resolve the plan, validate the photo, find the subject once; return the
    outputs still open (a job restarted by the sweep redoes only those)."""
    record = open_record(services, job_id)
    record.advance(JobState.RUNNING, started=now())  # `started` only the first time
    plan, upload = _plan_of(services, record)
    decoded: list[np.ndarray] = []

    def full() -> np.ndarray:  # the upload decoded at most once, and only if needed
        if not decoded:
            data = upload or artifacts.photo_bytes(services, plan.photo_key)
            decoded.append(intake.decode_image(data, plan.limits))
        return decoded[0]

    photo, _ = artifacts.produce_once(
        services, plan.working_photo_key(), lambda: intake.to_working_size(full(), plan.size),
        encode_png, decode_png, "image/png",
    )  # fmt: skip
    mask_key = plan.mask_key()
    if mask_key is not None:
        ids, settings = subject_class_ids(plan.subjects), services.settings
        mask, reused = artifacts.produce_once(
            services, mask_key,  # the segmenter is loaded only where the mask must be made
            lambda: subject_mask(segmentation_input(full()), plan_segmenter(plan, settings), ids,
                                 photo.shape[:2]),
            artifacts.encode_mask, artifacts.decode_mask, "image/png",
        )  # fmt: skip
        record.count("mask_reused" if reused else "segment")
        require_subject(mask, plan.min_subject_fraction, plan.subjects)
    styles = record.status().styles
    return [s.index for s in styles if s.state in (JobState.QUEUED, JobState.RUNNING)]


def _plan_of(services: Services, record: JobRecord) -> tuple[JobPlan, bytes | None]:
    """The stored plan of a restarted job (never resolved again: settings may
    have changed since), or the request resolved now, with the upload read."""
    if record.field("plan") is not None:
        return load_plan(record), None
    request = record.request()
    data = artifacts.photo_bytes(services, request.photo_key)
    plan = store_plan(record, JobPlan.resolve(request, services.settings, keys.content_hash(data)))
    record.set_ttl(services.settings.queue.result_expires)
    return plan, data


def stylize_step(services: Services, job_id: str, index: int) -> None:
    """One output's stylized image (worker.service.stylize_steps)."""
    stylize_steps.stylize_step(services, job_id, index)


def composite_step(services: Services, job_id: str, index: int) -> bool:
    """Build and store one result. True when it was the job's last output."""
    record = open_record(services, job_id)
    plan = load_plan(record)
    index = plan.check_output(index)
    if record.field("state", index) not in ("QUEUED", "RUNNING"):
        return False  # it ended already (failed in its stylize step): nothing to build
    style_sha = record.field("style_sha", index) if plan.stage.stylizes else None
    if plan.stage.stylizes and style_sha is None:
        raise Cancelled if record.cancelled() else RuntimeError("output was never stylized")
    result_key = plan.result_key(style_sha)
    if artifacts.reuse_at_composite(services, plan, style_sha):
        record.count("result_reused")
        return finish.complete_output(record, index, plan.output_count, result_key)
    result, meta = _built(services, plan, style_sha)
    # Nothing of this job (its id, its output index): the result is keyed by
    # content and served to any tenant's identical request.
    meta.update(mode=plan.mode, size=plan.size, output=plan.output)
    pause_at(services, "composited", job_id)
    results = services.settings.storage.results_bucket
    services.store.put(results, result_key, encode_png(result, meta), "image/png")
    record.count("composite")
    return finish.complete_output(record, index, plan.output_count, result_key)


def _built(
    services: Services, plan: JobPlan, style_sha: str | None
) -> tuple[np.ndarray, dict[str, object]]:
    """One output's result picture, and the metadata it carries."""
    photo = artifacts.working_photo(services, plan)
    full = None
    if plan.output == "original":
        full = intake.decode_image(artifacts.photo_bytes(services, plan.photo_key), plan.limits)
    if plan.stage.stylizes and plan.params.strength == 0:
        # The contract: 0 gives the photo back (no matting, no upsampling, no work).
        return (photo if full is None else full), {}
    stylized, meta = None, dict[str, object]()
    if style_sha is not None:
        png = services.store.get(services.settings.storage.work_bucket,
                                 plan.stylized_key(style_sha))  # fmt: skip
        stylized, meta = decode_png(png), read_metadata(png)
    if full is not None:  # the CPU pool's memory-bounded full-size path
        mask = artifacts.subject_mask_of(services, plan, photo.shape)
        # An image painted above the working size (quality high) is upsampled
        # guided by the photo at its own size.
        painted = stylized is not None and stylized.shape != photo.shape
        guide = paint_photo(services, plan) if painted else photo
        return composite_full(full, guide, mask, stylized, plan.mode, plan.composite)[1], meta
    # the edge the intermediates were composited with (and dual's preview)
    edge = artifacts.subject_edge(services, plan, photo)
    _, result = composite_stage(photo, edge.alpha, stylized, plan.mode, plan.composite,
                                edge=edge)  # fmt: skip
    return result, meta


def finalize_step(services: Services, job_id: str) -> JobState:
    """The job's state from its outputs: all succeeded, some, or none."""
    return finish.conclude(services.record(job_id))
