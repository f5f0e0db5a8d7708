"""The feed-forward preview on real paintings: fast, the photo's size, painted."""

import numpy as np
import pytest

from tests.conftest import PHOTOS, STYLES, read_rgb
from worker.pipeline.intake import to_working_size
from worker.runtime.model_cache import get_previewer


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 256)


def test_preview_is_painted_at_the_photos_size(photo) -> None:
    starry = read_rgb(STYLES / "starry.jpg")
    out = get_previewer().stylize(photo, [(starry, 1.0)])
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - photo).mean() > 15, "the painting changed the picture"


def test_blending_two_paintings_lies_between_them(photo) -> None:
    previewer = get_previewer()
    starry, sketch = read_rgb(STYLES / "starry.jpg"), read_rgb(STYLES / "sketch.jpg")
    a = previewer.stylize(photo, [(starry, 1.0)]).astype(float)
    b = previewer.stylize(photo, [(sketch, 1.0)]).astype(float)
    mix = previewer.stylize(photo, [(starry, 1.0), (sketch, 1.0)]).astype(float)
    assert np.abs(mix - a).mean() > 3 and np.abs(mix - b).mean() > 3
    assert previewer.style_vector(starry).shape == (1, 1, 1, 100)


def test_a_tiny_weight_is_a_weight_not_noise(photo) -> None:
    """weight 1e-50 passes the contract (> 0); in float32 the weights summed to
    0 and the NaN style vector painted a magenta smear."""
    starry, sketch = read_rgb(STYLES / "starry.jpg"), read_rgb(STYLES / "sketch.jpg")
    previewer = get_previewer()
    alone = previewer.stylize(photo, [(starry, 1.0)])
    assert np.array_equal(previewer.stylize(photo, [(starry, 1e-50)]), alone)
    both = previewer.stylize(photo, [(starry, 1e-50), (sketch, 1e-50)]).astype(float)
    even = previewer.stylize(photo, [(starry, 1.0), (sketch, 1.0)]).astype(float)
    assert np.abs(both - even).mean() < 1


def test_two_paintings_preview_is_two_passes_joined_by_the_alpha() -> None:
    from tests.conftest import PHOTOS, STYLES, read_rgb
    from worker.pipeline.intake import to_working_size
    from worker.runtime.model_cache import get_previewer

    previewer = get_previewer()
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 128)
    a, b = (to_working_size(read_rgb(STYLES / n), 256) for n in ("starry.jpg", "sketch.jpg"))
    alpha = np.zeros(photo.shape[:2], np.float32)
    alpha[:, : photo.shape[1] // 2] = 1.0
    joined = previewer.stylize_regions(photo, [(a, 1.0), (b, 1.0)], [alpha, 1 - alpha])
    left, right = slice(None, photo.shape[1] // 2), slice(photo.shape[1] // 2, None)
    assert np.array_equal(joined[:, left], previewer.stylize(photo, [(a, 1.0)])[:, left])
    assert np.array_equal(joined[:, right], previewer.stylize(photo, [(b, 1.0)])[:, right])
