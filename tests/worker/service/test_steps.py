"""A job's steps run in this process against the real Redis: what a user sees
in the status and the results bucket, and that the stored plan decides."""

from pathlib import Path

import numpy as np
import pytest

from api_contracts.models import JobState
from jobstore.redis_keys import EVENTS_STREAM
from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
from tests.worker.service.conftest import new_job, small_settings, upload
from worker.pipeline.png import decode_png
from worker.pipeline.stages import CompositeParams
from worker.service import steps
from worker.service.context import Services
from worker.service.plan import load_plan

pytestmark = pytest.mark.integration


def _run_job(svc: Services, job_id: str, composite_svc: Services | None = None) -> None:
    for index in steps.segment_step(svc, job_id):
        steps.stylize_step(svc, job_id, index)
        if steps.composite_step(composite_svc or svc, job_id, index):
            steps.finalize_step(svc, job_id)


def test_a_job_ends_succeeded_with_a_png_of_the_working_size_and_one_event(svc) -> None:
    record = new_job(svc, "ok")
    _run_job(svc, "ok")
    status = record.status()
    assert status.state == JobState.SUCCEEDED and status.finished_at is not None
    png = svc.store.get(svc.settings.storage.results_bucket, status.styles[0].result_key)
    assert max(decode_png(png).shape[:2]) == 96
    assert 0 < svc.redis.ttl(record.key) <= svc.settings.queue.result_expires
    events = [e for _, e in svc.redis.xrange(EVENTS_STREAM) if e[b"job_id"] == b"ok"]
    assert len(events) == 1 and events[0][b"type"] == b"job.finished"
    assert events[0][b"state"] == b"SUCCEEDED"
    assert status.counters["segment"] == 1 and status.counters["stylize"] == 1


def test_the_stored_plan_decides_not_the_settings_of_the_pool_that_runs_a_step(svc) -> None:
    """A CPU pool with another composite setting builds what the plan says,
    under the key that names it."""
    record = new_job(svc, "two-pools", mode="portrait", styles=[])
    other = Services(small_settings(composite=CompositeParams(blur_radius=40)), svc.store,
                     svc.redis)  # fmt: skip
    _run_job(svc, "two-pools", composite_svc=other)
    plan = load_plan(record)
    assert plan.composite.blur_radius == svc.settings.composite.blur_radius != 40
    result_key = record.status().styles[0].result_key
    assert result_key == plan.result_key(None)
    # The same job composited with the other pool's setting would look different.
    again = new_job(other, "other-plan", mode="portrait", styles=[])
    _run_job(other, "other-plan")
    assert again.status().styles[0].result_key != result_key


def test_a_float32_worker_optimizes_in_the_precision_the_plan_names(svc) -> None:
    """A bfloat16 worker resolved the job and a float32 worker stylizes it:
    the picture is made in bfloat16 (its metadata says so) under the key that
    names bfloat16, and a float32 job of the same request gets its own."""
    from worker.pipeline.png import read_metadata

    half_settings = small_settings()
    half_settings.compute.precision = "mixed_bfloat16"
    half = Services(half_settings, svc.store, svc.redis)
    record = new_job(svc, "mixed-fleet", options={"seed": 3})
    opened = steps.segment_step(half, "mixed-fleet")  # the plan is resolved here
    for index in opened:
        steps.stylize_step(svc, "mixed-fleet", index)
    plan = load_plan(record)
    work = svc.settings.storage.work_bucket
    stylized = svc.store.get(work, plan.stylized_key(record.field("style_sha", 0)))
    assert read_metadata(stylized)["precision"] == plan.precision == "mixed_bfloat16"
    full = new_job(svc, "float32-only", options={"seed": 3})
    _run_job(svc, "float32-only")
    full_plan = load_plan(full)
    assert full_plan.precision == "float32"
    assert full_plan.stylized_key("x") != plan.stylized_key("x")
    # Its own picture and its own content features: nothing of the bfloat16
    # job's was reused.
    mine = svc.store.get(work, full_plan.stylized_key(full.field("style_sha", 0)))
    assert read_metadata(mine)["precision"] == "float32"
    counters = full.status().counters
    assert counters["content_features"] == 1 and "content_features_reused" not in counters


