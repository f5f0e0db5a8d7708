"""Painting detail at full resolution (`quality: high` with `output: original`).

The optimization paints at the working size (512 px); brought to a 12 MP photo
by upsampling alone, a stroke is eight times larger and soft. Here the
stylized image is taken to the paint size (the photo's long side, at most
`max_side`) coarse to fine: each level twice the last (the first above the
working size), where the image is upsampled edge-aware as composite_full
does (so the start is no softer than a resize) and refined by a share of
`iterations` of the same objective, the photo at that size as content.

The painting's size at a level: style_scale x the level's side, as at the
working size, but never enlarged past its own pixels (nor more than the working
size already enlarged it); where it is enlarged, bicubically (an area resize
enlarges in blocks, edges no painting has). Measured on a 12 MP photo painted
at 1024 px (benchmarks/paint_full.py, the contact sheet): kept at its own
512 px the strokes are the painting's own, twice the stroke frequency of the
painting enlarged with the picture, which paints its blur (judge style
distance to the painting 8 against 220).

Above `tile_pixels` a level is optimized in overlapping tiles, one after the
other, each against the whole painting's Gram matrices (a Gram matrix is
normalized by the map's size, so a tile's compares with the painting's as the
whole image's does), and blended back with ramps across the overlap.
"""

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.pipeline.features import FeatureNet
from worker.pipeline.full_resolution import upsample_stylized
from worker.pipeline.style import Styles, stylize
from worker.pipeline.style_params import StyleParams, split_iterations

Box = tuple[int, int, int, int]  # y0, y1, x0, x1
# In every painted image's key: 2 since a painting smaller than a level needs
# is enlarged bicubically (version 1: in blocks, by an area resize).
PAINT_VERSION = 2


class PaintParams(BaseModel):
    """What shapes a painted full-resolution image; part of its keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The paint size's cap: 2048 px is ~4 M pixels, one tile on a GPU.
    max_side: int = Field(2048, ge=32, le=8192)
    # Refine iterations, shared equally by the levels above the working size.
    iterations: int = Field(60, ge=1, le=2000)
    # A level above this many pixels is optimized in tiles: the gradient keeps
    # VGG's activations, ~5 GB in float32 at 2048 x 2048 (block1 alone 2 GB;
    # an estimate, `make gpu-check` measures the peak).
    tile_pixels: int = Field(2048 * 2048, ge=1024)
    tile_overlap: int = Field(64, ge=4, le=512)

    @model_validator(mode="after")
    def _tiles_exceed_their_overlap(self) -> "PaintParams":
        # A tile side of 4 overlaps or more keeps tiling possible at any size.
        if self.tile_pixels < (4 * self.tile_overlap) ** 2:
            raise ValueError("tile_pixels must be at least (4 x tile_overlap) squared")
        return self


@dataclass
class PaintProgress:
    iteration: int  # counted over all levels and tiles
    total: int
    side: int  # the level's long side
    image: np.ndarray | None = field(default=None, repr=False)  # the last one: the result


Steps = Generator[PaintProgress, None, np.ndarray]


def paint_side(shape: tuple[int, ...], max_side: int) -> int:
    """The long side painted at: the photo's own, capped; never enlarged."""
    return min(max_side, max(shape[:2]))


def paint_levels(working_side: int, side: int) -> list[int]:
    """Long sides of the levels above the working size, coarse to fine, each
    half the next; [] when the paint size is not above the working size."""
    levels: list[int] = []
    while side > working_side:
        levels.insert(0, side)
        side //= 2
    return levels


def painting_side(native: int, style_scale: float, side: int, working_side: int) -> int:
    """The painting's long side at a level: as at the working size, but never
    enlarged past its own pixels, or past what the working size used."""
    return round(min(style_scale * side, max(native, style_scale * working_side)))


def paintings_at(styles: Styles, side: int) -> Styles:
    """Each painting with its long side `side`, bicubic when enlarged,
    area-averaged when shrunk."""
    out = []
    for painting, weight in styles:
        scale = side / max(painting.shape[:2])
        how = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        out.append((cv2.resize(painting, None, fx=scale, fy=scale, interpolation=how), weight))
    return out


