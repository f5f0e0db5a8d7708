"""One job, all stages, in this process: the embedded mode behind `backdrop run`.

No Redis, no object store: bytes in, arrays out. The queue's tasks call the
same stage functions, one stage per task.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from api_contracts.errors import BackdropError
from worker.model_cache import get_feature_net, get_previewer, get_segmenter
from worker.pipeline import intake
from worker.pipeline.composite import Mode, composite, portrait_blur, refine_mask
from worker.pipeline.segmentation import (
    require_subject,
    segmentation_input,
    subject_class_ids,
    subject_mask,
)
from worker.pipeline.style import StyleProgress, blend_weights, stylize
from worker.pipeline.style_params import StyleParams
from worker.settings import Settings

log = logging.getLogger(__name__)

REFERENCE_SIDE = 512

# Stage callback: (stage name, style progress or None when the stage starts/ends).
ProgressFn = Callable[[str, StyleProgress | None], None]


@dataclass
class LocalJob:
    photo: bytes
    styles: Sequence[tuple[bytes, float]]
    mode: Mode = "background"
    subjects: tuple[str, ...] = ("person",)
    params: StyleParams = field(default_factory=StyleParams)
    # Composite at the photo's own resolution (stylized image and mask upscaled)
    # instead of returning the working-resolution result.
    keep_original_size: bool = False
    # An image to start the optimization from (encoded bytes), e.g. a preview.
    init_image: bytes | None = None
    # preview: the feed-forward network alone; standard: the optimization.
    quality: str = "standard"


@dataclass
class LocalResult:
    photo: np.ndarray
    mask: np.ndarray  # refined alpha, float32 0..1 (all ones in 'full' mode)
    stylized: np.ndarray | None
    result: np.ndarray
    metadata: dict[str, Any]


def limits_of(settings: Settings) -> intake.IntakeLimits:
    s = settings.intake
    return intake.IntakeLimits(s.max_bytes, s.max_pixels, s.min_side, s.max_side)


def decode_styles(
    styles: Sequence[tuple[bytes, float]], settings: Settings
) -> list[tuple[np.ndarray, float]]:
    decoded = []
    for number, (data, weight) in enumerate(styles, start=1):
        try:
            decoded.append((intake.load_photo(data, limits_of(settings)), weight))
        except BackdropError as exc:
            raise BackdropError(exc.code, f"style {number}: {exc.message}") from None
    return decoded


def run_local(job: LocalJob, settings: Settings, progress: ProgressFn | None = None) -> LocalResult:
    notify = progress or (lambda stage, p: None)
    # Everything that can be refused without pixels is refused before any work.
    class_ids = subject_class_ids(job.subjects)
    if job.mode != "portrait":
        blend_weights(job.styles)
    notify("intake", None)
    full = intake.decode_image(job.photo, limits_of(settings))
    photo = intake.to_working_size(full, settings.intake.max_side)
    styles = decode_styles(job.styles, settings) if job.mode != "portrait" else []
    meta: dict[str, Any] = {"mode": job.mode, "size": list(photo.shape[:2])}

    notify("segment", None)
    mask = np.ones(photo.shape[:2], np.float32)
    if job.mode != "full":
        segmenter = get_segmenter(settings)
        mask = subject_mask(segmentation_input(full), segmenter, class_ids, photo.shape[:2])
        require_subject(mask, settings.segmentation.min_subject_fraction, job.subjects)
        meta["segmenter"] = segmenter.name

    stylized = None
    if job.mode != "portrait" and job.quality == "preview":
        notify("preview", None)
        previewer = get_previewer()
        stylized = previewer.stylize(photo, styles)
        meta["stylizer"] = previewer.name
    elif job.mode != "portrait":
        net = get_feature_net(job.params, settings)
        meta["feature_net"] = net.name
        log.info("stylizing with %s", net.name)
        init = None
        if job.init_image is not None:
            init = intake.load_photo(job.init_image, limits_of(settings))
        last = None
        for last in stylize(
            photo, styles, job.params, net, init_image=init, xla=settings.compute.xla
        ):
            notify("stylize", last)
        assert last is not None and last.image is not None
        stylized = last.image
        meta["losses"] = last.losses

    notify("composite", None)
    if job.keep_original_size and full.shape != photo.shape:
        photo, mask, stylized = _upscale(full, mask, stylized)
    alpha, result = composite_stage(photo, mask, stylized, job.mode, settings)
    meta["params"] = job.params.model_dump(mode="json")
    return LocalResult(photo, alpha, stylized, result, meta)


def composite_stage(
    photo: np.ndarray, mask: np.ndarray, stylized: np.ndarray | None, mode: Mode, settings: Settings
) -> tuple[np.ndarray, np.ndarray]:
    """Refine the mask to the photo's edges and build the result of the mode."""
    c = settings.composite
    # Radii are set for a 512 px photo and scale with it, so a result looks
    # the same at any working size.
    scale = max(photo.shape[:2]) / REFERENCE_SIDE
    radius = max(1, round(c.guided_radius * scale))
    alpha = mask if mode == "full" else refine_mask(mask, photo, radius, c.guided_eps)
    if mode == "portrait":
        blur = max(1, round(c.blur_radius * scale))
        return alpha, portrait_blur(photo, alpha, blur, margin=max(2, radius))
    assert stylized is not None
    return alpha, composite(photo, stylized, alpha, mode)


def _upscale(
    full: np.ndarray, mask: np.ndarray, stylized: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    size = (full.shape[1], full.shape[0])
    big_mask = cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR)
    big_stylized = (
        None if stylized is None else cv2.resize(stylized, size, interpolation=cv2.INTER_CUBIC)
    )
    return full, big_mask, big_stylized