def test_a_default_plan_is_stored_in_the_form_the_workers_before_read(svc) -> None:
    """A plan in float32 with the default models is stored without the fields
    that name them, so a worker of the version before them (extra="forbid")
    still reads it mid-update; another value is stored with its field (an old
    worker refuses that job, never mislabels it)."""
    import json

    from worker.service.plan import JobPlan, store_plan

    added = {"precision": "mixed_bfloat16", "segmenter_model": "deeplab-mnv2-dm05-tflite",
             "feature_net": "vgg19-imagenet"}  # fmt: skip
    for field, value in [(None, None), *added.items()]:
        record = new_job(svc, f"plan-{field}")
        plan = JobPlan.resolve(record.request(), svc.settings, "0" * 64)
        stored = store_plan(record, plan.model_copy(update={field: value} if field else {}))
        assert stored == plan.model_copy(update={field: value} if field else {})
        assert set(json.loads(record.field("plan"))) & set(added) == ({field} if field else set())


def _models_naming_vgg19(tmp_path: Path) -> Path:
    """The shared models plus a VGG19 file: a worker resolving a plan with
    it names VGG19 (resolving only looks for the file; it cannot load it)."""
    from worker.pipeline.weights import VGG19_FILENAME

    models = tmp_path / "models"
    models.mkdir()
    for model in MODELS.iterdir():
        (models / model.name).symlink_to(model)
    (models / VGG19_FILENAME).write_bytes(b"")
    return models


def test_a_step_uses_the_models_the_plan_names_not_its_workers(svc, tmp_path) -> None:
    """A worker with the lighter DeepLab and a VGG19 file resolved the job: a
    redelivered segment step on a default worker segments with the lighter
    model (the mask's key names it), and a worker without VGG19 refuses to
    paint rather than store its VGG16's picture under the VGG19 key."""
    from api_contracts.errors import BackdropError, ErrorCode
    from worker.pipeline.intake import decode_image
    from worker.pipeline.segmentation import segmentation_input, subject_class_ids, subject_mask
    from worker.runtime.model_cache import get_segmenter
    from worker.service.artifacts import decode_mask, encode_mask, working_photo
    from worker.service.plan import JobPlan, store_plan

    other_models = _models_naming_vgg19(tmp_path)
    other = small_settings(models_dir=other_models)
    other.segmentation.tflite_model = "deeplab-mnv2-dm05-tflite"
    record = new_job(svc, "their-models")
    plan = JobPlan.resolve(record.request(), other, "0" * 64)
    assert (plan.segmenter_model, plan.feature_net) == (
        "deeplab-mnv2-dm05-tflite",
        "vgg19-imagenet",
    )
    store_plan(record, plan)  # their segment step stored the plan, then died
    steps.segment_step(svc, "their-models")
    work = svc.settings.storage.work_bucket
    mask = decode_mask(svc.store.get(work, plan.mask_key()))
    photo = working_photo(svc, plan)
    full = segmentation_input(decode_image((PHOTOS / "grace_hopper.png").read_bytes(), plan.limits))
    ids = subject_class_ids(plan.subjects)

    def mask_of(model: str) -> np.ndarray:
        return subject_mask(
            full, get_segmenter(svc.settings, "tflite", model), ids, photo.shape[:2]
        )

    lighter, default = mask_of("deeplab-mnv2-dm05-tflite"), mask_of("deeplab-mnv2-tflite")
    assert encode_mask(lighter) != encode_mask(default), "the models must disagree as stored"
    assert np.array_equal(mask, decode_mask(encode_mask(lighter)))
    with pytest.raises(BackdropError) as refused:
        steps.stylize_step(svc, "their-models", 0)
    assert refused.value.code == ErrorCode.MODEL_UNAVAILABLE and "vgg19" in str(refused.value)
    assert not svc.store.exists(work, plan.stylized_key(record.field("style_sha", 0)))


