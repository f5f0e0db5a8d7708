"""Compositing: exact pixels away from the edge, and a portrait blur without halo."""

import cv2
import numpy as np
import pytest

from api_contracts.errors import BackdropError
from api_contracts.models import Mode
from tests.conftest import PHOTOS, read_rgb
from worker.pipeline.composite import disk_kernel, feather_width, portrait_blur, refine_mask
from worker.pipeline.stages import MODES, CompositeParams, composite_stage, mode_of

RADIUS, EPS = 6, 0.01 * 255**2


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A red disc (the subject) on a busy blue-green texture, and a blocky mask of it."""
    rng = np.random.default_rng(3)
    h, w = 160, 200
    texture = rng.integers(0, 120, (h // 4, w // 4, 3), dtype=np.uint8)
    photo = cv2.resize(texture, (w, h), interpolation=cv2.INTER_NEAREST)
    photo[..., 0] = photo[..., 0] // 4  # background holds little red
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (100, 80), 45, 1, -1)
    photo[disc == 1] = (220, 30, 30)
    # DeepLab-like blockiness: the mask at 1/8 resolution, upsampled.
    coarse = cv2.resize(disc.astype(np.float32), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    return photo, mask


def _regions(mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels farther than `width` from the mask's edge, inside and outside."""
    hard = (mask >= 0.5).astype(np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    inside = cv2.erode(hard, kernel).astype(bool)
    outside = ~cv2.dilate(hard, kernel).astype(bool)
    return inside, outside


def test_refined_mask_stays_in_range() -> None:
    photo, mask = _scene()
    alpha = refine_mask(mask, photo, RADIUS, EPS)
    assert alpha.dtype == np.float32 and alpha.min() >= 0 and alpha.max() <= 1
    assert alpha.shape == mask.shape


@pytest.mark.parametrize("mode", ["background", "subject"])
def test_pixels_away_from_the_edge_are_exactly_photo_or_stylized(mode: str) -> None:
    photo, mask = _scene()
    stylized = np.full_like(photo, 128)
    alpha = refine_mask(mask, photo, RADIUS, EPS)
    out = MODES[mode].build(photo, alpha, stylized, CompositeParams(), 1.0)
    inside, outside = _regions(mask, feather_width(RADIUS) + 4)
    assert inside.sum() > 1000 and outside.sum() > 1000
    keep, paint = (inside, outside) if mode == "background" else (outside, inside)
    assert np.array_equal(out[keep], photo[keep])
    assert np.array_equal(out[paint], stylized[paint])


def test_full_mode_is_the_stylized_image() -> None:
    photo, mask = _scene()
    stylized = np.full_like(photo, 77)
    alpha, out = composite_stage(photo, mask, stylized, "full", CompositeParams())
    assert np.array_equal(out, stylized)
    assert np.array_equal(alpha, mask), "full mode uses no subject mask"


def test_the_mode_table_is_the_contract_and_unknown_modes_are_refused() -> None:
    import typing

    assert set(MODES) == set(typing.get_args(Mode)), "a mode is one row, named in the contract"
    photo, mask = _scene()
    with pytest.raises(BackdropError) as refused:
        composite_stage(photo, mask, photo, "sepia", CompositeParams())
    assert refused.value.code == "INVALID_REQUEST"
    with pytest.raises(BackdropError):
        mode_of("Subject")


def _high_frequency(image: np.ndarray, where: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[where].mean())


def test_portrait_blurs_the_background_and_keeps_the_subject() -> None:
    photo = read_rgb(PHOTOS / "grace_hopper.png")
    hard = np.zeros(photo.shape[:2], np.float32)
    hard[150:, 120:400] = 1.0  # a rough person box is enough for this check
    alpha = refine_mask(hard, photo, RADIUS, EPS)
    out = portrait_blur(photo, alpha, radius=9)
    inside, outside = _regions(hard, feather_width(RADIUS) + 2)
    assert _high_frequency(out, outside) < 0.5 * _high_frequency(photo, outside)
    assert np.array_equal(out[inside], photo[inside])


def test_portrait_leaves_no_halo_of_subject_colour() -> None:
    photo, mask = _scene()
    alpha = refine_mask(mask, photo, RADIUS, EPS)
    out = portrait_blur(photo, alpha, radius=12).astype(np.float32)
    hard = (photo[..., 0] == 220).astype(np.uint8)  # the true subject
    near = cv2.dilate(hard, np.ones((2 * 4 + 1,) * 2, np.uint8))
    ring_outer = cv2.dilate(hard, np.ones((2 * 10 + 1,) * 2, np.uint8))
    ring = (ring_outer - near).astype(bool)  # 4..10 px outside the subject
    photo_f = photo.astype(np.float32)
    redness = out[..., 0] - out[..., 1:].mean(axis=2)
    plain = photo_f[..., 0] - photo_f[..., 1:].mean(axis=2)  # the ring as photographed
    assert redness[ring].mean() <= plain[ring].mean() + 2.0
    # A plain (not normalized) disk blur does bleed red there: the test can fail.
    naive = cv2.filter2D(photo_f, -1, disk_kernel(12))
    naive_red = naive[..., 0] - naive[..., 1:].mean(axis=2)
    assert naive_red[ring].mean() > plain[ring].mean() + 10.0
