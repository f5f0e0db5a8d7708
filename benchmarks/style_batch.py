"""Per-image time of a photo's styles optimized as one batch (the worker's
queue.style_batch) against one at a time, on this machine: B = 1, 2, 4 at
256 px with the product's default optimizer path (L-BFGS on the device), over
several photos; the median and the worst of the per-image speedups.

    .venv/bin/python -m benchmarks.style_batch [--size 256 --iterations 20]
"""

import argparse
import json
import statistics
import time
from typing import Any

from benchmarks.common import feature_net, load_scaled, machine, write_json

PHOTOS = ["grace_hopper.png", "kite_and_cold.jpg", "cat_720p.jpg"]
PAINTINGS = ["starry.jpg", "waves.jpg", "strokes.jpg", "sketch.jpg"]


def run(size: int, iterations: int, batches: tuple[int, ...] = (1, 2, 4)) -> dict[str, Any]:
    from tqdm import tqdm

    from worker.pipeline.style import stylize_many
    from worker.pipeline.style_params import StyleParams

    net = feature_net()
    params = StyleParams(iterations=iterations, levels=1)
    paintings = [[(load_scaled(f"styles/{p}", size), 1.0)] for p in PAINTINGS]
    rows = []
    for name in tqdm(PHOTOS, desc="style batch", unit="photo"):
        photo = load_scaled(f"photos/{name}", size)
        row: dict[str, Any] = {"photo": name}
        for b in batches:
            outputs = paintings[:b]
            list(stylize_many(photo, outputs, params, net, lbfgs_every=iterations))  # warm
            start = time.perf_counter()
            list(stylize_many(photo, outputs, params, net, lbfgs_every=iterations))
            row[f"s_per_image_B{b}"] = round((time.perf_counter() - start) / b, 2)
        for b in batches[1:]:
            row[f"speedup_B{b}"] = round(row["s_per_image_B1"] / row[f"s_per_image_B{b}"], 2)
        rows.append(row)
    summary = {f"speedup_B{b}_{f.__name__}": f(r[f"speedup_B{b}"] for r in rows)
               for b in batches[1:] for f in (statistics.median, min)}  # fmt: skip
    return {"size": size, "iterations": iterations, "photos": rows, **summary}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations)}
    write_json("style_batch", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