def test_a_batched_output_missing_its_model_tells_no_path(svc, tmp_path) -> None:
    """The batch's own failures are recorded without the guard: the dial's
    judge network (VGG19, named by the plan) missing here must be told as
    the guard tells it, not with this worker's models directory."""
    from api_contracts.errors import ErrorCode
    from worker.service import stylize_steps
    from worker.service.plan import JobPlan, store_plan

    other_models = _models_naming_vgg19(tmp_path)
    other = small_settings(models_dir=other_models)
    other.compute.dial = "calibrated"  # its judge is the plan's network
    record = new_job(svc, "no-vgg19")
    store_plan(record, JobPlan.resolve(record.request(), other, "0" * 64))
    list(steps.segment_step(svc, "no-vgg19"))
    batch = stylize_steps.prepare_batch(svc, "no-vgg19", [0])
    [(index, code, message)] = batch.failed
    assert (index, code) == (0, ErrorCode.MODEL_UNAVAILABLE)
    assert "/" not in message and "logged under this job's id" in message


def test_a_stored_plan_naming_an_unbounded_or_unknown_model_ends_with_a_code(svc) -> None:
    """A plan record tampered with or corrupted: a model name of 10 KB is a
    corrupt record (never echoed into a status), an unknown one fails the
    segment step with MODEL_UNAVAILABLE."""
    import json

    from api_contracts.errors import BackdropError, ErrorCode
    from jobstore.records import CorruptRecord
    from worker.service.plan import JobPlan

    for job_id, name in (("huge", "m" * 10_000), ("unknown", "no-such-deeplab")):
        record = new_job(svc, job_id)
        plan = JobPlan.resolve(record.request(), svc.settings, "0" * 64)
        stored = {**json.loads(plan.model_dump_json()), "segmenter_model": name}
        record.set_once("plan", json.dumps(stored))
        if job_id == "huge":
            with pytest.raises(CorruptRecord):
                load_plan(record)
            continue
        with pytest.raises(BackdropError) as refused:
            steps.segment_step(svc, job_id)
        assert refused.value.code == ErrorCode.MODEL_UNAVAILABLE and len(str(refused.value)) < 300


def test_an_output_index_outside_the_plan_is_refused(svc) -> None:
    record = new_job(svc, "bad-index")
    steps.segment_step(svc, "bad-index")
    from api_contracts.errors import BackdropError

    for index in (1, -1, "0", True):
        with pytest.raises(BackdropError, match=r"output|index"):
            steps.stylize_step(svc, "bad-index", index)  # type: ignore[arg-type]
    assert record.status().styles[0].state == JobState.QUEUED, "nothing was touched"


def test_a_photo_is_segmented_once_for_two_jobs(svc) -> None:
    first, second = (
        new_job(svc, "a", mode="portrait", styles=[]),
        new_job(svc, "b", mode="portrait", styles=[]),
    )
    _run_job(svc, "a")
    _run_job(svc, "b")
    assert first.status().counters.get("segment") == 1
    assert second.status().counters.get("mask_reused") == 1
    a, b = (svc.store.get(svc.settings.storage.results_bucket, r.status().styles[0].result_key)
            for r in (first, second))  # fmt: skip
    assert np.array_equal(decode_png(a), decode_png(b))


def test_a_result_older_than_a_record_can_outlive_is_made_anew(svc) -> None:
    """The results bucket forgets an object results_expiry_days (30) after it
    was written; a job record lives 7 days. A 25-day-old result served to a
    new job would vanish while its status still names it: it is made again
    (restarting its clock), and a fresh one is reused."""
    import os
    import time

    first = new_job(svc, "a")
    _run_job(svc, "a")
    key = first.status().styles[0].result_key
    path = svc.store.root / svc.settings.storage.results_bucket / key
    old = time.time() - 25 * 86400
    os.utime(path, (old, old))
    second = new_job(svc, "b")
    _run_job(svc, "b")
    assert second.status().styles[0].result_key == key
    assert "result_reused" not in second.status().counters
    assert svc.store.age(svc.settings.storage.results_bucket, key).days == 0, "written again"
    third = new_job(svc, "c")
    _run_job(svc, "c")
    assert third.status().counters.get("result_reused") == 1


