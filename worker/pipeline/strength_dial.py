"""The strength dial, even for every painting.

One fixed curve from strength to the style gain cannot be even: how soon a
painting's texture takes over a photo varies by painting (and photo). On the old
curve (gain (1024^s - 1) / (1024^0.8 - 1)) Grace Hopper with starry.jpg had
lost 99% of its judged style distance, in log, by strength 0.25 and the rest of
the dial only wore the face away: close to a switch.

So each output's dial is calibrated on its own photo and paintings. The
optimization runs at a small size (DIAL_SIDE, DIAL_ITERATIONS) at a ladder of
gains; the judge (worker.pipeline.judge: VGG statistics the loss never uses)
places each picture between the photo (position 0) and the strongest picture
(1, at MAX_GAIN); strength s then maps to the gain whose picture sits at s,
interpolated in log gain. A picture's position is the mean of two progresses:
its style distance to the painting, in log because it falls by decades, and
its content distance from the photo, linear (measured: about linear in log
gain over the whole ladder). Equal steps of the dial give equal steps of both
together.
"""

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from worker.pipeline.features import FeatureNet
from worker.pipeline.judge import judge

if TYPE_CHECKING:
    from worker.pipeline.style import StyleProgress
from worker.pipeline.style_params import StyleParams, strength_gain

MAX_GAIN = strength_gain(1.0)  # strength 1: the strongest picture that keeps faces (~4)
# Gains 4x apart (6e-5 .. MAX_GAIN): 8x apart, the position between two of them
# was off by up to 0.05 (the curve is S-shaped in log gain), which cost evenness.
LADDER = tuple(MAX_GAIN * 4.0**-k for k in range(8, -1, -1))
DIAL_SIDE = 128  # measured: a dial made at 64 px ran slow at 128 px at the low end
# The job's own iterations up to this many: a dial made with fewer iterations
# than the job's ran ahead of it at the low gains (measured: 40 against 60).
DIAL_ITERATIONS = 100
DIAL_VERSION = 2  # in every key a calibrated gain shaped


class DialCurve(BaseModel):
    """Where the picture sits (0 photo .. 1 strongest) at each gain of the ladder."""

    model_config = ConfigDict(frozen=True)

    gains: tuple[float, ...]  # ascending, from 0
    positions: tuple[float, ...]  # non-decreasing, 0 .. 1

    @model_validator(mode="after")
    def _shape(self) -> "DialCurve":
        if len(self.gains) != len(self.positions) or len(self.gains) < 2:
            raise ValueError("one position per gain, at least two")
        if self.gains[0] != 0 or any(b <= a for a, b in itertools.pairwise(self.gains)):
            raise ValueError("gains ascend from 0")
        return self

    def gain_at(self, strength: float) -> float:
        """The gain whose picture sits at `strength`; in log gain between ladder
        points, linear below the first (log 0 is no place)."""
        if strength <= 0:
            return 0.0
        p = np.maximum.accumulate(np.asarray(self.positions, np.float64))
        i = int(np.searchsorted(p, min(strength, p[-1]), side="left"))
        i = max(i, 1)
        lo, hi, g0, g1 = p[i - 1], p[i], self.gains[i - 1], self.gains[i]
        t = 1.0 if hi <= lo else (min(strength, p[-1]) - lo) / (hi - lo)
        if g0 == 0:
            return float(t * g1)
        return float(np.exp(np.log(g0) + t * (np.log(g1) - np.log(g0))))


