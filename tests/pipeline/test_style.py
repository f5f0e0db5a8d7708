"""Style optimization on real paintings at 64-96 px: learns, repeats, refuses nonsense."""

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from api_contracts.errors import BackdropError
from tests.conftest import PHOTOS, STYLES, read_rgb
from worker.pipeline.style import level_sizes, preserve_colors, stylize
from worker.pipeline.style_params import StyleParams
from worker.runtime.model_cache import get_feature_net


def _small(path, side: int) -> np.ndarray:
    rgb = read_rgb(path)
    scale = side / max(rgb.shape[:2])
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return _small(PHOTOS / "grace_hopper.png", 80)


@pytest.fixture(scope="module")
def starry() -> np.ndarray:
    return _small(STYLES / "starry.jpg", 96)


@pytest.fixture(scope="module")
def net(request):
    from tests.conftest import MODELS
    from worker.runtime.settings import Settings

    return get_feature_net(
        StyleParams(),
        Settings(models_dir=MODELS, allow_download=False),
        "float32",
        "vgg16-hed-bsds500",
    )


def _run(photo, styles, params, net, **kwargs):
    return list(stylize(photo, styles, params, net, **kwargs))


def test_the_result_carries_the_losses_measured_on_it(photo, starry, net) -> None:
    """Adam at a rate far too high oscillates: the result is the lowest-loss
    image, and its losses (not the last iterate's) are reported with it."""
    params = StyleParams(iterations=12, levels=1, optimizer="adam", learning_rate=200.0)
    steps = _run(photo, [(starry, 1.0)], params, net)
    seen = [s.losses["total"] for s in steps[:-1]]
    assert seen[-1] > min(seen), "the test needs a last iterate above the best"
    assert steps[-1].losses["total"] == pytest.approx(min(seen))


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_losses_fall(photo, starry, net, optimizer) -> None:
    params = StyleParams(iterations=25, levels=1, init="noise", optimizer=optimizer)
    steps = _run(photo, [(starry, 1.0)], params, net)
    assert [s.iteration for s in steps] == list(range(1, 26))
    first, last = steps[0].losses, steps[-1].losses
    assert last["total"] < 0.5 * first["total"], (first, last)
    assert last["style"] < first["style"]
    result = steps[-1].image
    assert result is not None and result.shape == photo.shape and result.dtype == np.uint8


def test_same_seed_gives_the_same_image(photo, starry, net) -> None:
    params = StyleParams(iterations=6, levels=2, init="noise", seed=11)
    a = _run(photo, [(starry, 1.0)], params, net)[-1].image
    b = _run(photo, [(starry, 1.0)], params, net)[-1].image
    c = _run(photo, [(starry, 1.0)], params.model_copy(update={"seed": 12}), net)[-1].image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_result_moves_toward_the_painting(photo, starry, net) -> None:
    """From the photo, stylization must change the picture, and more so with a
    higher style weight."""
    light = _run(photo, [(starry, 1.0)], StyleParams(iterations=20, style_weight=50), net)
    heavy = _run(photo, [(starry, 1.0)], StyleParams(iterations=20, style_weight=5000), net)
    change = [np.abs(r[-1].image.astype(float) - photo).mean() for r in (light, heavy)]
    assert 2.0 < change[0] < change[1], change


def test_blend_of_two_styles_and_checkpoints(photo, starry, net) -> None:
    waves = _small(STYLES / "waves.jpg", 96)
    steps = _run(
        photo,
        [(starry, 3.0), (waves, 1.0)],
        StyleParams(iterations=8, levels=2),
        net,
        checkpoint_every=4,
    )
    with_image = [s.iteration for s in steps if s.image is not None]
    assert with_image == [4, 8]
    assert steps[-1].level == 1


def test_preserve_colors_keeps_the_photos_chroma(photo, starry, net) -> None:
    params = StyleParams(iterations=10, preserve_colors=True)
    result = _run(photo, [(starry, 1.0)], params, net)[-1].image
    chroma = lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(float)  # noqa: E731
    plain = _run(photo, [(starry, 1.0)], params.model_copy(update={"preserve_colors": False}), net)[
        -1
    ].image
    assert (
        np.abs(chroma(result) - chroma(photo)).mean()
        < 0.5 * np.abs(chroma(plain) - chroma(photo)).mean()
    )