def test_a_result_that_aged_between_the_two_steps_is_reused_not_failed(svc) -> None:
    """The stylize step reused a result, which crossed the reuse window before
    the composite step looked (its stylized image long gone): the composite
    step follows the stylize step's choice rather than fail the output."""
    import os
    import time

    first = new_job(svc, "a")
    _run_job(svc, "a")
    key = first.status().styles[0].result_key
    second = new_job(svc, "b")
    [index] = list(steps.segment_step(svc, "b"))
    steps.stylize_step(svc, "b", index)  # reuses the result: nothing stylized
    work = svc.settings.storage.work_bucket
    svc.store.delete(work, load_plan(second).stylized_key(second.field("style_sha", index)))
    old = time.time() - 25 * 86400
    os.utime(svc.store.root / svc.settings.storage.results_bucket / key, (old, old))
    assert steps.composite_step(svc, "b", index)
    assert second.status().styles[0].result_key == key
    assert second.status().counters.get("result_reused") == 1


def test_intermediates_sharpen_in_the_status_before_the_result(svc) -> None:
    record = new_job(svc, "latest", options={"iterations": 8})
    _run_job(svc, "latest")
    status = record.status()
    output = status.styles[0]
    assert status.counters["latest"] == 3, "at 25, 50 and 75% of 8 iterations"
    assert output.latest_key and output.preview_key and output.result_key
    bucket = svc.settings.storage.results_bucket
    keys = (output.latest_key, output.result_key)
    latest, final = (decode_png(svc.store.get(bucket, k)) for k in keys)
    assert latest.shape == final.shape and not np.array_equal(latest, final)


@pytest.mark.parametrize(("mode", "output"), [("full", "working"), ("background", "working"),
                                            ("full", "original")])  # fmt: skip
def test_strength_reaches_the_plan_and_zero_gives_the_photo_back(svc, mode, output) -> None:
    """As the contract says, bit for bit: the subject's edge was matted over
    it (background: up to 58 levels in 889 pixels) and the original size
    was the working photo upsampled (up to 127 levels)."""
    from worker.service.artifacts import working_photo

    options = {"strength": 0.0, "iterations": 4, "output": output}
    record = new_job(svc, "weak", mode=mode, options=options)
    _run_job(svc, "weak")
    plan = load_plan(record)
    assert plan.params.strength == 0.0
    png = svc.store.get(svc.settings.storage.results_bucket, record.status().styles[0].result_key)
    photo = read_rgb(PHOTOS / "grace_hopper.png") if output == "original" else (
        working_photo(svc, plan))  # fmt: skip
    assert np.array_equal(decode_png(png), photo)


def test_output_original_gives_the_uploads_size(svc) -> None:
    record = new_job(svc, "full", options={"output": "original", "iterations": 4})
    _run_job(svc, "full")
    key = record.status().styles[0].result_key
    result = decode_png(svc.store.get(svc.settings.storage.results_bucket, key))
    assert result.shape == (600, 512, 3), "grace_hopper.png's own size, not the working 96 px"


def test_quality_high_with_output_original_paints_above_the_working_size(svc) -> None:
    """The stylize step stores the image painted at the paint size (in tiles
    here), the composite step brings it to the upload's size."""
    from worker.pipeline.paint_full import PaintParams

    paint = PaintParams(max_side=192, iterations=2, tile_pixels=96 * 96, tile_overlap=16)
    painting = Services(small_settings(paint_full=paint), svc.store, svc.redis)
    record = new_job(painting, "painted", options={"output": "original", "quality": "high"})
    _run_job(painting, "painted")
    status = record.status()
    assert status.state == JobState.SUCCEEDED, status
    plan = load_plan(record)
    assert plan.paint == paint
    work = painting.settings.storage.work_bucket
    stylized = decode_png(painting.store.get(work, plan.stylized_key(record.field("style_sha", 0))))
    assert stylized.shape == (192, 164, 3), "painted at 192 px, above the working 96 px"
    png = painting.store.get(painting.settings.storage.results_bucket, status.styles[0].result_key)
    assert decode_png(png).shape == (600, 512, 3)