def paint_full(
    photo: np.ndarray, stylized: np.ndarray, styles: Styles, params: StyleParams,
    paint: PaintParams, net: FeatureNet, *, regions: Sequence[np.ndarray] | None = None,
    lbfgs_every: int = 0, xla: bool = False, gain: float | None = None,
    enlarge_paintings: bool = False,
) -> np.ndarray:  # fmt: skip
    """paint_steps run to the end: the painted image at the size of `photo`."""
    steps = paint_steps(photo, stylized, styles, params, paint, net, regions=regions,
                        lbfgs_every=lbfgs_every, xla=xla, gain=gain,
                        enlarge_paintings=enlarge_paintings)  # fmt: skip
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return np.asarray(done.value)


@dataclass(frozen=True)
class _Run:
    """What every level and tile of one painting shares."""

    paint: PaintParams
    net: FeatureNet
    lbfgs_every: int
    xla: bool
    gain: float | None
    total: int  # iterations over all levels and tiles


@dataclass(frozen=True)
class _Level:
    content: np.ndarray  # the photo at this level's size
    start: np.ndarray  # the last level's image, upsampled edge-aware
    params: StyleParams  # this level's share of the iterations, one scale
    paintings: Styles  # at their size for this level
    regions: list[np.ndarray] | None


def paint_steps(
    photo: np.ndarray, stylized: np.ndarray, styles: Styles, params: StyleParams,
    paint: PaintParams, net: FeatureNet, *, regions: Sequence[np.ndarray] | None = None,
    lbfgs_every: int = 0, xla: bool = False, gain: float | None = None,
    enlarge_paintings: bool = False,
) -> Steps:  # fmt: skip
    """Yield progress while `stylized` (working size) is painted at the size of
    `photo` (the photo at the paint size); return the painted image. `regions`
    (at any size) and `gain` as stylize's: those the working size used.
    `enlarge_paintings`: the rule not taken, the paintings enlarged with the
    picture (style_scale x each level's side; benchmarks only)."""
    image, working = stylized, max(stylized.shape[:2])
    sides = paint_levels(working, max(photo.shape[:2]))
    if not sides:  # the photo is no larger than the working size: nothing above it
        return stylized
    shapes = [_shape_at(photo.shape, s) for s in sides]
    counts = split_iterations(paint.iterations, len(sides))[::-1]  # any extra to the finest
    total = sum(n * len(tile_boxes(sh, paint)) for n, sh in zip(counts, shapes, strict=True))
    run = _Run(paint, net, lbfgs_every, xla, gain, total)
    native = min(max(p.shape[:2]) for p, _ in styles)
    done = 0
    for side, shape, count in zip(sides, shapes, counts, strict=True):
        content = _resized(photo, shape)
        level = _Level(
            content, upsample_stylized(_resized(photo, image.shape), image, content),
            params.model_copy(update={"iterations": count, "levels": 1}),
            paintings_at(styles, round(params.style_scale * side) if enlarge_paintings
                         else painting_side(native, params.style_scale, side, working)),
            None if regions is None else [_resized(r, shape) for r in regions],
        )  # fmt: skip
        image = yield from _refine(level, run, done)
        done += count * len(tile_boxes(shape, paint))
    yield PaintProgress(total, total, max(image.shape[:2]), image)
    return image


