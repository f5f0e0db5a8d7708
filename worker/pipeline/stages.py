"""The mode table: what each compositing mode needs and how it builds its
result. `backdrop run` (worker.local_job) and the queue's steps both read it, so
a new mode is one row here (and its name in api_contracts.models.Mode).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from api_contracts.errors import BackdropError, ErrorCode
from worker.pipeline.composite import blend, feather_width, portrait_blur, refine_mask
from worker.pipeline.matting import Edge, matte_any_size, outer_width, upsampled_spread

# Radii are set for a 512 px photo and scale with it, so a result looks the
# same at any working size.
REFERENCE_SIDE = 512


class CompositeParams(BaseModel):
    """How the subject goes back in; part of a result's key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Guided filter: eps in the units of the uint8 guide (0..255**2): larger
    # eps smooths more, smaller follows the photo's edges more closely.
    guided_radius: int = Field(6, ge=1, le=64)
    guided_eps: float = Field(0.001 * 255**2, gt=0)
    # Disk radius of the portrait blur.
    blur_radius: int = Field(14, ge=1, le=100)
    # How the mask's edge follows the photo: the guided filter, or closed-form
    # matting in a band from `band` px (at 512 px) inside DeepLab's edge to
    # matting.OUTER times that outside it, which keeps hair strands and takes
    # the old background out of them (benchmarks/matting.py; README).
    edge: Literal["guided", "matting"] = "matting"
    band: int = Field(12, ge=1, le=64)


# (refined edge, stylized image or None, params, scale) -> result
Builder = Callable[[Edge, np.ndarray | None, CompositeParams, float], np.ndarray]


@dataclass(frozen=True)
class Mode:
    name: str
    stylizes: bool  # needs paintings and the style optimization
    segments: bool  # needs the subject mask
    build: Builder
    help: str
    two_paintings: bool = False  # the subject's own painting, in the same optimization


def _stylized(stylized: np.ndarray | None) -> np.ndarray:
    if stylized is None:
        raise BackdropError(ErrorCode.INTERNAL, "this mode needs a stylized image")
    return stylized


# The subject's colours under its alpha are edge.fg, the old background's
# edge.bg: with the matting they differ from the photo where alpha is
# fractional, so neither carries the other's colour into the new picture.
def _keep_subject(
    edge: Edge, stylized: np.ndarray | None, params: CompositeParams, scale: float
) -> np.ndarray:
    return blend(edge.fg, _stylized(stylized), edge.alpha)


def _keep_background(
    edge: Edge, stylized: np.ndarray | None, params: CompositeParams, scale: float
) -> np.ndarray:
    return blend(edge.bg, _stylized(stylized), 1.0 - edge.alpha)


def _whole(
    edge: Edge, stylized: np.ndarray | None, params: CompositeParams, scale: float
) -> np.ndarray:
    return _stylized(stylized).copy()


def _blur_background(
    edge: Edge, stylized: np.ndarray | None, params: CompositeParams, scale: float
) -> np.ndarray:
    blur = max(1, round(params.blur_radius * scale))
    margin = max(2, round(params.guided_radius * scale))
    return portrait_blur(edge.bg, edge.alpha, blur, margin=margin, front=edge.fg)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("background", True, True, _keep_subject, "paint the background, keep the subject"),
        Mode("subject", True, True, _keep_background, "paint the subject, keep the background"),
        Mode("portrait", False, True, _blur_background, "blur the background, no painting"),
        Mode("full", True, False, _whole, "paint the whole photo"),
        Mode(
            "dual",
            True,
            True,
            _whole,
            "paint the subject and the background in two paintings, in one optimization",
            two_paintings=True,
        ),
    )
}


def mode_of(name: str) -> Mode:
    """The mode's row; an unknown mode is an error, never a fallback."""
    try:
        return MODES[name]
    except KeyError:
        raise BackdropError(ErrorCode.INVALID_REQUEST, f"unknown mode {name!r}") from None


def composite_stage(
    photo: np.ndarray,
    mask: np.ndarray,
    stylized: np.ndarray | None,
    mode_name: str,
    params: CompositeParams,
    side: int | None = None,
    edge: Edge | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine the mask to the photo's edges (unless `edge` is the refined
    edge already) and build the mode's result: (alpha, result). `side`: the
    longest side of the whole picture, when `photo` is one strip of it (radii
    scale with the picture, not the strip)."""
    mode = mode_of(mode_name)
    scale = (side or max(photo.shape[:2])) / REFERENCE_SIDE
    if edge is None:
        segments = mode.segments
        edge = refined_edge(photo, mask, params, side) if segments else Edge(mask, photo, photo)
    return edge.alpha, mode.build(edge, stylized, params, scale)


Painting = tuple[np.ndarray, float]


def paint_regions(
    mode_name: str, subject: Painting | None, background: list[Painting], alpha: np.ndarray
) -> tuple[list[Painting], list[np.ndarray] | None]:
    """The paintings of one optimization and where each one applies: for a
    two-painting mode, the subject's painting inside the refined alpha (full
    weight) and the background's blend outside it; otherwise the blend
    everywhere (regions None)."""
    if not mode_of(mode_name).two_paintings:
        return background, None
    if subject is None:
        raise BackdropError(ErrorCode.INVALID_REQUEST, "this mode needs a subject painting")
    total = sum(w for _, w in background)
    slots = [(subject[0], 1.0)] + [(p, w / total) for p, w in background]
    return slots, [alpha] + [1.0 - alpha] * len(background)


def refined_edge(
    photo: np.ndarray, mask: np.ndarray, params: CompositeParams, side: int | None = None
) -> Edge:
    """The mask's edge made to follow the photo, by the method in `params`.
    A strip of a larger picture (`side`) must come with its edge: the
    matting is solved on the whole picture (full_resolution.py)."""
    scale = (side or max(photo.shape[:2])) / REFERENCE_SIDE
    if params.edge == "matting":
        edge = _matte_or_none(photo, mask, params)
        if edge is not None:
            return edge
    alpha = refine_mask(mask, photo, max(1, round(params.guided_radius * scale)),
                        params.guided_eps)  # fmt: skip
    return Edge(alpha, photo, photo)


def _matte_or_none(photo: np.ndarray, mask: np.ndarray, params: CompositeParams) -> Edge | None:
    """The matte, or None where its solve fails (a degenerate band on a tiny
    picture: the conjugate gradient does not converge): then the guided
    filter's edge serves, rather than failing the picture."""
    if mask.shape != photo.shape[:2]:
        mask = cv2.resize(mask, photo.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    try:
        with np.errstate(all="ignore"):
            edge = matte_any_size(photo, mask, band_half_width(params, max(photo.shape[:2])))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
    return edge if np.isfinite(edge.alpha).all() else None


def band_half_width(params: CompositeParams, side: int) -> int:
    """The matting band's half-width in px at a picture of longest side `side`."""
    return max(2, round(params.band * side / REFERENCE_SIDE))


def edge_reach(params: CompositeParams, side: int, inward: bool = False) -> int:
    """How far from the mask's 0.5 edge alpha can differ from the mask (px),
    outward (the default and the farther: the matting band reaches further
    out) or inward: beyond it the subject is the photo's own pixels."""
    if params.edge == "guided":
        return feather_width(max(1, round(params.guided_radius * side / REFERENCE_SIDE)))
    half = band_half_width(params, side)
    return (half if inward else outer_width(half)) + 1 + upsampled_spread(side)
