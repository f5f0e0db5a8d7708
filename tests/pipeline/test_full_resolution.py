"""Full-size results: the upload's size, its subject bit for bit outside the
edge band, the painting upsampled, and the same picture however it is tiled."""

import cv2
import numpy as np
import pytest

from tests.conftest import PHOTOS, read_rgb
from worker.pipeline.composite import feather_width
from worker.pipeline.full_resolution import composite_full
from worker.pipeline.intake import to_working_size
from worker.pipeline.stages import REFERENCE_SIDE, CompositeParams


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """kite_and_cold.jpg (1352 x 900) as the upload; a disc as the subject."""
    full = read_rgb(PHOTOS / "kite_and_cold.jpg")
    working = to_working_size(full, 128)
    mask = np.zeros(working.shape[:2], np.float32)
    cv2.circle(mask, (64, 42), 25, 1.0, -1)
    rng = np.random.default_rng(0)
    stylized = rng.integers(0, 255, working.shape, dtype=np.uint8)
    return full, working, mask, stylized


def _band(mask_full: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    hard = (mask_full >= 0.5).astype(np.uint8)
    kernel = np.ones((2 * width + 1,) * 2, np.uint8)
    return cv2.erode(hard, kernel).astype(bool), ~cv2.dilate(hard, kernel).astype(bool)


def test_the_subject_is_the_upload_bit_for_bit_outside_the_band() -> None:
    full, working, mask, stylized = _scene()
    params = CompositeParams()
    alpha, result = composite_full(full, working, mask, stylized, "background", params)
    assert result.shape == full.shape and alpha.shape == full.shape[:2]
    mask_full = cv2.resize(mask, full.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    radius = round(params.guided_radius * max(full.shape[:2]) / REFERENCE_SIDE)
    inside, outside = _band(mask_full, feather_width(radius) + 4)
    assert inside.sum() > 10_000
    assert np.array_equal(result[inside], full[inside])
    painted = cv2.resize(stylized, full.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    diff = np.abs(result[outside].astype(float) - painted[outside]).mean()
    assert diff < 25, f"the background is the painting, upsampled ({diff:.1f} levels off)"


@pytest.mark.parametrize("mode", ["background", "portrait"])
def test_tiling_does_not_change_the_picture(mode: str) -> None:
    full, working, mask, stylized = _scene()
    painting = None if mode == "portrait" else stylized
    _, whole = composite_full(full, working, mask, painting, mode, CompositeParams(), 10_000)
    _, tiled = composite_full(full, working, mask, painting, mode, CompositeParams(), 97)
    assert np.abs(whole.astype(int) - tiled).max() <= 1
