"""Results that sharpen as they run: the instant preview, then the latest
intermediate at about 25, 50 and 75% of the iterations, each composited with
the job's mask and shown in the status (`preview_key`, `latest_key`)."""

import numpy as np

from jobstore.records import JobRecord
from worker.pipeline.matting import Edge
from worker.pipeline.png import encode_png
from worker.pipeline.stages import composite_stage
from worker.pipeline.style_params import preview_mix
from worker.runtime.model_cache import get_previewer
from worker.service import artifacts, metrics
from worker.service.context import Services
from worker.service.plan import JobPlan

LATEST_PARTS = 4  # intermediates at 1/4, 2/4 and 3/4 of the iterations


def latest_every(plan: JobPlan) -> int:
    """Iterations between intermediates (0: none, for very short runs)."""
    every = plan.params.iterations // LATEST_PARTS
    return every if every >= 1 and plan.quality != "preview" else 0


def publish_preview(
    services: Services, record: JobRecord, plan: JobPlan, index: int, photo: np.ndarray,
    slots: list[tuple[np.ndarray, float]], regions: list[np.ndarray] | None, style_sha: str,
) -> np.ndarray:  # fmt: skip
    """The feed-forward stylization (one pass per painting, joined by the
    regions), shown at once; returns it uncomposited."""
    mix = preview_mix(plan.params.strength)
    with metrics.timed("preview"):  # the time until a person sees something
        preview = get_previewer().stylize_regions(photo, slots, regions, mix)
        key = plan.preview_key(style_sha)
        edge = artifacts.preview_edge(services, plan, photo)
        _publish(services, plan, photo, preview, key, {"preview": True}, edge)
    record.set(output=index, preview_key=key)
    record.progress(index, 1)
    record.count("preview")
    return preview


def publish_latest(
    services: Services, record: JobRecord, plan: JobPlan, index: int,
    photo: np.ndarray, image: np.ndarray, style_sha: str,
) -> None:  # fmt: skip
    """The optimization so far, shown as the output's `latest_key`."""
    key = plan.latest_key(style_sha)
    edge = artifacts.subject_edge(services, plan, photo)
    _publish(services, plan, photo, image, key, {"latest": True}, edge)
    record.set(output=index, latest_key=key)
    record.count("latest")


def _publish(
    services: Services, plan: JobPlan, photo: np.ndarray, stylized: np.ndarray, key: str,
    meta: dict[str, object], edge: Edge,
) -> None:  # fmt: skip
    _, shown = composite_stage(photo, edge.alpha, stylized, plan.mode, plan.composite, edge=edge)
    # No job id or output index: the picture is stored under a content key and
    # served to any later job, of any tenant, that asks for the same picture.
    services.store.put(services.settings.storage.results_bucket, key, encode_png(shown, meta),
                       "image/png")  # fmt: skip
