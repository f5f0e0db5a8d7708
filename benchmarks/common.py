"""What every benchmark shares: where results go and how the machine is named."""

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
# BACKDROP_BENCH_RESULTS: the suite's smoke test writes elsewhere than real runs.
RESULTS = Path(os.environ.get("BACKDROP_BENCH_RESULTS", REPO / "benchmarks" / "results"))
RESULTS.mkdir(parents=True, exist_ok=True)


def machine() -> str:
    """CPU model, cores and memory: every number is quoted with it."""
    info = Path("/proc/cpuinfo").read_text()

    def field(name: str) -> str:
        found = re.search(rf"^{name}\s*:\s*(.+)$", info, re.MULTILINE)
        return found.group(1).strip() if found else "?"

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    name = field("model name") if field("model name") != "?" else platform.processor()
    return (f"{name} (family {field('cpu family')} model {field('model')}), "
            f"{os.cpu_count()} cores, {pages / 2**30:.0f} GiB, no GPU")  # fmt: skip


def write_json(name: str, report: dict[str, Any]) -> Path:
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def photo_variant(seed: int) -> bytes:
    """Grace Hopper's photo with one pixel changed: new bytes, so nothing stored
    for an earlier run (mask, features, result) is reused."""
    import io

    import numpy as np
    from PIL import Image

    from tests.conftest import PHOTOS

    pixels = np.asarray(Image.open(PHOTOS / "grace_hopper.png").convert("RGB")).copy()
    pixels[0, 0] = (seed % 256, seed // 256 % 256, 7)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_variant(client: Any, seed: int) -> str:
    """A new copy of the photo in the store: nothing cached for it is reused."""
    return str(client.upload(photo_variant(seed)))


def load_scaled(name: str, side: int) -> Any:
    """A shared photo or painting (`photos/x.png`, `styles/y.jpg`), RGB uint8,
    its longest side `side` pixels."""
    import cv2

    from tests.conftest import SHARED

    bgr = cv2.imread(str(SHARED / "images" / name), cv2.IMREAD_COLOR)
    assert bgr is not None, name
    scale = side / max(bgr.shape[:2])
    small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def feature_net(precision: str = "float32", layers: tuple[str, ...] | None = None) -> Any:
    """The default recipe's VGG (or these layers) from the shared models, in `precision`."""
    from tests.conftest import MODELS
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.style_params import StyleParams

    p = StyleParams()
    return load_feature_net(layers or (p.content_layer, *p.style_layers), MODELS, precision)


def pair_objective(photo: Any, painting: Any, net: Any) -> tuple[Any, Any]:
    """The default recipe's objective and its one-level targets for one photo
    and painting at the photo's size: (objective, worker.pipeline.style.Targets)."""
    from worker.pipeline.objective import objective_for
    from worker.pipeline.style import _level_targets, photo_features
    from worker.pipeline.style_params import StyleParams, loss_weights

    params = StyleParams()
    objective = objective_for(net, params.content_layer, params.style_layers)
    size = photo.shape[:2]
    targets = _level_targets(photo_features(photo, params, net)[size], size,
                             [[(painting, 1.0)]], [[1.0]], params, objective,
                             loss_weights(params))  # fmt: skip
    return objective, targets
