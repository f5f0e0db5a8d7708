"""benchmarks.quality_pairs reads every recipe off two long runs: check that
reading on made-up curves (no optimization, nothing timed)."""

import numpy as np
import pytest

from benchmarks.quality_pairs import BEFORE, Recipe, Run, read_recipe, recipes, stopped_at
from worker.pipeline.style_params import STOP_WINDOW


def _run(losses: list[float]) -> Run:
    """One picture per loss (images[k] is the one losses[k] was measured on, as
    optimize stores them), filled with its index, one second apart."""
    images = [np.full((2, 2, 3), k, np.uint8) for k in range(len(losses))]
    return Run([float(k) for k in range(1, len(losses) + 1)], losses, images)


FALLING = [1000.0 * 0.8**k + 100.0 for k in range(60)]  # falls fast, then stalls


def test_a_recipe_stops_where_the_stopping_rule_would_and_returns_its_best_picture() -> None:
    run = _run(FALLING)
    n = stopped_at(FALLING, 0.01)
    assert STOP_WINDOW < n < len(FALLING)
    numbers, image = read_recipe(run, Recipe("content", 50, 0.01), 90.0, 100.0, 0.0)
    assert numbers["iterations"] == n and numbers["reach_iterations"] is None
    assert numbers["ratio"] is None and numbers["final_loss"] == round(FALLING[n - 1], 1)
    # The best picture of the run's first n: the last one (the loss only falls).
    assert image[0, 0, 0] == n - 1


def test_reaching_the_reference_loss_counts_the_extra_seconds_and_the_cap() -> None:
    run = _run(FALLING)
    l_ref = FALLING[20]
    numbers, _ = read_recipe(run, Recipe("preview", 40, 0.0), l_ref, 105.0, 0.5)
    assert numbers["reach_iterations"] == 21 and numbers["reach_s"] == 21.5
    assert numbers["ratio"] == round(105.0 / 21.5, 2) and numbers["iterations"] == 40
    capped, _ = read_recipe(run, Recipe("preview", 10, 0.0), l_ref, 105.0, 0.5)
    assert capped["reach_s"] is None and capped["iterations"] == 10


def test_the_recipes_include_todays_default_and_never_pass_the_runs_length() -> None:
    assert BEFORE in recipes(400)
    assert max(r.cap for r in recipes(150)) == 150
    assert {r.init for r in recipes(400)} == {"content", "preview", "palette"}


def test_the_benchmark_times_the_services_device_lbfgs_with_each_loss_on_its_picture() -> None:
    """A real 64 px run: the L-BFGS arm runs on the device (as the service),
    every iteration seen, each loss the one of the picture stored with it;
    were it the host version, the first picture would be the photo's."""
    from benchmarks.quality_pairs import optimize
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.model_cache import get_feature_net
    from worker.runtime.settings import Settings

    net = get_feature_net(
        StyleParams(),
        Settings(models_dir=MODELS, allow_download=False),
        "float32",
        "vgg16-hed-bsds500",
    )
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 64)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), 96)
    run = optimize(photo, painting, StyleParams(iterations=4), net)
    assert len(run.losses) == len(run.images) == len(run.seconds) == 4
    assert run.losses == sorted(run.losses, reverse=True), "each iteration lowers the loss"
    assert np.abs(run.images[0].astype(float) - photo).mean() > 0.5, "after the first update"
    adam = optimize(photo, painting, StyleParams(iterations=3, optimizer="adam"), net)
    # The reference keeps its start and its result only: its losses are measured before each step.
    assert len(adam.images) == 2 and np.array_equal(adam.images[0], photo)


def test_the_polish_road_pairs_each_loss_with_its_picture_across_the_hand_over(
    monkeypatch,
) -> None:  # fmt: skip
    """lbfgs_adam, 64 px, the hand-over at 3: L-BFGS's losses are those of the
    pictures it returns, Adam's those of the picture before its step; each
    stored picture, measured again, gives the loss stored with it (to the
    uint8 rounding), and not its neighbour's."""
    import benchmarks.quality_pairs as bench
    import worker.pipeline.style as style_module
    import worker.pipeline.style_params as params_module
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.model_cache import get_feature_net
    from worker.runtime.settings import Settings

    # At the real hand-over (200) the road is read at the caps past it only.
    assert {r.cap for r in bench.recipes(400, 600) if r.init == bench.POLISH} == {400, 600}
    for module in (bench, style_module, params_module):
        monkeypatch.setattr(module, "ADAM_AFTER", 3)
    net = get_feature_net(
        StyleParams(),
        Settings(models_dir=MODELS, allow_download=False),
        "float32",
        "vgg16-hed-bsds500",
    )
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 64)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), 96)
    run = bench.optimize(photo, painting, StyleParams(iterations=7, optimizer="lbfgs_adam"), net)
    assert len(run.losses) == len(run.images) == 7

    def loss_of(image: np.ndarray) -> float:  # an Adam step's loss is its start's
        one = StyleParams(iterations=1, optimizer="adam")
        return next(iter(stylize(photo, [(painting, 1.0)], one, net, init_image=image))).losses[
            "total"
        ]

    for k in (2, 4, 6):  # L-BFGS's last, then Adam's
        again = loss_of(run.images[k].astype(np.float32))
        assert again == pytest.approx(run.losses[k], rel=2e-3), k
        assert again != pytest.approx(run.losses[k - 1], rel=2e-3), k
