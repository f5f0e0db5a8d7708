"""One output's strength gain: its dial calibrated on the job's working photo
and its paintings (worker.pipeline.strength_dial), made once and stored, so
every strength of the same photo, paintings and recipe reads the same dial."""

import numpy as np

from worker.pipeline.stages import Painting
from worker.pipeline.strength_dial import (
    DialCurve,
    calibrate,
    decode_curve,
    encode_curve,
    gain_for,
)
from worker.service import artifacts
from worker.service.context import Services
from worker.service.plan import JobPlan
from worker.service.plan_models import plan_feature_net, plan_judge_net


def output_gain(
    services: Services, plan: JobPlan, photo: np.ndarray, style_sha: str,
    paintings: list[Painting], regions: list[np.ndarray] | None, preview: np.ndarray,
) -> float:  # fmt: skip
    """The gain this output's strength stands for (0 and 1 need no dial)."""
    if plan.dial == "fixed":
        return gain_for(plan.params.strength, None)

    def make() -> DialCurve:
        settings = services.settings
        start = preview if plan.params.init == "preview" else None
        net = plan_feature_net(plan, settings)
        return calibrate(photo, paintings, plan.params, net, plan_judge_net(plan, settings),
                         regions=regions, init_image=start)  # fmt: skip

    def curve() -> DialCurve:
        return artifacts.produce_once(services, plan.dial_key(style_sha), make, encode_curve,
                                      decode_curve, "application/json")[0]  # fmt: skip

    return gain_for(plan.params.strength, curve)