def test_preserve_colors_is_exact_on_a_grey_stylization() -> None:
    photo = np.zeros((8, 8, 3), np.uint8)
    photo[..., 0] = 200
    grey = np.full((8, 8, 3), 90, np.uint8)
    out = preserve_colors(photo, grey)
    y = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[..., 0]
    assert np.abs(y.astype(int) - 90).max() <= 2 and out[..., 0].mean() > out[..., 1].mean()


def test_levels_run_coarse_to_fine() -> None:
    assert level_sizes((512, 384), 3) == [(128, 96), (256, 192), (512, 384)]
    assert level_sizes((64, 48), 3) == [(64, 48)], "levels below 32 px are dropped"


@pytest.mark.parametrize(
    "bad",
    [
        {"iterations": 0},
        {"style_weight": -1},
        {"content_weight": float("nan")},
        {"learning_rate": 0},
        {"content_layer": "block9_conv9"},
        {"style_layers": ("block1_conv1", "conv_nope")},
        {"style_layers": ()},
        {"optimizer": "sgd"},
        {"unknown_option": 1},
    ],
)
def test_bad_parameters_are_rejected(bad) -> None:
    with pytest.raises(ValidationError):
        StyleParams(**bad)


@pytest.mark.parametrize("weights", [[-1.0], [0.0, 0.0], [float("nan")]])
def test_bad_blend_weights_are_rejected(photo, starry, net, weights) -> None:
    with pytest.raises(BackdropError) as info:
        next(stylize(photo, [(starry, w) for w in weights], StyleParams(iterations=1), net))
    assert info.value.code == "INVALID_REQUEST"


def test_vgg19_only_layer_is_refused_by_the_vgg16_network(photo, starry, net) -> None:
    params = StyleParams(iterations=1, content_layer="block4_conv4")
    with pytest.raises(BackdropError) as info:
        next(stylize(photo, [(starry, 1.0)], params, net))
    assert info.value.code == "INVALID_REQUEST"
    assert net.name == "vgg16-hed-bsds500"


def test_init_image_is_where_the_optimization_starts(photo, starry, net) -> None:
    painting = cv2.resize(starry, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_AREA)
    params = StyleParams(iterations=1, levels=1, learning_rate=0.01)
    result = _run(photo, [(starry, 1.0)], params, net, init_image=painting)[-1].image
    assert np.abs(result.astype(float) - painting).mean() < 1.0
    assert np.abs(result.astype(float) - photo).mean() > 20


def test_stored_photo_features_give_the_same_result(photo, starry, net) -> None:
    """The queue computes the photo's features once and ships them as .npz to
    every output: the result must be the one stylize gets on its own."""
    from worker.pipeline.feature_maps import decode_features, encode_features
    from worker.pipeline.style import photo_features

    params = StyleParams(iterations=4, levels=2, seed=3)
    features = decode_features(encode_features(photo_features(photo, params, net)))
    assert set(features) == set(level_sizes(photo.shape, 2))
    alone = _run(photo, [(starry, 1.0)], params, net)[-1]
    shared = _run(photo, [(starry, 1.0)], params, net, features=features)[-1]
    assert np.array_equal(alone.image, shared.image)
    # And the features are really used: zeroed ones change the content loss.
    zeros = {size: np.zeros_like(f) for size, f in features.items()}
    other = _run(photo, [(starry, 1.0)], params, net, features=zeros)[-1]
    assert other.losses["content"] != alone.losses["content"]


def test_a_batch_of_styles_matches_one_run_per_style(photo, starry, net) -> None:
    """Adam is per pixel, so a batch of two outputs (one a blend) must give what
    two separate runs give; the batch only shares the VGG passes."""
    from worker.pipeline.style import stylize_many

    waves = _small(STYLES / "waves.jpg", 96)
    outputs = [[(starry, 1.0)], [(waves, 1.0), (starry, 1.0)]]
    params = StyleParams(iterations=6, levels=2, optimizer="adam")
    batch = list(stylize_many(photo, outputs, params, net))[-1]
    assert batch.images is not None and len(batch.images) == 2
    for styles, image, losses in zip(outputs, batch.images, batch.losses, strict=True):
        alone = _run(photo, styles, params, net)[-1]
        assert alone.image is not None and image.shape == alone.image.shape
        assert np.abs(image.astype(int) - alone.image).mean() < 0.5
        assert np.isclose(losses["total"], alone.losses["total"], rtol=1e-3)
    assert np.abs(batch.images[0].astype(int) - batch.images[1]).mean() > 2


