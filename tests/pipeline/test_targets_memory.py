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

# Peak RSS rises (KiB) while a blend's targets are built (and, in dual, one
# value and gradient taken) for each count in turn, in one fresh process: the
# first count's rise from the start, each later one's above the peak so far
# (ru_maxrss only ever grows, so memory that does not grow adds ~0).
PROBE = """
import resource, sys
from pathlib import Path
import cv2, numpy as np
from worker.pipeline.features import load_feature_net
from worker.pipeline.objective import objective_for
from worker.pipeline.style_params import StyleParams, loss_weights
mode, side, counts = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3].split(",")]
styles, p = sorted(Path(sys.argv[4]).glob("*.jpg")), StyleParams()
net = load_feature_net((p.content_layer, *p.style_layers), Path(sys.argv[5]))
objective = objective_for(net, p.content_layer, p.style_layers, masked=mode == "dual")
painting_side = side if mode == "blend" else 96
photo = np.full((side, side, 3), 128.0, np.float32)
features = objective.content_features(photo if mode == "dual" else photo[:32, :32])
yy, xx = np.mgrid[:side, :side]
alpha = (np.hypot(yy - side / 2, xx - side / 2) < side / 3).astype(np.float32)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for count in counts:
    paintings = [cv2.resize(cv2.imread(str(styles[i % len(styles)])), (painting_side,) * 2)
                 .astype(np.float32) for i in range(count)]
    # dual: the subject's painting inside a disc, the blend outside it
    regions = np.stack([alpha] + [1 - alpha] * (count - 1)) if mode == "dual" else None
    targets = objective.targets(features, [paintings], [[1 / count] * count],
                                loss=loss_weights(p, count=1), regions=regions)
    if mode == "dual":
        objective.value_and_grad(photo[None], *targets.args())
    del paintings, targets
    now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(now - peak)
    peak = now
"""


def _rises_kib(*runs: tuple[str, int, str]) -> list[list[int]]:
    """The probe's rises for each (mode, side, counts), the processes side by side."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    procs = [subprocess.Popen([sys.executable, "-c", PROBE, mode, str(side), counts,
                               str(STYLES), str(MODELS)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for mode, side, counts in runs]  # fmt: skip
    rises = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        rises.append([int(line) for line in out.split()])
    return rises


def test_memory_does_not_grow_with_the_paintings_of_a_blend() -> None:
    (two, six_more), (one_behind, eight_more) = _rises_kib(("blend", 512, "2,6"),
                                                          ("dual", 512, "2,9"))  # fmt: skip
    # Measured: 318 MB then 82 MB more (it was 493 then 525 more, holding
    # every painting's maps); 744 then 29 more (730 then 1839 more, weighing a
    # copy of every feature map per painting).
    assert six_more < 0.5 * two + 32 * 1024, (two, six_more)
    assert eight_more < 0.5 * one_behind + 32 * 1024, (one_behind, eight_more)
