"""Parameters of the style optimization, with their defaults (TensorFlow-free).

The loss weights follow anishathalye/neural-style (content 5, style 500) except
the total-variation weight, 1 rather than 100: with our VGG16 (HED) features tv
100 outweighs the style term a hundredfold and the picture comes out as a blur.

The recipe does not follow it. neural-style runs 1000 Adam steps (lr 10 on
0..255 pixels) from noise; we start from the photo and run 100 L-BFGS steps at
one scale. Measured by benchmarks/time_to_quality.py on a 2-core Zen 4: at
256 px L-BFGS passes the classic recipe's final loss after ~40 s against its
~390 s, and at 512 px after ~57 s against 341 s for 300 Adam steps, where
Adam from the photo is still 10-20% above it at the same time and coarse-to-fine
levels made the full-size loss worse (the upsampled coarse image lacks the
fine texture the style loss measures at full size). learning_rate is Adam's
rate, and for L-BFGS the first step: how far (in pixel levels) the most-changed
pixel moves before any curvature is known; 1 left L-BFGS crawling at 512 px.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

VGG16_LAYERS = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3",
    "block4_conv1", "block4_conv2", "block4_conv3",
    "block5_conv1", "block5_conv2", "block5_conv3",
)  # fmt: skip
VGG19_EXTRA_LAYERS = ("block3_conv4", "block4_conv4", "block5_conv4")
KNOWN_LAYERS = frozenset(VGG16_LAYERS + VGG19_EXTRA_LAYERS)

DEFAULT_CONTENT_LAYER = "block4_conv2"
DEFAULT_STYLE_LAYERS = (
    "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1",
)  # fmt: skip
DEFAULT_CONTENT_WEIGHT = 5.0
DEFAULT_STYLE_WEIGHT = 500.0
DEFAULT_TV_WEIGHT = 1.0
DEFAULT_LEARNING_RATE = 10.0
DEFAULT_ITERATIONS = 100
DEFAULT_LEVELS = 1
DEFAULT_OPTIMIZER: Literal["adam", "lbfgs", "lbfgs_adam"] = "lbfgs"
# lbfgs_adam: L-BFGS for the first ADAM_AFTER iterations of each level, then
# Adam at POLISH_RATE from where it got. L-BFGS is the fast start (it passes
# the classic recipe's loss first on most pairs) but settles 1-3% above it on
# some (kite_and_cold with waves.jpg: 0.9% above after 1200 iterations); Adam
# from there goes on down (benchmarks.quality_pairs; README, "The road that
# reaches it"). A hand-over at 60 or 100 reached it later on 3 of 4 pairs
# measured, rate 3 (or 2) went down slower than 5. Both are in the output's
# key (JobPlan.params_key): change them and the pictures are made anew.
ADAM_AFTER = 200
POLISH_RATE = 5.0
# The strength dial: 0 is the photo, 1 the strongest picture that keeps the
# photo's shapes. It scales the style and tv weights by strength_gain (below);
# the default 0.8 is exactly the recipe above (gain 1), whose pictures and
# time-to-quality numbers were measured; at 1 (gain 4) faces still hold, at
# gain 16 they dissolve (Grace Hopper with starry.jpg, 160 px, side by side).
DEFAULT_STRENGTH = 0.8
STRENGTH_BASE = 1024.0  # gain rises ~ exponentially: equal steps look like equal steps
# The stopping rule (stop_below > 0) compares the loss with the loss this many
# iterations earlier (or the nearest earlier measurement: the device L-BFGS
# reports every few iterations).
STOP_WINDOW = 10


class StyleParams(BaseModel):
    """Everything that shapes a stylized image; part of an output's cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iterations: int = Field(DEFAULT_ITERATIONS, ge=1, le=20_000)
    content_weight: float = Field(DEFAULT_CONTENT_WEIGHT, ge=0, allow_inf_nan=False)
    style_weight: float = Field(DEFAULT_STYLE_WEIGHT, ge=0, allow_inf_nan=False)
    tv_weight: float = Field(DEFAULT_TV_WEIGHT, ge=0, allow_inf_nan=False)
    learning_rate: float = Field(DEFAULT_LEARNING_RATE, gt=0, allow_inf_nan=False)
    # lbfgs_adam of ADAM_AFTER iterations or fewer in all is lbfgs (and so named).
    optimizer: Literal["adam", "lbfgs", "lbfgs_adam"] = DEFAULT_OPTIMIZER
    # preview: the feed-forward preview computed before the optimization (the
    # caller passes it in; it is never recomputed here). palette: the photo
    # recoloured to the paintings' colour mean and covariance (worker.pipeline.palette).
    init: Literal["content", "noise", "preview", "palette"] = "content"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    # Coarse-to-fine: level k of n runs at size / 2**(n-1-k); iterations are
    # shared out so that each level gets an equal part.
    levels: int = Field(DEFAULT_LEVELS, ge=1, le=4)
    content_layer: str = DEFAULT_CONTENT_LAYER
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    # Size of the painting relative to the photo: >1 gives larger brush strokes.
    style_scale: float = Field(1.0, gt=0.1, le=4.0, allow_inf_nan=False)
    preserve_colors: bool = False
    strength: float = Field(DEFAULT_STRENGTH, ge=0.0, le=1.0, allow_inf_nan=False)
    # Stop a level early once the total loss fell by less than this fraction
    # over the last STOP_WINDOW iterations; 0: run every iteration.
    stop_below: float = Field(0.0, ge=0.0, lt=1.0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _polish_needs_room(cls, data: Any) -> Any:
        """One name for one picture: lbfgs_adam that never hands over is lbfgs.
        Never is judged on the whole budget, not on its share per level: a
        photo too thin for the coarse levels runs them all in one (stylize
        drops levels under MIN_LEVEL_SIDE), which would hand over after all."""
        if not isinstance(data, dict) or data.get("optimizer") != "lbfgs_adam":
            return data
        iterations = data.get("iterations", DEFAULT_ITERATIONS)
        if isinstance(iterations, int) and iterations <= ADAM_AFTER:
            return {**data, "optimizer": "lbfgs"}
        return data  # anything malformed is the fields' to refuse

    @field_validator("content_layer")
    @classmethod
    def _known_content_layer(cls, name: str) -> str:
        if name not in KNOWN_LAYERS:
            raise ValueError(f"unknown VGG layer {name!r}")
        return name

    @field_validator("style_layers")
    @classmethod
    def _known_style_layers(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("at least one style layer is needed")
        unknown = [n for n in names if n not in KNOWN_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG layer(s) {unknown}")
        return names


@dataclass(frozen=True)
class LossWeights:
    """The objective's three terms, by name, and each output's strength gain,
    which scales its style and tv terms (one output may be stronger than the
    next: the dial is calibrated per painting)."""

    content: float
    style: float
    tv: float
    gains: tuple[float, ...] = (1.0,)


def loss_weights(
    params: StyleParams, gains: Sequence[float] | None = None, count: int = 1
) -> LossWeights:
    """The one place the strength gain is resolved: each output's calibrated
    gain when given (worker.pipeline.strength_dial), else the plain curve."""
    resolved = (strength_gain(params.strength),) * count if gains is None else tuple(gains)
    if len(resolved) != count:
        raise ValueError(f"{len(resolved)} gains for {count} outputs")
    return LossWeights(params.content_weight, params.style_weight, params.tv_weight, resolved)


def split_iterations(total: int, parts: int) -> list[int]:
    """`total` iterations shared out over `parts` levels (or tiles' levels),
    the first ones taking one more where it does not divide."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def strength_gain(strength: float) -> float:
    """How much the style and tv weights are scaled: 0 at strength 0, 1 at the
    default, about 4 at 1; continuous and rising."""
    b = STRENGTH_BASE
    return (b**strength - 1.0) / (b**DEFAULT_STRENGTH - 1.0)


def preview_mix(strength: float) -> float:
    """The preview's share of the painting's style vector: all of it from the
    default strength up (the preview cannot paint harder than its painting)."""
    return min(1.0, strength / DEFAULT_STRENGTH)
