"""Painting detail at full resolution: a path that paints above the working
size (finer strokes, closer to the painting by the judge's statistics than the
upsampled picture, the photo's shapes kept), coarse to fine, and in tiles
without a seam when a level is above the pixel budget."""

import cv2
import numpy as np
import pytest

from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
from worker.pipeline.features import load_feature_net
from worker.pipeline.full_resolution import upsample_stylized
from worker.pipeline.intake import to_working_size
from worker.pipeline.judge import JUDGE_LAYERS, judge
from worker.pipeline.measures import stroke_frequency
from worker.pipeline.paint_full import (
    PaintParams,
    TileBlend,
    paint_full,
    paint_levels,
    paint_side,
    paint_steps,
    painting_side,
    paintings_at,
    tile_boxes,
)
from worker.pipeline.style import stylize
from worker.pipeline.style_params import StyleParams

PARAMS = StyleParams(iterations=30)


@pytest.fixture(scope="module")
def net():
    p = StyleParams()
    return load_feature_net((p.content_layer, *p.style_layers), MODELS)


@pytest.fixture(scope="module")
def judge_net():
    return load_feature_net(JUDGE_LAYERS, MODELS)


def _scene(net, photo_name: str, painting_name: str, working: int, side: int):
    """(photo at the paint size, its working-size stylization, the painting at
    its own 512 px, the working-size photo), both sizes from the upload as the
    service makes them."""
    upload = read_rgb(PHOTOS / photo_name)
    photo, small = to_working_size(upload, side), to_working_size(upload, working)
    painting = read_rgb(STYLES / painting_name)
    stylized = list(stylize(small, [(painting, 1.0)], PARAMS, net))[-1].image
    return photo, stylized, painting, small


def _as_painted(painting: np.ndarray, side: int, working: int) -> np.ndarray:
    """The painting as the judge sees it: at the size the paint path used."""
    at = painting_side(max(painting.shape[:2]), 1.0, side, working)
    return paintings_at([(painting, 1.0)], at)[0][0]


def test_the_paint_size_and_levels() -> None:
    assert paint_side((3000, 4000, 3), 2048) == 2048, "a 12 MP photo: capped"
    assert paint_side((600, 512, 3), 2048) == 600, "never above the photo's own size"
    assert paint_levels(512, 2048) == [1024, 2048], "coarse to fine, x2 each"
    assert paint_levels(512, 1500) == [750, 1500]
    assert paint_levels(512, 900) == [900]
    assert paint_levels(512, 512) == [] and paint_levels(512, 400) == []


def test_the_painting_is_never_enlarged_past_its_own_pixels() -> None:
    assert painting_side(512, 1.0, 128, 64) == 128, "below its own size: as at working size"
    assert painting_side(512, 1.0, 2048, 512) == 512, "not blurred up to 2048"
    assert painting_side(128, 1.0, 2048, 512) == 512, "no more than the working size did"
    assert painting_side(512, 2.0, 2048, 512) == 1024, "the stroke-size dial still holds"


def test_a_painting_is_enlarged_smoothly_where_it_must_be() -> None:
    painting = read_rgb(STYLES / "starry.jpg")  # 512 px
    (small, _), (large, _) = (paintings_at([(painting, 1.0)], s)[0] for s in (128, 2048))
    assert max(small.shape[:2]) == 128 and max(large.shape[:2]) == 2048
    # Not in 4 x 4 blocks (the area resize's enlargement): no edge on the block grid.
    steps = np.abs(np.diff(large.astype(float), axis=1)).mean(axis=(0, 2))
    assert steps[3::4].mean() < 1.5 * steps.mean(), "smooth, not blocky"
    assert np.array_equal(paintings_at([(painting, 1.0)], 512)[0][0], painting)


@pytest.mark.parametrize("shape", [(107, 160), (2048, 1536), (3000, 4000)])
def test_tiles_cover_the_image_within_the_budget_and_overlap(shape) -> None:
    paint = PaintParams(tile_pixels=512 * 512, tile_overlap=32)
    boxes = tile_boxes(shape, paint)
    covered = np.zeros(shape, int)
    for y0, y1, x0, x1 in boxes:
        assert (y1 - y0) * (x1 - x0) <= paint.tile_pixels
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1 and covered.max() <= 4
    if len(boxes) > 1:  # neighbours share at least the overlap
        ys, xs = sorted({b[0] for b in boxes}), sorted({b[2] for b in boxes})
        ends = sorted({b[1] for b in boxes})
        assert all(e - s >= 32 for s, e in zip(ys[1:], ends[:-1], strict=True))
        x_ends = sorted({b[3] for b in boxes})
        assert all(e - s >= 32 for s, e in zip(xs[1:], x_ends[:-1], strict=True))
    assert tile_boxes((400, 600), paint) == [(0, 400, 0, 600)], "one tile when it fits"


