"""The dials a user turns, measured: strength is continuous and monotonic,
stroke size changes the strokes' frequency, the preview obeys strength too."""

import itertools

import numpy as np
import pytest

from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
from worker.pipeline.features import load_feature_net
from worker.pipeline.intake import to_working_size
from worker.pipeline.judge import JUDGE_LAYERS, judge
from worker.pipeline.measures import stroke_frequency
from worker.pipeline.strength_dial import calibrate, evenness, positions
from worker.pipeline.style import stylize
from worker.pipeline.style_params import StyleParams, strength_gain

pytestmark = pytest.mark.slow
PAIRS = [("grace_hopper.png", "starry.jpg"), ("parrot.jpg", "waves.jpg"),
         ("dog_segmentation.png", "strokes.jpg")]  # fmt: skip
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def net():
    p = StyleParams()
    return load_feature_net((p.content_layer, *p.style_layers), MODELS)


def _image(folder, name: str, side: int) -> np.ndarray:
    return to_working_size(read_rgb(folder / name), side)


def test_strength_gain_is_zero_at_zero_one_at_the_default_and_rising() -> None:
    gains = [strength_gain(s) for s in np.linspace(0, 1, 21)]
    assert gains[0] == 0 and abs(strength_gain(StyleParams().strength) - 1) < 1e-9
    assert all(b > a for a, b in itertools.pairwise(gains))


@pytest.fixture(scope="module")
def judge_net():
    return load_feature_net(JUDGE_LAYERS, MODELS)


@pytest.mark.parametrize(("photo_name", "painting_name"), PAIRS[:2])
def test_the_calibrated_dial_moves_evenly_where_the_fixed_curve_jumps(
    net, judge_net, photo_name, painting_name
) -> None:
    """Equal steps of the dial, equal steps of the judge's position (the mean of
    its style and content progress) on a picture the calibration ran on a copy
    of; the style distance falls and the content distance rises at every step."""
    photo, painting = _image(PHOTOS, photo_name, 64), _image(STYLES, painting_name, 64)
    params, styles = StyleParams(iterations=30), [(painting, 1.0)]
    curve = calibrate(photo, styles, params, net, judge_net)

    def places(gains: list[float]) -> tuple[list[float], list]:
        images = [photo]
        for gain in gains[1:]:
            images.append(list(stylize(photo, styles, params, net, gain=gain))[-1].image)
        verdicts = [judge(judge_net, photo, styles, image) for image in images]
        return positions([v.style for v in verdicts], [v.content for v in verdicts]), verdicts

    fixed, _ = places([strength_gain(s) for s in STRENGTHS])
    even, verdicts = places([curve.gain_at(s) for s in STRENGTHS])
    assert evenness(even) >= 0.6 > evenness(fixed), (even, fixed)
    style, content = [v.style for v in verdicts], [v.content for v in verdicts]
    assert all(b < a for a, b in itertools.pairwise(style)), style
    assert all(b > a for a, b in itertools.pairwise(content)), content


def test_strength_zero_is_the_photo_itself(net) -> None:
    photo, painting = _image(PHOTOS, "grace_hopper.png", 48), _image(STYLES, "starry.jpg", 48)
    params = StyleParams(iterations=5, strength=0.0)
    image = list(stylize(photo, [(painting, 1.0)], params, net))[-1].image
    assert np.array_equal(image, photo), "strength 0 gives the photo back unchanged"


def test_larger_style_scale_gives_larger_strokes(net) -> None:
    photo, painting = _image(PHOTOS, "grace_hopper.png", 128), _image(STYLES, "starry.jpg", 512)
    base = StyleParams(iterations=40)
    freqs = [
        stroke_frequency(list(stylize(photo, [(painting, 1.0)],
                                      base.model_copy(update={"style_scale": k}), net))[-1].image)
        for k in (0.5, 1.0, 2.0)
    ]  # fmt: skip
    assert freqs[0] > freqs[1] > freqs[2], freqs


def test_the_preview_obeys_strength() -> None:
    from worker.runtime.model_cache import get_previewer

    previewer = get_previewer()
    photo, painting = _image(PHOTOS, "grace_hopper.png", 128), _image(STYLES, "starry.jpg", 256)
    shifts = [np.abs(previewer.stylize(photo, [(painting, 1.0)], s).astype(float) - photo).mean()
              for s in (0.0, 0.3, 0.6, 1.0)]  # fmt: skip
    assert shifts[0] == 0 and shifts[1] < shifts[2] < shifts[3], shifts
