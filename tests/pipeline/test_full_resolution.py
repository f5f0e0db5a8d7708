"""Full-size results: the upload's size, its subject bit for bit outside the
edge band, the painting upsampled, and the same picture however it is tiled."""

import math

import cv2
import numpy as np
import pytest

from tests.conftest import PHOTOS, read_rgb
from worker.pipeline.full_resolution import composite_full
from worker.pipeline.intake import to_working_size
from worker.pipeline.matting import MAX_SOLVE_SIDE
from worker.pipeline.stages import CompositeParams, edge_reach, refined_edge


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """kite_and_cold.jpg (1352 x 900) as the upload; a disc as the subject."""
    full = read_rgb(PHOTOS / "kite_and_cold.jpg")
    working = to_working_size(full, 128)
    mask = np.zeros(working.shape[:2], np.float32)
    cv2.circle(mask, (64, 42), 25, 1.0, -1)
    rng = np.random.default_rng(0)
    stylized = rng.integers(0, 255, working.shape, dtype=np.uint8)
    return full, working, mask, stylized


def _band(mask_full: np.ndarray, inward: int, outward: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels farther than `inward` inside the mask's edge, `outward` outside it."""
    hard = (mask_full >= 0.5).astype(np.uint8)
    inside = cv2.erode(hard, np.ones((2 * inward + 1,) * 2, np.uint8)).astype(bool)
    return inside, ~cv2.dilate(hard, np.ones((2 * outward + 1,) * 2, np.uint8)).astype(bool)


def test_the_subject_is_the_upload_bit_for_bit_outside_the_band() -> None:
    full, working, mask, stylized = _scene()
    params = CompositeParams()
    alpha, result = composite_full(full, working, mask, stylized, "background", params)
    assert result.shape == full.shape and alpha.shape == full.shape[:2]
    mask_full = cv2.resize(mask, full.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    side = max(full.shape[:2])
    inside, outside = _band(mask_full, edge_reach(params, side, inward=True) + 4,
                            edge_reach(params, side) + 4)  # fmt: skip
    assert inside.sum() > 10_000
    assert np.array_equal(result[inside], full[inside])
    painted = cv2.resize(stylized, full.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    diff = np.abs(result[outside].astype(float) - painted[outside]).mean()
    assert diff < 25, f"the background is the painting, upsampled ({diff:.1f} levels off)"


def test_the_matte_stays_within_its_reach_above_the_solve_size() -> None:
    """Above MAX_SOLVE_SIDE the matte is solved small and brought to size:
    the upsampler spreads it by a few pixels there, which edge_reach counts,
    so the subject is the photo's own pixels wherever it says."""
    photo = cv2.resize(read_rgb(PHOTOS / "kite_and_cold.jpg"), (2048, 1363),
                       interpolation=cv2.INTER_CUBIC)  # fmt: skip
    mask = np.zeros(photo.shape[:2], np.float32)
    cv2.circle(mask, (1024, 680), 400, 1.0, -1)
    params = CompositeParams()
    alpha = refined_edge(photo, mask, params).alpha
    assert ((alpha > 0) & (alpha < 1)).sum() > 10_000, "a soft edge, not the hard mask"
    hard = (mask >= 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    distance = cv2.distanceTransform(1 - hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    deepest, farthest = depth[alpha < 1].max(), distance[alpha > 0].max()
    side = max(photo.shape[:2])
    assert deepest <= edge_reach(params, side, inward=True)
    assert farthest <= edge_reach(params, side)
    # Without the upsampler's pixels both reaches would fall short.
    pad = math.ceil(3 * side / MAX_SOLVE_SIDE)
    assert deepest > edge_reach(params, side, inward=True) - pad
    assert farthest > edge_reach(params, side) - pad


@pytest.mark.parametrize("mode", ["background", "portrait"])
def test_tiling_does_not_change_the_picture(mode: str) -> None:
    full, working, mask, stylized = _scene()
    painting = None if mode == "portrait" else stylized
    _, whole = composite_full(full, working, mask, painting, mode, CompositeParams(), 10_000)
    _, tiled = composite_full(full, working, mask, painting, mode, CompositeParams(), 97)
    assert np.abs(whole.astype(int) - tiled).max() <= 1


def test_rows_resize_past_opencvs_remap_limit() -> None:
    """A 50 MP banner is 40000 px wide and cv2.remap refuses maps of 32767 px
    or more: output original ended INTERNAL for any such photo."""
    from worker.pipeline.full_resolution import _resize_rows

    small = np.tile(np.linspace(0, 1, 1250, dtype=np.float32), (2, 1))
    rows = _resize_rows(small, (64, 40_000), 10, 12, cv2.INTER_LINEAR)
    assert rows.shape == (2, 40_000)
    assert np.all(np.diff(rows[0]) >= -1e-6) and rows[0, 0] < 0.01 and rows[0, -1] > 0.99
