"""Memory that must not grow with the number of paintings in a blend: the
style targets hold one painting's feature maps at a time (a 16-painting blend
at 2048 px held about 35 GB of them), and two paintings' mode takes each
distinct region's Gram once (a blend of 16 behind a subject weighed 17 copies
of every feature map, about 16 KiB a pixel)."""

import subprocess
import sys

import pytest

from tests.conftest import MODELS, REPO, STYLES

pytestmark = pytest.mark.slow

# Peak RSS rise (KiB) while a blend's targets are built (and, in dual, one
# value and gradient taken), in a fresh process: ru_maxrss only ever grows.
PROBE = """
import resource, sys
from pathlib import Path
import cv2, numpy as np
from worker.pipeline.features import load_feature_net
from worker.pipeline.objective import objective_for
from worker.pipeline.style_params import StyleParams, loss_weights
mode, side, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
styles, p = sorted(Path(sys.argv[4]).glob("*.jpg")), StyleParams()
net = load_feature_net((p.content_layer, *p.style_layers), Path(sys.argv[5]))
objective = objective_for(net, p.content_layer, p.style_layers, masked=mode == "dual")
painting_side = side if mode == "blend" else 96
paintings = [cv2.resize(cv2.imread(str(styles[i % len(styles)])), (painting_side,) * 2)
             .astype(np.float32) for i in range(count)]
photo = np.full((side, side, 3), 128.0, np.float32) if mode == "dual" else paintings[0][:32, :32]
features = objective.content_features(photo)
regions = None
if mode == "dual":  # the subject's painting inside a disc, the blend outside it
    yy, xx = np.mgrid[:side, :side]
    alpha = (np.hypot(yy - side / 2, xx - side / 2) < side / 3).astype(np.float32)
    regions = np.stack([alpha] + [1 - alpha] * (count - 1))
weights = [[1 / count] * count]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
targets = objective.targets(features, [paintings], weights, loss=loss_weights(p, count=1),
                            regions=regions)
if mode == "dual":
    objective.value_and_grad(photo[None], *targets.args())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def _rises_kib(*runs: tuple[str, int, int]) -> list[int]:
    """The probe's rise for each (mode, side, count), the processes side by side."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    procs = [subprocess.Popen([sys.executable, "-c", PROBE, mode, str(side), str(count),
                               str(STYLES), str(MODELS)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for mode, side, count in runs]  # fmt: skip
    rises = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        rises.append(int(out.split()[-1]))
    return rises


def test_memory_does_not_grow_with_the_paintings_of_a_blend() -> None:
    two, six, one_behind, eight_behind = _rises_kib(
        ("blend", 512, 2), ("blend", 512, 6), ("dual", 512, 2), ("dual", 512, 9)
    )
    # Holding every painting's maps, six took about 2.2x two's rise; weighing
    # a copy per painting, a blend of 8 behind a subject 3.1x one painting's.
    assert six < 1.4 * two + 32 * 1024, (two, six)
    assert eight_behind < 1.4 * one_behind + 32 * 1024, (one_behind, eight_behind)
