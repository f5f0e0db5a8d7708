"""The GPU switches, exercised on the CPU: mixed precision (with loss scaling) and XLA."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
from worker.pipeline.features import load_feature_net
from worker.pipeline.intake import to_working_size
from worker.pipeline.objective import objective_for
from worker.pipeline.style import stylize
from worker.pipeline.style_params import StyleParams

PARAMS = StyleParams(iterations=8, levels=1)


def _images() -> tuple[np.ndarray, np.ndarray]:
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 48)
    return photo, to_working_size(read_rgb(STYLES / "starry.jpg"), 64)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_optimizes_like_float32(precision: str) -> None:
    photo, starry = _images()
    layers = (PARAMS.content_layer, *PARAMS.style_layers)
    net = load_feature_net(layers, MODELS, precision)
    assert net.precision == precision
    assert net.model.get_layer("block1_conv1").compute_dtype != "float32"
    steps = list(stylize(photo, [(starry, 1.0)], PARAMS, net))
    reference = list(stylize(photo, [(starry, 1.0)], PARAMS, load_feature_net(layers, MODELS)))
    assert all(np.isfinite(s.losses["total"]) for s in steps)
    assert steps[-1].losses["total"] < steps[0].losses["total"]
    ratio = steps[-1].losses["total"] / reference[-1].losses["total"]
    assert 0.7 < ratio < 1.3, f"{precision} lands near float32: ratio {ratio:.2f}"
    if precision == "mixed_float16":
        assert objective_for(net, PARAMS.content_layer, PARAMS.style_layers).loss_scale > 1


def test_xla_step_gives_the_same_losses(tmp_path: Path) -> None:
    photo, starry = _images()
    net = load_feature_net((PARAMS.content_layer, *PARAMS.style_layers), MODELS)
    plain = list(stylize(photo, [(starry, 1.0)], PARAMS, net))
    fused = list(stylize(photo, [(starry, 1.0)], PARAMS, net, xla=True))
    assert objective_for(net, PARAMS.content_layer, PARAMS.style_layers, True).adam_step
    assert np.isclose(plain[0].losses["total"], fused[0].losses["total"], rtol=1e-3)
    assert np.isclose(plain[-1].losses["total"], fused[-1].losses["total"], rtol=0.05)


@pytest.mark.parametrize(("precision", "xla"), [("mixed_float16", False), ("mixed_bfloat16", False),
                                                ("float32", True)])  # fmt: skip
def test_the_device_lbfgs_under_mixed_precision_and_xla(precision: str, xla: bool) -> None:
    """The objective in float16/bfloat16 (or fused by XLA), the L-BFGS state in
    float32: it still lowers the loss, and lands near the float32 run."""
    from worker.pipeline import lbfgs_device

    photo, starry = _images()
    layers = (PARAMS.content_layer, *PARAMS.style_layers)
    params = StyleParams(iterations=8, levels=1, optimizer="lbfgs")
    net = load_feature_net(layers, MODELS, precision)
    steps = list(stylize(photo, [(starry, 1.0)], params, net, lbfgs_every=4, xla=xla))
    reference = list(stylize(photo, [(starry, 1.0)], params, load_feature_net(layers, MODELS),
                             lbfgs_every=4))  # fmt: skip
    assert [s.iteration for s in steps] == [4, 8]
    assert all(np.isfinite(s.losses["total"]) for s in steps)
    ratio = steps[-1].losses["total"] / reference[-1].losses["total"]
    assert 0.7 < ratio < 1.3, f"{precision}, xla={xla}: ratio {ratio:.2f} to float32"
    objective = objective_for(net, PARAMS.content_layer, PARAMS.style_layers, xla)
    assert ("lbfgs_device", xla) in objective.compiled
    assert lbfgs_device.LOSS_KEYS[-1] == "total"
