"""The default recipe's optimization in float32 against mixed_bfloat16 on
this CPU (BACKDROP_COMPUTE__PRECISION): seconds, and the loss of each result
measured in float32, so the two are judged by one scale. On CPUs with
AMX-BF16 (Intel Sapphire Rapids and later) oneDNN runs the bfloat16
convolutions on the matrix units; elsewhere bfloat16 may be slower.

    .venv/bin/python -m benchmarks.cpu_precision [--size 256 --iterations 100]

Per pair: seconds for the run as the service's stylize step runs it (traced
before the clock starts; each precision timed twice, in the order float32,
bfloat16, bfloat16, float32, and the faster of the two kept, so neither
gains from going first on a shared machine), its own last loss, and its
picture's loss in float32; the speedup and the float32 loss's change, the
median and the worst over the pairs.
"""

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import feature_net, load_scaled, machine, pair_objective, write_json

PAIRS = [("grace_hopper.png", "starry.jpg"), ("parrot.jpg", "waves.jpg"),
         ("kite_and_cold.jpg", "starry.jpg")]  # fmt: skip
PRECISIONS = ("float32", "mixed_bfloat16")


def cpu_flags() -> list[str]:
    """The CPU's bfloat16 features, as Linux reports them (none elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    return sorted({f for f in text.split() if f in ("avx512_bf16", "amx_bf16", "amx_tile")})


def float32_loss(photo: np.ndarray, painting: np.ndarray, image: np.ndarray, net: Any) -> float:
    """The default recipe's total loss of `image`, in float32."""
    import tensorflow as tf

    objective, targets = pair_objective(photo, painting, net)
    x = tf.constant(image[None].astype(np.float32))
    losses, _ = objective.value_and_grad(x, *targets.args())
    return float(losses["total"][0])


def run_pair(photo: np.ndarray, painting: np.ndarray, iterations: int,
             nets: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.settings import Settings

    params = StyleParams(iterations=iterations)
    settings = Settings()
    # The round trip the stylize step uses (worker.service.stylize_steps).
    every = settings.compute.lbfgs_round_trip(settings.queue.progress_every(iterations))
    seconds: dict[str, list[float]] = {p: [] for p in nets}
    results: dict[str, Any] = {}
    short = params.model_copy(update={"iterations": 2})
    for net in nets.values():
        list(stylize(photo, [(painting, 1.0)], short, net, lbfgs_every=every))  # traced
    for precision in (*nets, *reversed(nets)):
        started = time.perf_counter()
        *_, last = stylize(photo, [(painting, 1.0)], params, nets[precision], lbfgs_every=every)
        seconds[precision].append(time.perf_counter() - started)
        results[precision] = last
    row: dict[str, Any] = {}
    for precision, last in results.items():
        assert last.image is not None
        row[precision] = {"seconds": round(min(seconds[precision]), 2),
                          "seconds_both": [round(t, 2) for t in seconds[precision]],
                          "own_loss": round(last.losses["total"], 2),
                          "loss_in_float32": round(float32_loss(photo, painting, last.image,
                                                                nets["float32"]), 2)}  # fmt: skip
    half, full = row["mixed_bfloat16"], row["float32"]
    row["speedup"] = round(full["seconds"] / half["seconds"], 2)
    row["loss_change"] = round(half["loss_in_float32"] / full["loss_in_float32"] - 1, 4)
    return row


def run(size: int, iterations: int, pairs: list[tuple[str, str]] = PAIRS) -> dict[str, Any]:
    from tqdm import tqdm

    nets = {p: feature_net(p) for p in PRECISIONS}
    rows = []
    for photo_name, painting_name in tqdm(pairs, desc="cpu precision", unit="pair"):
        photo = load_scaled(f"photos/{photo_name}", size)
        painting = load_scaled(f"styles/{painting_name}", 512)
        rows.append({"pair": [photo_name, painting_name],
                     **run_pair(photo, painting, iterations, nets)})  # fmt: skip
    speedups, changes = [r["speedup"] for r in rows], [r["loss_change"] for r in rows]
    return {"size": size, "iterations": iterations, "cpu_flags": cpu_flags(), "pairs": rows,
            "speedup_median": statistics.median(speedups), "speedup_worst": min(speedups),
            "loss_change_median": statistics.median(changes),
            "loss_change_worst": max(changes)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations)}
    write_json("cpu_precision", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
