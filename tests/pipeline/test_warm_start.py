"""The warm start from the real feed-forward preview and the run-on stopping
rule, on a real photo and painting at 64 px (nothing here is timed)."""

import numpy as np
import pytest

from tests.conftest import PHOTOS, STYLES, read_rgb
from worker.pipeline.intake import to_working_size
from worker.pipeline.style import level_sizes, stylize
from worker.pipeline.style_params import STOP_WINDOW, StyleParams, preview_mix
from worker.runtime.model_cache import get_feature_net, get_previewer


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 64)


@pytest.fixture(scope="module")
def starry() -> np.ndarray:
    return to_working_size(read_rgb(STYLES / "starry.jpg"), 96)


@pytest.fixture(scope="module")
def preview(photo, starry) -> np.ndarray:
    """The service's preview: the previewer at the default strength's mix."""
    return get_previewer().stylize(photo, [(starry, 1.0)], preview_mix(StyleParams().strength))


@pytest.fixture(scope="module")
def net():
    from tests.conftest import MODELS
    from worker.runtime.settings import Settings

    return get_feature_net(
        StyleParams(),
        Settings(models_dir=MODELS, allow_download=False),
        "float32",
        "vgg16-hed-bsds500",
    )


def _losses(photo, starry, params, net, **kwargs) -> list[float]:
    return [s.losses["total"] for s in stylize(photo, [(starry, 1.0)], params, net, **kwargs)]


def test_the_warm_start_used_begins_at_the_previews_loss(photo, starry, preview, net) -> None:
    """The first loss is measured on the starting picture: from the preview
    it is a fraction of the photo's (about 1/4 here: the preview already has
    the painting's textures), and one tiny step ends next to the preview.
    Were the preview passed but not used, both would start at the photo."""
    warm = StyleParams(iterations=1, learning_rate=0.01, init="preview")
    steps = list(stylize(photo, [(starry, 1.0)], warm, net, init_image=preview))
    cold = _losses(photo, starry, StyleParams(iterations=1), net)
    assert steps[0].losses["total"] < 0.5 * cold[0], (steps[0].losses, cold)
    image = steps[-1].image
    assert image is not None
    assert np.abs(image.astype(float) - preview).mean() < 1.0
    assert np.abs(image.astype(float) - photo).mean() > 10


@pytest.mark.slow
def test_the_run_on_rule_ends_a_real_run_before_its_cap_on_the_capped_runs_path(
    photo, starry, preview, net
) -> None:
    """From the preview, a high cap with stop_below stops once the loss
    stalls, well past the first window (it still fell fast there); without
    stop_below the same start runs to its cap, along the same path: the rule
    only ends a run (benchmarks.quality_pairs reads its recipes off that)."""
    run_on = StyleParams(iterations=400, stop_below=0.02, init="preview")
    stopped = _losses(photo, starry, run_on, net, init_image=preview)
    n = len(stopped)
    assert 2 * STOP_WINDOW < n < run_on.iterations
    capped = run_on.model_copy(update={"stop_below": 0.0, "iterations": n + 10})
    full = _losses(photo, starry, capped, net, init_image=preview)
    assert len(full) == n + 10
    assert np.allclose(full[:n], stopped, rtol=1e-3)
    assert min(full) < min(stopped), "it would have gone on falling, slowly"


@pytest.fixture
def hand_over_at_8(monkeypatch):
    """lbfgs_adam's hand-over at 8 iterations, so a 64 px run shows it."""
    import worker.pipeline.style as style_module
    import worker.pipeline.style_params as params_module

    for module in (style_module, params_module):
        monkeypatch.setattr(module, "ADAM_AFTER", 8)


@pytest.mark.parametrize("every", [1, 0])  # L-BFGS on the device, and on the host
def test_lbfgs_adam_follows_lbfgs_then_hands_over_to_adam(photo, starry, net, hand_over_at_8,
                                                          every) -> None:  # fmt: skip
    """optimizer lbfgs_adam: L-BFGS's own path for ADAM_AFTER iterations,
    then Adam from the picture L-BFGS got to, going on down. Were Adam never
    handed the picture, the run would be L-BFGS's to the end."""
    plain = _losses(photo, starry, StyleParams(iterations=14, optimizer="lbfgs"), net,
                    lbfgs_every=every)  # fmt: skip
    mixed = StyleParams(iterations=14, optimizer="lbfgs_adam")
    assert mixed.optimizer == "lbfgs_adam"
    both = _losses(photo, starry, mixed, net, lbfgs_every=every)
    assert len(both) == 14
    assert both[:8] == pytest.approx(plain[:8], rel=1e-5)
    if every:  # the device reports each loss after its update, Adam before its own
        assert both[8] == pytest.approx(both[7], rel=1e-5), "Adam starts where L-BFGS got"
    assert both[9:] != pytest.approx(plain[9:], rel=1e-3)
    assert both[-1] < both[8]


def test_lbfgs_adam_that_never_hands_over_is_lbfgs() -> None:
    """One name for one picture (and one cache key): the default 100
    iterations never reach the hand-over at 200."""
    assert StyleParams(optimizer="lbfgs_adam").optimizer == "lbfgs"
    assert StyleParams(optimizer="lbfgs_adam", iterations=200, levels=2).optimizer == "lbfgs"
    # 200 a level, but a 512 x 60 photo has one level of 600: it hands over
    # there, so the request keeps its name (it ran as plain L-BFGS, named lbfgs).
    thin = StyleParams(optimizer="lbfgs_adam", iterations=600, levels=3)
    assert thin.optimizer == "lbfgs_adam"
    assert len(level_sizes((60, 512), thin.levels)) == 1
    assert StyleParams(optimizer="lbfgs_adam", iterations=600).optimizer == "lbfgs_adam"


def test_the_stopping_rule_lets_lbfgs_adam_hand_over(photo, starry, net, hand_over_at_8) -> None:
    """With a rule that stops at its first look (the loss never falls by 99%
    over 10 iterations), lbfgs alone stops there, at 11; lbfgs_adam runs
    L-BFGS to the hand-over and Adam for a window after it."""
    rule = {"iterations": 40, "stop_below": 0.99}
    plain = _losses(photo, starry, StyleParams(**rule), net, lbfgs_every=1)
    both = _losses(photo, starry, StyleParams(**rule, optimizer="lbfgs_adam"), net, lbfgs_every=1)
    assert len(plain) == STOP_WINDOW + 1
    assert len(both) == 8 + STOP_WINDOW + 1
