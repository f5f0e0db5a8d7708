"""Warm start and stopping rule: does starting from the feed-forward preview
reach the photo-started run's final loss sooner, and where would the stopping
rule have stopped?

    .venv/bin/python -m benchmarks.warm_start [--size 128] [--iterations 100]

For each photo/painting pair: the default recipe from the photo (init
content) and from the preview (init preview, the preview passed in as the
service passes the one it published), L-BFGS on the host so every iteration's
loss is seen. Reports each run's first and final loss, the iteration and
seconds at which the warm start first reaches the photo-started run's final
loss, and for a few stop_below fractions the iteration where the stopping rule
ends each run and its loss there (read off the same curves: the rule only
stops a run, it never changes one's path).
"""

import argparse
import json
import time
from typing import Any

from benchmarks.common import machine, write_json

PAIRS = (("grace_hopper.png", "starry.jpg"), ("parrot.jpg", "waves.jpg"),
         ("kite_and_cold.jpg", "strokes.jpg"))  # fmt: skip
FRACTIONS = (0.002, 0.005, 0.01, 0.02)

Curve = list[tuple[int, float, float]]  # (iteration, seconds, the loss measured there)


def run(size: int, iterations: int) -> dict[str, Any]:
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams, preview_mix
    from worker.runtime.model_cache import get_previewer

    base = StyleParams(iterations=iterations)
    net = load_feature_net((base.content_layer, *base.style_layers), MODELS)
    previewer = get_previewer()

    def curve(photo: Any, painting: Any, params: StyleParams, init: Any = None) -> Curve:
        points, started = [], time.perf_counter()
        for step in stylize(photo, [(painting, 1.0)], params, net, init_image=init):
            points.append((step.iteration, time.perf_counter() - started, step.losses["total"]))
        return points

    warm_params = base.model_copy(update={"init": "preview"})
    photo0 = to_working_size(read_rgb(PHOTOS / PAIRS[0][0]), 64)
    curve(photo0, photo0, StyleParams(iterations=2))  # trace: not timed
    pairs, curves = [], {}
    for photo_name, painting_name in PAIRS:
        photo = to_working_size(read_rgb(PHOTOS / photo_name), size)
        painting = to_working_size(read_rgb(STYLES / painting_name), 512)
        started = time.perf_counter()
        preview = previewer.stylize(photo, [(painting, 1.0)], preview_mix(base.strength))
        preview_s = time.perf_counter() - started
        cold = curve(photo, painting, base)
        warm = curve(photo, painting, warm_params, preview)
        target = min(loss for _, _, loss in cold)
        pairs.append({
            "pair": [photo_name, painting_name], "size": list(photo.shape[:2]),
            "preview_s": round(preview_s, 3),
            "content": _summary(cold), "preview": _summary(warm),
            "content_final_loss": round(target, 1),
            # When each run first comes within x of the photo-started run's final loss.
            "reach": {str(x): {"content": _reach(cold, target * (1 + x)),
                               "preview": _reach(warm, target * (1 + x))}
                      for x in (0.0, 0.01, 0.02, 0.05)},
            "stopping_rule": {str(f): {"content": _stop(cold, f), "preview": _stop(warm, f)}
                              for f in FRACTIONS},
        })  # fmt: skip
        curves[f"{photo_name}+{painting_name}"] = {"content": cold, "preview": warm}
        print(json.dumps(pairs[-1]), flush=True)
    return {"iterations": iterations, "size": size, "pairs": pairs, "curves": curves}


def _summary(points: Curve) -> dict[str, float]:
    return {"first_loss": round(points[0][2], 1), "final_loss": round(min(p[2] for p in points), 1),
            "seconds": round(points[-1][1], 2)}  # fmt: skip


def _reach(points: Curve, loss: float) -> dict[str, float] | None:
    hit = next(((i, t) for i, t, value in points if value <= loss), None)
    return None if hit is None else {"iteration": hit[0], "seconds": round(hit[1], 2)}


def _stop(points: Curve, below: float) -> dict[str, float] | None:
    """Where the stopping rule (worker.pipeline.style._converged) ends this run."""
    from worker.pipeline.style import _converged

    totals: list[tuple[int, float]] = []
    for i, t, loss in points:
        totals.append((i, loss))
        if _converged(totals, below):
            best = min(p[2] for p in points[: len(totals)])
            return {"iteration": i, "seconds": round(t, 2), "loss": round(best, 1)}
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations)}
    write_json(f"warm_start_{args.size}", report)


if __name__ == "__main__":
    main()
