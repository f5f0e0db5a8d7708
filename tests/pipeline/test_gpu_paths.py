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
