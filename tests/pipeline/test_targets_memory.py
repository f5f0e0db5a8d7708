"""A blend's style targets hold one painting's feature maps at a time: the
memory they need does not grow with the number of paintings (a 16-painting
blend at 2048 px held about 35 GB of feature maps before)."""

import subprocess
import sys

import pytest

from tests.conftest import MODELS, REPO, STYLES

pytestmark = pytest.mark.slow

# Peak RSS rise (KiB) while one blend's targets are built, in a fresh process
# (ru_maxrss only ever grows, so each count needs its own).
PROBE = """
import resource, sys
from pathlib import Path
import cv2, numpy as np
from worker.pipeline.features import load_feature_net
from worker.pipeline.objective import objective_for
from worker.pipeline.style_params import StyleParams
side, count, styles = int(sys.argv[1]), int(sys.argv[2]), sorted(Path(sys.argv[3]).glob("*.jpg"))
p = StyleParams()
net = load_feature_net((p.content_layer, *p.style_layers), Path(sys.argv[4]))
objective = objective_for(net, p.content_layer, p.style_layers)
paintings = [cv2.resize(cv2.imread(str(styles[i % len(styles)])), (side, side))
             .astype(np.float32) for i in range(count)]
features = objective.content_features(paintings[0][:32, :32])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
objective.targets(features, [paintings], [[1 / count] * count], loss=None)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def _rise_kib(count: int, side: int = 512) -> int:
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    args = [sys.executable, "-c", PROBE, str(side), str(count), str(STYLES), str(MODELS)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


def test_six_paintings_need_no_more_memory_than_two() -> None:
    two, six = _rise_kib(2), _rise_kib(6)
    # Holding every painting's maps, six took about 2.6x two's rise.
    assert six < 1.4 * two + 32 * 1024, (two, six)