def test_dual_mode_through_the_steps_paints_each_region_in_its_own_painting(svc) -> None:
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.measures import style_distance
    from worker.service.artifacts import subject_mask_of, working_photo
    from worker.service.keys import content_hash

    sketch = upload(svc, STYLES / "sketch.jpg")
    record = new_job(svc, "dual", mode="dual", subject_style={"key": sketch},
                     options={"iterations": 30})  # fmt: skip
    _run_job(svc, "dual")
    status = record.status()
    assert status.state == JobState.SUCCEEDED, status
    plan = load_plan(record)
    photo = working_photo(svc, plan)
    mask = subject_mask_of(svc, plan, photo.shape)
    key = status.styles[0].result_key
    image = decode_png(svc.store.get(svc.settings.storage.results_bucket, key))
    net = load_feature_net((plan.params.content_layer, *plan.params.style_layers), MODELS)
    from worker.pipeline.intake import to_working_size

    # As the optimization saw them: scaled to the working size (style_scale 1).
    painting = {n: to_working_size(read_rgb(STYLES / f"{n}.jpg"), plan.size)
                for n in ("starry", "sketch")}  # fmt: skip

    def dist(name: str, region: np.ndarray) -> float:
        return style_distance(net, image, painting[name], plan.params.style_layers, region)

    assert dist("sketch", mask) < dist("starry", mask), "the person in the subject painting"
    assert dist("starry", 1 - mask) < dist("sketch", 1 - mask), "the rest in the background's"
    # Not a blend of the same two paintings: its own key.
    assert plan.result_key(content_hash(b"x")) != key


def test_a_cancel_seen_by_a_step_before_the_client_ends_the_job_is_cancelled(svc) -> None:
    """The client sets the flag, then ends the job: a step that sees the flag
    in between must end it CANCELLED too, not FAILED."""
    from api_contracts.models import JobError
    from worker.service.guard import record_failure

    record = new_job(svc, "race")
    record.request_cancel()  # the client's first move
    record_failure(record, None, "CANCELLED", "cancelled by request", lambda _: None)  # type: ignore[arg-type]
    error = JobError(code="CANCELLED", message="cancelled by request")
    assert not record.finish(JobState.CANCELLED, error, JobState.CANCELLED), "ended already"
    status = record.status()
    assert status.state == JobState.CANCELLED and status.styles[0].state == JobState.CANCELLED


def test_the_instant_preview_goes_in_with_the_quick_edge_and_the_result_with_the_matte(
    svc,
) -> None:
    """The preview is the time until a person sees something: it is composited
    with the guided filter's edge (milliseconds), the result with the matte
    (about a second at 512 px), which the composite step makes."""
    from worker.pipeline.stages import composite_stage
    from worker.service import artifacts

    record = new_job(svc, "quick", options={"quality": "preview"})
    _run_job(svc, "quick")
    plan = load_plan(record)
    assert plan.quick_preview_edge and plan.composite.edge == "matting"
    output, storage = record.status().styles[0], svc.settings.storage
    preview, result = (decode_png(svc.store.get(storage.results_bucket, key))
                       for key in (output.preview_key, output.result_key))  # fmt: skip
    photo = artifacts.working_photo(svc, plan)
    stylized_key = plan.stylized_key(record.field("style_sha", 0))
    stylized = decode_png(svc.store.get(storage.work_bucket, stylized_key))
    mask = artifacts.subject_mask_of(svc, plan, photo.shape)
    guided = plan.composite.model_copy(update={"edge": "guided"})
    assert np.array_equal(preview, composite_stage(photo, mask, stylized, plan.mode, guided)[1])
    edge = artifacts.subject_edge(svc, plan, photo)
    matted = composite_stage(photo, edge.alpha, stylized, plan.mode, plan.composite, edge=edge)
    assert np.array_equal(result, matted[1])
    assert not np.array_equal(preview, result), "the two edges differ in the band"


def test_the_optimization_times_out_by_the_tasks_start_not_its_own(svc) -> None:
    """The loops' own check of the soft limit (AutoGraph may swallow Celery's
    signal) counts the preparation: a dial's calibration or 16 paintings'
    decoding before the first iteration must not push it past the hard kill."""
    import time

    from celery.exceptions import SoftTimeLimitExceeded

    from worker.service import stylize_steps

    new_job(svc, "late")
    list(steps.segment_step(svc, "late"))
    started = time.monotonic()
    batch = stylize_steps.prepare_batch(svc, "late", [0])
    limit = svc.settings.queue.soft_time_limit
    assert started < batch.deadline - limit < time.monotonic(), "taken as the task began"
    batch.deadline = time.monotonic() - 1  # the preparation spent the task's time
    with pytest.raises(SoftTimeLimitExceeded):
        stylize_steps.optimize_batch(svc, batch)
