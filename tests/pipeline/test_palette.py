"""The palette start (worker.pipeline.palette) on real photos and paintings:
the photo's shapes in the paintings' colour statistics, and used by stylize."""

import numpy as np
import pytest

from tests.conftest import PHOTOS, STYLES, read_rgb
from worker.pipeline.intake import to_working_size
from worker.pipeline.palette import palette_start
from worker.pipeline.style import stylize
from worker.pipeline.style_params import StyleParams


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 128)


@pytest.fixture(scope="module")
def starry() -> np.ndarray:
    return to_working_size(read_rgb(STYLES / "starry.jpg"), 128)


@pytest.fixture(scope="module")
def waves() -> np.ndarray:
    return to_working_size(read_rgb(STYLES / "waves.jpg"), 128)


@pytest.fixture(scope="module")
def net():
    from tests.conftest import MODELS
    from worker.runtime.model_cache import get_feature_net
    from worker.runtime.settings import Settings

    return get_feature_net(
        StyleParams(),
        Settings(models_dir=MODELS, allow_download=False),
        "float32",
        "vgg16-hed-bsds500",
    )


def _stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = image.reshape(-1, 3).astype(np.float64)
    return x.mean(axis=0), np.cov(x.T)


def _luma(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).ravel()


def test_the_start_has_the_paintings_colours_and_the_photos_shapes(photo, starry) -> None:
    start = palette_start(photo, [(starry, 1.0)])
    assert start.shape == photo.shape and start.dtype == np.float32
    assert start.min() >= 0 and start.max() <= 255
    (m_start, c_start), (m_paint, c_paint), (m_photo, _) = map(_stats, (start, starry, photo))
    assert np.abs(m_start - m_paint).max() < 3.0, (m_start, m_paint)
    assert np.abs(m_photo - m_paint).max() > 30, "the test means something: the photo's differ"
    assert np.abs(c_start - c_paint).max() < 0.1 * np.abs(c_paint).max(), (c_start, c_paint)
    assert np.corrcoef(_luma(start), _luma(photo))[0, 1] > 0.9, "the photo's shapes stay"


def test_a_blend_takes_its_paintings_colours_by_weight(photo, starry, waves) -> None:
    alone = palette_start(photo, [(starry, 1.0), (waves, 0.0)])
    np.testing.assert_allclose(alone, palette_start(photo, [(starry, 1.0)]), atol=1e-3)
    half = palette_start(photo, [(starry, 1.0), (waves, 1.0)])
    expected = (_stats(starry)[0] + _stats(waves)[0]) / 2
    assert np.abs(_stats(half)[0] - expected).max() < 3.0


def test_stylize_starts_from_the_palette(photo, starry, net) -> None:
    """The first loss is measured on the start: lower from the palette than
    from the photo (its colour statistics already match), and the picture
    after one tiny step is the palette start's, not the photo's."""
    small, painting = to_working_size(photo, 64), to_working_size(starry, 96)

    def first(init: str) -> tuple[float, np.ndarray]:
        params = StyleParams(iterations=1, learning_rate=0.01, init=init)
        steps = list(stylize(small, [(painting, 1.0)], params, net))
        assert steps[-1].image is not None
        return steps[0].losses["total"], steps[-1].image

    palette_loss, palette_image = first("palette")
    photo_loss, _ = first("content")
    assert palette_loss < 0.5 * photo_loss, (palette_loss, photo_loss)
    start = palette_start(small, [(painting, 1.0)])
    assert np.abs(palette_image.astype(float) - start).mean() < 1.0


def test_two_paintings_in_one_photo_start_each_region_in_its_own_palette(
    photo, starry, waves, net
) -> None:
    """mode dual: the subject's region starts in its painting's colours and
    the rest in the other's (not a mix of both over the whole photo)."""
    small = to_working_size(photo, 64)
    left = np.zeros(small.shape[:2], np.float32)
    left[:, : small.shape[1] // 2] = 1.0
    paintings = [(to_working_size(starry, 96), 1.0), (to_working_size(waves, 96), 1.0)]
    params = StyleParams(iterations=1, learning_rate=0.01, init="palette")
    steps = list(stylize(small, paintings, params, net, regions=[left, 1.0 - left]))
    image = steps[-1].image
    assert image is not None
    half = small.shape[1] // 2
    for painting, side in ((paintings[0], slice(0, half)), (paintings[1], slice(half, None))):
        own = palette_start(small, [painting])[:, side]
        assert np.abs(image[:, side].astype(float) - own).mean() < 1.0
    mixed = palette_start(small, paintings)
    assert np.abs(image.astype(float) - mixed).mean() > 5.0, "not the blend's one palette"