def test_lbfgs_on_a_batch_lowers_every_outputs_loss(photo, starry, net) -> None:
    from worker.pipeline.style import stylize_many

    waves = _small(STYLES / "waves.jpg", 96)
    steps = list(
        stylize_many(photo, [[(starry, 1.0)], [(waves, 1.0)]], StyleParams(iterations=10), net)
    )
    for first, last in zip(steps[0].losses, steps[-1].losses, strict=True):
        assert last["total"] < 0.7 * first["total"], (first, last)


def test_loss_weights_are_named_terms_with_the_strength_gain_applied_once() -> None:
    from worker.pipeline.style_params import LossWeights, loss_weights, strength_gain

    params = StyleParams(content_weight=3, style_weight=200, tv_weight=2, strength=0.5)
    gain = strength_gain(0.5)
    assert loss_weights(params) == LossWeights(content=3.0, style=200, tv=2, gains=(gain,))
    assert loss_weights(StyleParams()) == LossWeights(content=5.0, style=500.0, tv=1.0)
    assert loss_weights(params.model_copy(update={"strength": 0.0})).gains == (0.0,)
    # A calibrated dial gives each output of a batch its own gain.
    assert loss_weights(params, [0.5, 2.0], count=2).gains == (0.5, 2.0)
    with pytest.raises(ValueError):
        loss_weights(params, [0.5], count=2)


def test_the_warm_start_starts_from_the_preview_given(photo, starry, net) -> None:
    """init "preview": the optimization starts from the image passed in (the
    preview the caller already has), not from the photo; and without one it
    is refused rather than recomputed."""
    preview = cv2.resize(starry, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_AREA)
    params = StyleParams(iterations=1, learning_rate=0.01, init="preview")
    result = _run(photo, [(starry, 1.0)], params, net, init_image=preview)[-1].image
    to_preview = np.abs(result.astype(float) - preview).mean()
    assert to_preview < 1.0 and np.abs(result.astype(float) - photo).mean() > 20 * to_preview
    with pytest.raises(BackdropError) as info:
        next(stylize(photo, [(starry, 1.0)], params, net))
    assert info.value.code == "INVALID_REQUEST"


def test_each_output_of_a_batch_starts_from_its_own_image(photo, starry, net) -> None:
    from worker.pipeline.style import stylize_many

    starts = [np.full_like(photo, 40), np.full_like(photo, 220)]
    params = StyleParams(iterations=1, learning_rate=0.01, init="preview")
    last = list(stylize_many(photo, [[(starry, 1.0)]] * 2, params, net, init_images=starts))[-1]
    assert last.images is not None
    for start, image in zip(starts, last.images, strict=True):
        assert np.abs(image.astype(float) - start).mean() < 1.0


@pytest.mark.parametrize("every", [0, 5])  # L-BFGS on the host, on the device
def test_the_stopping_rule_stops_a_converged_run_and_never_when_off(
    photo, starry, net, every
) -> None:
    """From a run's own result, the loss barely falls: stop_below ends it after
    about one window; with stop_below 0 every iteration runs."""
    base = StyleParams(iterations=40)
    converged = _run(photo, [(starry, 1.0)], base, net)[-1].image
    steps = _run(photo, [(starry, 1.0)], base.model_copy(update={"stop_below": 0.05}), net,
                 init_image=converged, lbfgs_every=every)  # fmt: skip
    last = steps[-1]
    assert last.iteration == last.total < base.iterations and last.image is not None
    assert [s.iteration for s in steps] == list(range(every or 1, last.iteration + 1, every or 1))
    assert last.image.shape == photo.shape
    off = _run(photo, [(starry, 1.0)], StyleParams(iterations=25), net, init_image=converged,
               lbfgs_every=every)  # fmt: skip
    assert off[-1].iteration == off[-1].total == 25


def test_the_stopping_rule_reads_the_fall_over_its_window() -> None:
    from worker.pipeline.style import _converged
    from worker.pipeline.style_params import STOP_WINDOW

    falling = [(i, 100.0 * 0.9**i) for i in range(1, 2 * STOP_WINDOW)]  # -10% an iteration
    flat = [(i, 100.0 - 0.001 * i) for i in range(1, 2 * STOP_WINDOW)]
    assert not any(_converged(falling[:n], 0.01) for n in range(1, len(falling) + 1))
    stops = [n for n in range(1, len(flat) + 1) if _converged(flat[:n], 0.01)]
    assert stops[0] == STOP_WINDOW + 1, "no verdict before a whole window is seen"
    assert not any(_converged(flat[:n], 0.0) for n in range(1, len(flat) + 1))
