"""Full-resolution compositing (`output: original`): seconds and peak memory
for a 12 MP and a 48 MP photo, each measured in its own process.

The photos are kite_and_cold.jpg upscaled to 4000x3000 and 8000x6000; the
stylized layer and the mask are at the 512 px working size. Reported: the
composite's seconds and the process's peak RSS, with the RSS once the photo
is decoded (the photo alone is 36 MB / 144 MB of pixels).
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import machine, write_json

SIZES = {"12MP": (3000, 4000), "48MP": (6000, 8000)}


def measure_one(label: str) -> dict[str, float]:
    import cv2
    import numpy as np

    from tests.conftest import PHOTOS, read_rgb
    from worker.pipeline.full_resolution import composite_full
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.stages import CompositeParams

    h, w = SIZES[label]
    full = cv2.resize(read_rgb(PHOTOS / "kite_and_cold.jpg"), (w, h), interpolation=cv2.INTER_CUBIC)
    working = to_working_size(full, 512)
    mask = np.zeros(working.shape[:2], np.float32)
    cv2.circle(mask, (working.shape[1] // 2, working.shape[0] // 2), working.shape[0] // 4, 1, -1)
    stylized = cv2.GaussianBlur(working, (0, 0), 3)[:, ::-1].copy()
    rss_photo = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    composite_full(full, working, mask, stylized, "background", CompositeParams())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak),
            "rss_with_photo_mb": round(rss_photo)}  # fmt: skip


def run(labels: list[str]) -> dict[str, Any]:
    """Each size in a fresh process, so each peak RSS is its own."""
    report: dict[str, Any] = {"machine": machine()}
    for label in labels:
        done = subprocess.run([sys.executable, "-m", "benchmarks.full_resolution", "--one", label],
                              capture_output=True, text=True, check=True)  # fmt: skip
        report[label] = json.loads(done.stdout.strip().splitlines()[-1])
        print(label, report[label], flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", choices=sorted(SIZES))
    parser.add_argument("--quick", action="store_true", help="12 MP only")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one)))
        return
    print(write_json("full_resolution", run(["12MP"] if args.quick else list(SIZES))))


if __name__ == "__main__":
    main()
