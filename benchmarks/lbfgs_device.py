"""L-BFGS on the host (NumPy, float64) against on the device (TensorFlow ops,
k iterations per host round trip), on this machine: ms per iteration, the
host's overhead per iteration (iteration time minus its objective
evaluations), and the loss reached at the same iteration count, over several
photos and paintings; the worst case is reported with the median.

    .venv/bin/python -m benchmarks.lbfgs_device [--sizes 256 512] [--iterations 30]
"""

import argparse
import itertools
import json
import statistics
import time
from typing import Any

import numpy as np

from benchmarks.common import feature_net, load_scaled, machine, write_json

PAIRS = [("grace_hopper.png", "starry.jpg"), ("kite_and_cold.jpg", "waves.jpg"),
         ("cat_720p.jpg", "strokes.jpg")]  # fmt: skip


def run(sizes: list[int], iterations: int, every: int = 10) -> dict[str, Any]:
    from tqdm import tqdm

    report: dict[str, Any] = {"iterations": iterations, "round_trip_every": every}
    cases = list(itertools.product(sizes, PAIRS))
    rows: dict[int, list[dict[str, float]]] = {s: [] for s in sizes}
    for size, (photo, painting) in tqdm(cases, desc="lbfgs host vs device", unit="case"):
        rows[size].append(_case(size, photo, painting, iterations, every))
    for size, found in rows.items():
        report[str(size)] = {
            "cases": found,
            **{f"{k}_median": round(statistics.median(r[k] for r in found), 2) for k in found[0]},
            "host_overhead_ms_worst": max(r["host_overhead_ms"] for r in found),
            "device_overhead_ms_worst": max(r["device_overhead_ms"] for r in found),
            "loss_ratio_worst": max(r["device_over_host_loss"] for r in found),
        }
    return report


def _case(size: int, photo: str, painting: str, iterations: int, every: int) -> dict[str, float]:
    from worker.pipeline import lbfgs
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams

    image, style = load_scaled("photos/" + photo, size), load_scaled("styles/" + painting, size)
    net = feature_net()
    params = StyleParams(iterations=iterations, levels=1, optimizer="lbfgs")
    evaluations = _count_evaluations(lbfgs)
    list(stylize(image, [(style, 1.0)], params, net, lbfgs_every=every))  # trace both paths
    list(stylize(image, [(style, 1.0)], StyleParams(iterations=2, levels=1), net))
    evaluations.clear()
    host_s, host = _timed(lambda: list(stylize(image, [(style, 1.0)], params, net)))
    calls = len(evaluations)
    device_s, device = _timed(
        lambda: list(stylize(image, [(style, 1.0)], params, net, lbfgs_every=every))
    )
    eval_ms = _evaluation_ms(image, style, params, net)
    host_ms, device_ms = host_s * 1000 / iterations, device_s * 1000 / iterations
    per_iteration = calls / iterations
    return {"size": size, "host_ms_per_iteration": round(host_ms, 1),
            "device_ms_per_iteration": round(device_ms, 1),
            "evaluations_per_iteration": round(per_iteration, 2),
            "evaluation_ms": round(eval_ms, 1),
            "host_overhead_ms": round(host_ms - per_iteration * eval_ms, 1),
            "device_overhead_ms": round(device_ms - per_iteration * eval_ms, 1),
            "device_over_host_loss": round(device[-1].losses["total"] / host[-1].losses["total"],
                                           3)}  # fmt: skip


def _count_evaluations(lbfgs: Any) -> list[int]:
    """Count the host version's objective evaluations (value and gradient)."""
    calls: list[int] = []
    original = lbfgs._evaluator

    def counting(*args: Any) -> Any:
        evaluate = original(*args)

        def counted(flat: np.ndarray) -> Any:
            calls.append(1)
            return evaluate(flat)

        return counted

    lbfgs._evaluator = counting
    return calls


def _evaluation_ms(image: np.ndarray, style: np.ndarray, params: Any, net: Any) -> float:
    """One value-and-gradient of the objective alone, median of 10."""
    import tensorflow as tf

    from worker.pipeline.objective import objective_for
    from worker.pipeline.style import photo_features
    from worker.pipeline.style_params import loss_weights

    objective = objective_for(net, params.content_layer, params.style_layers)
    size = image.shape[:2]
    features = photo_features(image, params, net)[size]
    targets = objective.targets(features, [[style]], [[1.0]], loss=loss_weights(params))
    x = tf.constant(image[None].astype(np.float32))
    times = []
    for _ in range(11):
        start = time.perf_counter()
        _, g = objective.value_and_grad(x, *targets.args())
        g.numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1000


def _timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.sizes, args.iterations)}
    write_json("lbfgs_device", report)
    print(json.dumps({k: {m: v for m, v in r.items() if m != "cases"} if isinstance(r, dict)
                      else r for k, r in report.items()}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
