"""One job, all stages, in this process: the embedded mode behind `backdrop run`.

No Redis, no object store: bytes in, arrays out. The queue's steps read the
same mode table (worker.pipeline.stages), one stage per task.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.pipeline import intake
from worker.pipeline.features import FeatureNet, preferred_network
from worker.pipeline.full_resolution import composite_full
from worker.pipeline.paint_full import paint_full
from worker.pipeline.segmentation import (
    require_subject,
    segmentation_input,
    subject_class_ids,
    subject_mask,
)
from worker.pipeline.stages import (
    Painting,
    composite_stage,
    mode_of,
    paint_regions,
    refined_edge,
)
from worker.pipeline.strength_dial import DialCurve, calibrate, gain_for
from worker.pipeline.style import StyleProgress, blend_weights, stylize
from worker.pipeline.style_params import StyleParams, preview_mix
from worker.runtime.model_cache import get_feature_net, get_judge_net, get_previewer, get_segmenter
from worker.runtime.settings import Settings

log = logging.getLogger(__name__)

# Stage callback: (stage name, style progress or None when the stage starts/ends).
ProgressFn = Callable[[str, StyleProgress | None], None]


@dataclass
class LocalJob:
    photo: bytes
    styles: Sequence[tuple[bytes, float]]
    mode: str = "background"
    subjects: tuple[str, ...] = ("person",)
    params: StyleParams = field(default_factory=StyleParams)
    # Composite at the photo's own resolution (stylized image and mask upscaled)
    # instead of returning the working-resolution result.
    keep_original_size: bool = False
    # An image to start the optimization from (encoded bytes); over params.init.
    init_image: bytes | None = None
    # preview: the feed-forward network alone; standard: the optimization.
    quality: str = "standard"
    # Two-painting modes (dual): the subject's painting, encoded, with its weight.
    subject_style: tuple[bytes, float] | None = None


@dataclass
class LocalResult:
    photo: np.ndarray
    mask: np.ndarray  # refined alpha, float32 0..1 (all ones in 'full' mode)
    stylized: np.ndarray | None
    result: np.ndarray
    metadata: dict[str, Any]


def run_local(job: LocalJob, settings: Settings, progress: ProgressFn | None = None) -> LocalResult:
    notify = progress or (lambda stage, p: None)
    # Everything that can be refused without pixels is refused before any work.
    mode = mode_of(job.mode)
    class_ids = subject_class_ids(job.subjects)
    if mode.stylizes:
        blend_weights(job.styles)
    notify("intake", None)
    limits = settings.intake_limits()
    full = intake.decode_image(job.photo, limits)
    photo = intake.to_working_size(full, limits.max_side)
    styles = intake.load_styles(job.styles, limits) if mode.stylizes else []
    meta: dict[str, Any] = {"mode": job.mode, "size": list(photo.shape[:2])}

    notify("segment", None)
    mask = np.ones(photo.shape[:2], np.float32)
    if mode.segments:
        segmenter = get_segmenter(settings)
        mask = subject_mask(segmentation_input(full), segmenter, class_ids, photo.shape[:2])
        require_subject(mask, settings.segmentation.min_subject_fraction, job.subjects)
        meta["segmenter"] = segmenter.name

    # The edge once, for the painting regions and the working-size result.
    edge = refined_edge(photo, mask, settings.composite) if mode.segments else None
    stylized = None
    if mode.stylizes:
        subject = None
        if job.subject_style is not None:
            subject = intake.load_styles([job.subject_style], limits)[0]
        alpha = mask if edge is None else edge.alpha
        slots, regions = paint_regions(job.mode, subject, styles, alpha)
        stylized = _stylized(job, photo, (slots, regions), settings, notify, meta)
    guide = photo  # what the stylized image is upsampled against: the photo at its size
    if stylized is not None and job.quality == "high" and job.keep_original_size:
        notify("paint", None)
        guide, stylized = _painted(job, (full, photo), stylized, (slots, regions), settings, meta)

    notify("composite", None)
    if job.keep_original_size and full.shape != photo.shape:
        # The queue's `output: original` path: edge-aware, strip by strip.
        alpha8, result = composite_full(full, guide, mask, stylized, job.mode, settings.composite)
        photo, alpha = full, alpha8.astype(np.float32) / 255.0
    else:
        alpha, result = composite_stage(photo, mask, stylized, job.mode, settings.composite,
                                        edge=edge)  # fmt: skip
    if mode.stylizes and job.params.strength == 0:
        result = photo.copy()  # the contract: 0 gives the photo back (no matting, no upsampling)
    meta["params"] = job.params.model_dump(mode="json")
    return LocalResult(photo, alpha, stylized, result, meta)


def _stylized(
    job: LocalJob, photo: np.ndarray,
    paintings: tuple[list[Painting], list[np.ndarray] | None],
    settings: Settings, notify: ProgressFn, meta: dict[str, Any],
) -> np.ndarray:  # fmt: skip
    styles, regions = paintings
    mix = preview_mix(job.params.strength)
    if job.quality == "preview":
        notify("preview", None)
        previewer = get_previewer()
        meta["stylizer"] = previewer.name
        return previewer.stylize_regions(photo, styles, regions, mix)
    init = None
    if job.init_image is not None:
        init = intake.load_photo(job.init_image, settings.intake_limits())
        meta["init_image"] = True
    elif job.params.init == "preview":  # the preview step, then the optimization from it
        notify("preview", None)
        init = get_previewer().stylize_regions(photo, styles, regions, mix)
    net = _feature_net(job.params, settings)
    meta["feature_net"] = net.name
    log.info("stylizing with %s", net.name)

    def dial() -> DialCurve:  # the strength dial calibrated on this photo and painting
        notify("dial", None)
        start = init if job.params.init == "preview" else None
        return calibrate(photo, styles, job.params, net, get_judge_net(settings, net.name),
                         regions=regions, init_image=start)  # fmt: skip

    gain = gain_for(job.params.strength, None if settings.compute.dial == "fixed" else dial)
    meta["gain"] = gain
    last = None
    round_trip = settings.compute.lbfgs_round_trip(max(1, job.params.iterations // 20))
    steps = stylize(photo, styles, job.params, net, init_image=init, xla=settings.compute.xla,
                    regions=regions, lbfgs_every=round_trip, gain=gain)  # fmt: skip
    for last in steps:
        notify("stylize", last)
    assert last is not None and last.image is not None
    meta["losses"] = last.losses
    meta["iterations_run"] = last.iteration
    return last.image


def _painted(
    job: LocalJob, photos: tuple[np.ndarray, np.ndarray], stylized: np.ndarray,
    paintings: tuple[list[Painting], list[np.ndarray] | None], settings: Settings,
    meta: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Painting detail at up to paint_full.max_side px, as the queue's stylize
    step adds for quality high: (the photo at that size, the painted image).
    `photos`: the upload and the working photo."""
    full, photo = photos
    paint = settings.paint_full
    guide = intake.to_working_size(full, paint.max_side)
    net = _feature_net(job.params, settings)
    every = settings.compute.lbfgs_round_trip(settings.compute.lbfgs_every)
    gain = meta.get("gain")  # the strength gain the working size used
    image = paint_full(guide, stylized, paintings[0], job.params, paint, net,
                       regions=paintings[1], lbfgs_every=every, xla=settings.compute.xla,
                       gain=None if gain is None else float(gain))  # fmt: skip
    meta["painted_shape"] = list(image.shape[:2])
    # Nothing painted (the working size is not below paint_full.max_side): as before.
    return (guide, image) if image.shape == guide.shape else (photo, image)


def _feature_net(params: StyleParams, settings: Settings) -> FeatureNet:
    """This process's VGG: the network its models directory offers, in its
    precision (`backdrop run` resolves no plan: its settings are the job's)."""
    network = preferred_network(settings.models_dir)
    return get_feature_net(params, settings, settings.compute.precision, network)
