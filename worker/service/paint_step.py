"""Painting detail at full resolution, inside the stylize step: for `quality:
high` with `output: original` each optimized image is painted on at the paint
size (worker.pipeline.paint_full) before it is stored under its stylized key,
which names the paint settings (JobPlan.params_key). The composite step then
upsamples from that size, guided by the same photo at the same size.
"""

import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from jobstore.records import JobRecord
from worker.pipeline import intake
from worker.pipeline.paint_full import paint_steps
from worker.pipeline.png import decode_png, encode_png
from worker.pipeline.stages import Painting
from worker.service import artifacts
from worker.service.context import Cancelled, Services
from worker.service.plan import JobPlan
from worker.service.plan_models import plan_feature_net


def paint_photo(services: Services, plan: JobPlan) -> np.ndarray:
    """The photo at the paint size, made once per job (by its first stylize
    step) and read by the composite step: both see the same pixels."""
    assert plan.paint is not None
    side = plan.paint.max_side

    def make() -> np.ndarray:
        data = artifacts.photo_bytes(services, plan.photo_key)
        return intake.to_working_size(intake.decode_image(data, plan.limits), side)

    photo, _ = artifacts.produce_once(services, plan.paint_photo_key(), make, encode_png,
                                      decode_png, "image/png")  # fmt: skip
    return photo


class Output(Protocol):
    """What painting one output needs (stylize_steps.Prepared has it)."""

    index: int
    paintings: list[Painting]
    regions: list[np.ndarray] | None
    gain: float


def paint_all(
    services: Services, record: JobRecord, plan: JobPlan, group: Sequence[Output],
    images: list[np.ndarray], hold: tuple[int, float],
) -> list[np.ndarray]:  # fmt: skip
    """Each output's optimized image painted at the paint size, one by one.
    `hold`: the progress percent kept meanwhile (each report refreshes the
    record for the sweep) and the step's deadline, checked here as the
    optimization does."""
    photo = paint_photo(services, plan)
    return [_painted(services, record, plan, p, image, photo, hold)
            for p, image in zip(group, images, strict=True)]  # fmt: skip


def _painted(
    services: Services, record: JobRecord, plan: JobPlan, output: Output, image: np.ndarray,
    photo: np.ndarray, hold: tuple[int, float],
) -> np.ndarray:  # fmt: skip
    assert plan.paint is not None
    percent, deadline = hold
    settings = services.settings
    net = plan_feature_net(plan, settings)
    every = settings.compute.lbfgs_round_trip(settings.compute.lbfgs_every)
    steps = paint_steps(photo, image, output.paintings, plan.params, plan.paint, net,
                        regions=output.regions, lbfgs_every=every, xla=settings.compute.xla,
                        gain=output.gain)  # fmt: skip
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return np.asarray(done.value)
        if time.monotonic() > deadline:
            raise SoftTimeLimitExceeded()
        record.progress(output.index, percent)
        if record.cancelled():
            raise Cancelled
