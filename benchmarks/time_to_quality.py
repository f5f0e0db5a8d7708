"""Time to quality: Backdrop's default recipe against the classic one.

    .venv/bin/python benchmarks/time_to_quality.py --size 256 --ref-iterations 1000

Reference: neural-style's recipe — one scale, Adam lr 10, init from noise, the
same loss weights — for --ref-iterations; its final total loss is L_ref and its
wall time T_ref. Backdrop: the default StyleParams. Every 10 iterations both
images are scored with the same loss at full size (scoring time is not
counted). Prints when Backdrop first reaches L_ref and T_ref / that time; writes
JSON, a loss-vs-seconds plot and the two pictures side by side.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ref-iterations", type=int, default=1000)
    args = parser.parse_args()
    import tensorflow as tf

    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.objective import objective_for
    from worker.pipeline.style import _level_targets, stylize
    from worker.pipeline.style_params import StyleParams

    default = StyleParams()
    net = load_feature_net((default.content_layer, *default.style_layers), MODELS)
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), args.size)
    starry = to_working_size(read_rgb(STYLES / "starry.jpg"), 512)
    objective = objective_for(net, default.content_layer, default.style_layers)
    targets = _level_targets(photo, [(starry, 1.0)], [1.0], default, objective)

    def score(image: np.ndarray) -> float:
        full = cv2.resize(image, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_CUBIC)
        x = tf.constant(full[None].astype(np.float32))
        return float(objective.value_and_grad(x, *targets.args())[0]["total"])

    def run(params: StyleParams) -> tuple[list[tuple[float, float]], np.ndarray]:
        curve, clock, image = [], 0.0, photo
        steps = stylize(photo, [(starry, 1.0)], params, net, checkpoint_every=10)
        started = time.perf_counter()
        for step in steps:
            if step.image is not None:
                clock += time.perf_counter() - started
                image = step.image
                curve.append((clock, score(image)))
                started = time.perf_counter()
        return curve, image

    reference = StyleParams(init="noise", levels=1, iterations=args.ref_iterations)
    ref_curve, ref_image = run(reference)
    l_ref, t_ref = ref_curve[-1][1], ref_curve[-1][0]
    ours_curve, ours_image = run(default)
    reached = next((t for t, loss in ours_curve if loss <= l_ref), None)
    report = {
        "size": f"{photo.shape[1]}x{photo.shape[0]}",
        "reference": {"iterations": args.ref_iterations, "L_ref": l_ref, "T_ref_s": t_ref},
        "default": {
            "iterations": default.iterations,
            "levels": default.levels,
            "final_loss": ours_curve[-1][1],
            "seconds": ours_curve[-1][0],
        },
        "default_reaches_L_ref_after_s": reached,
        "speedup_T_ref_over_reach": None if reached is None else t_ref / reached,
    }
    print(json.dumps(report, indent=2))
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = f"time_to_quality_{args.size}"
    (out / f"{name}.json").write_text(json.dumps({**report, "curves": {
        "reference": ref_curve, "default": ours_curve}}, indent=2) + "\n")  # fmt: skip
    cv2.imwrite(str(out / f"{name}.plot.png"), _plot(ref_curve, ours_curve, l_ref))
    side = np.concatenate([photo, ref_image, ours_image], axis=1)
    cv2.imwrite(str(out / f"{name}.images.png"), cv2.cvtColor(side, cv2.COLOR_RGB2BGR))


def _plot(
    ref: list[tuple[float, float]], ours: list[tuple[float, float]], l_ref: float
) -> np.ndarray:
    """Loss (log scale) against seconds: reference red, default blue, L_ref grey."""
    w, h, pad = 800, 500, 50
    canvas = np.full((h, w, 3), 255, np.uint8)
    t_max = max(ref[-1][0], ours[-1][0])
    losses = [loss for _, loss in ref + ours]
    lo, hi = np.log10(min(losses)), np.log10(max(losses))

    def point(t: float, loss: float) -> tuple[int, int]:
        x = pad + (w - 2 * pad) * t / t_max
        y = h - pad - (h - 2 * pad) * (np.log10(loss) - lo) / max(hi - lo, 1e-9)
        return int(x), int(y)

    for curve, colour in ((ref, (40, 40, 220)), (ours, (220, 90, 30))):
        pts = np.array([point(t, loss) for t, loss in curve], np.int32)
        cv2.polylines(canvas, [pts], False, colour, 2, cv2.LINE_AA)
    y_ref = point(0, l_ref)[1]
    cv2.line(canvas, (pad, y_ref), (w - pad, y_ref), (150, 150, 150), 1)
    cv2.putText(canvas, "reference (red) vs default (blue); grey: L_ref; x: s, y: log loss",
                (pad, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    cv2.putText(canvas, f"{t_max:.0f} s", (w - pad - 40, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 1)  # fmt: skip
    return canvas


if __name__ == "__main__":
    main()