def _refine(level: _Level, run: _Run, done: int) -> Steps:
    """One level, tile by tile (one tile when it fits), blended back. Each tile
    starts from the start with the tiles before it painted in: where tiles
    overlap, the later one carries on the earlier one's strokes instead of
    laying its own beside them (two unrelated textures averaged are a blur)."""
    if level.params.iterations == 0:  # fewer iterations than levels: upsampled only
        return level.start
    h, w = level.content.shape[:2]
    blend = TileBlend((h, w), run.paint.tile_overlap)
    for y0, y1, x0, x1 in tile_boxes((h, w), run.paint):
        tile = (slice(y0, y1), slice(x0, x1))
        # stylize sizes the painting as style_scale x the tile's long side; the
        # copy skips validation: at 2048 px the scale may fall below the dial's 0.1.
        side = max(level.paintings[0][0].shape[:2]) / max(y1 - y0, x1 - x0)
        params = level.params.model_copy(update={"style_scale": side})
        regions = None if level.regions is None else [r[tile] for r in level.regions]
        last = None
        for last in stylize(level.content[tile], level.paintings, params, run.net,
                            init_image=blend.over(level.start)[tile], xla=run.xla,
                            regions=regions, lbfgs_every=run.lbfgs_every,
                            gain=run.gain):  # fmt: skip
            if last.image is None:
                yield PaintProgress(done + last.iteration, run.total, max(h, w))
        assert last is not None and last.image is not None
        done += params.iterations
        blend.add((y0, y1, x0, x1), last.image)
    return blend.result()


class TileBlend:
    """Tiles summed with their feathered weights, then normalized by them."""

    def __init__(self, shape: tuple[int, int], overlap: int) -> None:
        self.shape, self.overlap = shape, overlap
        self.sums = np.zeros((*shape, 3), np.float64)
        self.weights = np.zeros(shape, np.float64)

    def add(self, box: Box, image: np.ndarray) -> None:
        y0, y1, x0, x1 = box
        ramp = feather(box, self.shape, self.overlap)
        self.sums[y0:y1, x0:x1] += image * ramp[..., None]
        self.weights[y0:y1, x0:x1] += ramp

    def result(self) -> np.ndarray:
        return np.clip(np.rint(self.sums / self.weights[..., None]), 0, 255).astype(np.uint8)

    def over(self, start: np.ndarray) -> np.ndarray:
        """The tiles so far blended, over `start` where none reached yet."""
        covered = self.weights > 0
        out = start.astype(np.float32)
        out[covered] = self.sums[covered] / self.weights[covered][:, None]
        return out


def tile_boxes(shape: tuple[int, ...], paint: PaintParams) -> list[Box]:
    """The fewest overlapping tiles of at most tile_pixels each that cover the
    image (the whole image when it fits), adjacent ones sharing >= the overlap."""
    h, w = shape[:2]
    ny = nx = 1
    side = lambda n, length: -(-(length + (n - 1) * paint.tile_overlap) // n)  # noqa: E731
    while side(ny, h) * side(nx, w) > paint.tile_pixels:
        if side(ny, h) >= side(nx, w):
            ny += 1
        else:
            nx += 1
    ys, xs = _starts(h, side(ny, h), ny), _starts(w, side(nx, w), nx)
    return [(y, y + side(ny, h), x, x + side(nx, w)) for y in ys for x in xs]


def _starts(length: int, tile: int, n: int) -> list[int]:
    return [0] if n == 1 else [round(i * (length - tile) / (n - 1)) for i in range(n)]


def feather(box: Box, shape: tuple[int, int], overlap: int) -> np.ndarray:
    """A tile's blending weight: 1 inside; at each edge it shares with another
    tile (not at the image's border), 0 over the outer quarter of the overlap,
    where VGG saw the tile's zero padding instead of its neighbour, then
    rising linearly over the rest."""
    y0, y1, x0, x1 = box
    margin = overlap // 4
    rise = np.zeros(overlap)
    rise[margin:] = (np.arange(overlap - margin) + 0.5) / (overlap - margin)

    def ramp(a: int, b: int, length: int) -> np.ndarray:
        r = np.ones(b - a)
        if a > 0:
            r[:overlap] = np.minimum(r[:overlap], rise)
        if b < length:
            r[-overlap:] = np.minimum(r[-overlap:], rise[::-1])
        return r

    return np.outer(ramp(y0, y1, shape[0]), ramp(x0, x1, shape[1]))


def _shape_at(shape: tuple[int, ...], side: int) -> tuple[int, int]:
    h, w = shape[:2]
    scale = side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _resized(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Area-averaged when shrinking (the photo), bilinear when enlarging (regions)."""
    h, w = shape[:2]
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    how = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image.astype(np.float32) if image.dtype == bool else image, (w, h),
                      interpolation=how)  # fmt: skip