def test_tiles_of_one_picture_blend_back_to_it_exactly() -> None:
    image = read_rgb(PHOTOS / "kite_and_cold.jpg")[:300, :400]
    paint = PaintParams(tile_pixels=128 * 128, tile_overlap=16)
    blend = TileBlend(image.shape[:2], paint.tile_overlap)
    for y0, y1, x0, x1 in tile_boxes(image.shape, paint):
        blend.add((y0, y1, x0, x1), image[y0:y1, x0:x1])
    assert np.array_equal(blend.result(), image)


def test_tiles_need_room_beyond_their_overlap() -> None:
    with pytest.raises(ValueError, match="tile_pixels"):
        PaintParams(tile_pixels=100 * 100, tile_overlap=32)


PAIRS = [("grace_hopper.png", "starry.jpg"), ("kite_and_cold.jpg", "waves.jpg")]


@pytest.mark.slow
@pytest.mark.parametrize(("photo_name", "painting_name"), PAIRS)
def test_a_full_resolution_path_that_paints_above_the_working_size(
    net, judge_net, photo_name, painting_name
) -> None:
    photo, stylized, painting, small = _scene(net, photo_name, painting_name, 64, 128)
    upsampled = upsample_stylized(small, stylized, photo)
    painted = paint_full(photo, stylized, [(painting, 1.0)], PARAMS,
                         PaintParams(iterations=10), net)  # fmt: skip
    assert painted.shape == photo.shape
    at_size = _as_painted(painting, 128, 64)
    up = judge(judge_net, photo, [(at_size, 1.0)], upsampled)
    done = judge(judge_net, photo, [(at_size, 1.0)], painted)
    assert done.style < 0.5 * up.style, (done, up)
    assert stroke_frequency(painted) > stroke_frequency(upsampled), "finer strokes"
    assert done.content < 1.25 * up.content, "the photo's shapes are kept"


@pytest.mark.slow
def test_coarse_to_fine_through_each_doubling(net) -> None:
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 128)
    small = to_working_size(photo, 32)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), 128)
    steps = paint_steps(photo, small, [(painting, 1.0)], PARAMS, PaintParams(iterations=4), net)
    sides = [p.side for p in steps]
    assert sides[0] == 64 and sides[-1] == 128 and sorted(sides) == sides, sides


def test_a_photo_no_larger_than_the_working_size_is_painted_as_it_is(net) -> None:
    """quality high with output original on a photo of the working size (or
    smaller): no level above it, the stylized image back as it was (it
    divided the iterations among no levels: INTERNAL, ZeroDivisionError)."""
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 48)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), 64)
    stylized = photo[::-1].copy()
    painted = paint_full(photo, stylized, [(painting, 1.0)], PARAMS, PaintParams(), net)
    assert np.array_equal(painted, stylized)


def _column_steps(change: np.ndarray) -> np.ndarray:
    """How much the mean change of each column differs from its neighbour's: a
    seam is a step that runs down the whole column, texture averages out."""
    return np.abs(np.diff(change.mean(axis=0), axis=0)).sum(axis=-1)


@pytest.mark.slow
def test_tiles_paint_without_a_seam_and_like_the_whole(net, judge_net) -> None:
    photo, stylized, painting, small = _scene(net, "kite_and_cold.jpg", "starry.jpg", 80, 160)
    upsampled = upsample_stylized(small, stylized, photo)
    tiled_params = PaintParams(iterations=10, tile_pixels=90 * 107, tile_overlap=16)
    boxes = tile_boxes(photo.shape, tiled_params)
    assert len(boxes) == 2, boxes
    whole = paint_full(photo, stylized, [(painting, 1.0)], PARAMS, PaintParams(iterations=10), net)
    tiled = paint_full(photo, stylized, [(painting, 1.0)], PARAMS, tiled_params, net)
    band = slice(boxes[1][2] - 1, boxes[0][3])  # the shared columns and their edges
    dx = np.abs(np.diff(tiled.astype(float), axis=1)).mean(axis=(0, 2))
    assert dx[band].mean() <= 1.25 * dx.mean(), "no sharper across the seam than elsewhere"
    steps = _column_steps(tiled.astype(float) - upsampled)
    outside = np.ones_like(steps, bool)
    outside[band] = False
    assert steps[band].max() <= 1.5 * np.percentile(steps[outside], 95), "no colour step"
    # Like the whole: painted (by the judge), strokes as fine, the same picture
    # once blurred. (The judge scores tiles of this 160 px picture above the
    # whole: each half matches the painting alone, VGG's deep layers see their
    # borders; at the GPU's 2048 px a tile is most of the picture.)
    at_size = _as_painted(painting, 160, 80)
    scores = [judge(judge_net, photo, [(at_size, 1.0)], im).style
              for im in (upsampled, whole, tiled)]  # fmt: skip
    assert scores[2] < 0.5 * scores[0], scores
    ratio = stroke_frequency(tiled) / stroke_frequency(whole)
    assert 0.8 < ratio < 1.25, ratio
    blur = lambda im: cv2.GaussianBlur(im.astype(np.float32), (0, 0), 2)  # noqa: E731
    assert np.abs(blur(tiled) - blur(whole)).mean() < 5