def positions(style: Sequence[float], content: Sequence[float]) -> list[float]:
    """Each picture's place from the judge's distances, the first being the
    photo's own: 1 is the furthest along both (the strength 1 of a dial)."""
    s = np.log(np.maximum(np.asarray(style, np.float64), 1e-12))
    c = np.asarray(content, np.float64)
    # Spans to the furthest picture, not to the last: with a strong painting
    # (strokes.jpg on the dog photo) a middle gain's picture went further than
    # MAX_GAIN's, whose doubled tv weight smooths the strokes away.
    style_span, content_span = s[0] - s.min(), c.max() - c[0]
    style_progress = (s[0] - s) / style_span if style_span > 0 else np.ones_like(s)
    content_progress = (c - c[0]) / content_span if content_span > 0 else np.ones_like(c)
    both = 0.5 * (np.clip(style_progress, 0, 1) + np.clip(content_progress, 0, 1))
    both[0] = 0.0
    return [float(x) for x in both]


def evenness(places: Sequence[float]) -> float:
    """Smallest step / largest step between consecutive settings: 1 is even, 0
    a switch (or a step backwards)."""
    steps = np.diff(np.asarray(places, np.float64))
    return 0.0 if steps.max() <= 0 else float(max(steps.min(), 0.0) / steps.max())


def calibrate(
    photo: np.ndarray, styles: Sequence[tuple[np.ndarray, float]], params: StyleParams,
    net: FeatureNet, judge_net: FeatureNet, *, regions: Sequence[np.ndarray] | None = None,
    init_image: np.ndarray | None = None, side: int = DIAL_SIDE,
    iterations: int = DIAL_ITERATIONS,
) -> DialCurve:  # fmt: skip
    """Run the ladder on a small copy of the photo with the job's own recipe
    (its iterations up to `iterations`, one level) and place each picture."""
    from worker.pipeline.style import stylize  # TensorFlow only when calibrating

    small, scale = _small(photo, side)
    paintings = [(_resize(p, scale), w) for p, w in styles]
    masks = None if regions is None else [_resize(r, scale) for r in regions]
    start = None if init_image is None else _resize(init_image, scale, small.shape)
    recipe = ladder_recipe(params, iterations)
    style, content = [], []
    for gain in (0.0, *LADDER):
        image = small
        if gain > 0:
            run = stylize(small, paintings, recipe, net, regions=masks, init_image=start, gain=gain)
            image = _last_image(run)
        verdict = judge(judge_net, small, paintings, image, masks)
        style.append(verdict.style)
        content.append(verdict.content)
    return DialCurve(gains=(0.0, *LADDER), positions=tuple(positions(style, content)))


def ladder_recipe(params: StyleParams, iterations: int = DIAL_ITERATIONS) -> StyleParams:
    """The recipe the ladder runs: the job's, one level, its iterations up to
    `iterations`; validated, so a recipe that names the same optimization two
    ways (lbfgs_adam that never hands over is lbfgs) has one name, and one
    dial (JobPlan.dial_key keys the dial on this)."""
    short = {"iterations": min(iterations, params.iterations), "levels": 1}
    return StyleParams.model_validate({**params.model_dump(), **short})


def _last_image(run: Iterable["StyleProgress"]) -> np.ndarray:
    image = list(run)[-1].image
    assert image is not None  # the last progress of a run carries its result
    return image


def _small(photo: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, side / max(photo.shape[:2]))
    return _resize(photo, scale), scale


def _resize(image: np.ndarray, scale: float, shape: tuple[int, ...] | None = None) -> np.ndarray:
    h, w = image.shape[:2] if shape is None else shape[:2]
    size = (w, h) if shape is not None else (max(16, round(w * scale)), max(16, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def gain_for(strength: float, curve: Callable[[], DialCurve] | None) -> float:
    """The gain of one output: strength 0 is the photo (no calibration), above
    it the calibrated curve, whose 1 is the ladder's furthest picture (MAX_GAIN
    for most paintings); None: the fixed curve."""
    if strength <= 0:
        return 0.0
    return strength_gain(strength) if curve is None else curve().gain_at(strength)


def encode_curve(curve: DialCurve) -> bytes:
    return curve.model_dump_json().encode()


def decode_curve(data: bytes) -> DialCurve:
    return DialCurve.model_validate_json(data)
