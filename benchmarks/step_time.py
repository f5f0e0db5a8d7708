"""Seconds per style-optimization iteration at given sizes (prints, never asserts).

.venv/bin/python benchmarks/step_time.py --sizes 256 512 --iterations 10
"""

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from worker.model_cache import get_feature_net
from worker.pipeline import intake
from worker.pipeline.style import stylize
from worker.pipeline.style_params import StyleParams
from worker.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    settings = Settings()
    params = StyleParams(iterations=args.iterations + 1, levels=1)
    net = get_feature_net(params, settings)
    photo_bytes = (SHARED / "photos" / "grace_hopper.png").read_bytes()
    style_bytes = (SHARED / "styles" / "starry.jpg").read_bytes()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; network {net.name}")
    for size in args.sizes:
        limits = intake.IntakeLimits(max_side=size)
        photo = intake.load_photo(photo_bytes, limits)
        style = intake.load_photo(style_bytes, limits)
        steps = stylize(photo, [(style, 1.0)], params, net)
        next(steps)  # the first step traces and compiles: not timed
        started = time.perf_counter()
        count = sum(1 for _ in steps)
        per = (time.perf_counter() - started) / count
        print(f"{size:>5} px ({photo.shape[1]}x{photo.shape[0]}): {per * 1000:8.1f} ms/iteration")


if __name__ == "__main__":
    main()
