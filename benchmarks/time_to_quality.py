"""Time to quality: Backdrop's default recipe against the classic one.

    .venv/bin/python -m benchmarks.time_to_quality --size 256 --ref-iterations 1000

Reference: neural-style's recipe (one scale, Adam lr 10 on 0..255 pixels, init
from noise, Backdrop's loss weights) for --ref-iterations; its final total loss
is L_ref and its wall time T_ref. Backdrop: the default StyleParams. Every few
iterations both images are scored with the same loss at full size (scoring time
is not counted). Reports when the default first reaches L_ref and T_ref / that
time; writes JSON, a loss-vs-seconds plot and the pictures side by side.
"""

import argparse
import json
import time
from typing import Any

import cv2
import numpy as np

from benchmarks.common import RESULTS, machine, write_json

Curve = list[tuple[float, float]]


def run(
    size: int, ref_iterations: int, photo_name: str = "grace_hopper.png",
    painting_name: str = "starry.jpg", judge: Any = None, lbfgs_every: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """One photo and painting; `judge(photo, painting, image)` scores the final
    pictures by another statistic than the optimized loss, when given.
    `lbfgs_every` > 0: the default runs its L-BFGS on the device."""
    import tensorflow as tf

    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.objective import objective_for
    from worker.pipeline.style import _level_targets, stylize
    from worker.pipeline.style_params import StyleParams

    default = StyleParams()
    net = load_feature_net((default.content_layer, *default.style_layers), MODELS)
    photo = to_working_size(read_rgb(PHOTOS / photo_name), size)
    starry = to_working_size(read_rgb(STYLES / painting_name), 512)
    objective = objective_for(net, default.content_layer, default.style_layers)
    features = objective.content_features(photo)
    targets = _level_targets(features, photo.shape[:2], [[(starry, 1.0)]], [[1.0]], default,
                             objective)  # fmt: skip

    def score(image: np.ndarray) -> float:
        full = cv2.resize(image, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_CUBIC)
        x = tf.constant(full[None].astype(np.float32))
        return float(objective.value_and_grad(x, *targets.args())[0]["total"][0])

    def race(params: StyleParams, every: int, on_device: int = 0) -> tuple[Curve, np.ndarray]:
        curve, clock, image = [], 0.0, photo
        steps = stylize(photo, [(starry, 1.0)], params, net, checkpoint_every=every,
                        lbfgs_every=on_device)  # fmt: skip
        started = time.perf_counter()
        for step in steps:
            if step.image is not None:
                clock += time.perf_counter() - started
                image = step.image
                curve.append((round(clock, 2), round(score(image), 2)))
                started = time.perf_counter()
        return curve, image

    race(StyleParams(iterations=3), 1, min(lbfgs_every, 3))  # trace, warm up: not timed
    race(StyleParams(iterations=3, optimizer="adam", init="noise"), 1)
    reference = StyleParams(init="noise", levels=1, iterations=ref_iterations, optimizer="adam")
    ref_curve, ref_image = race(reference, 10)
    ours_curve, ours_image = race(default, 5, lbfgs_every)
    l_ref, t_ref = ref_curve[-1][1], ref_curve[-1][0]
    reached = next((t for t, loss in ours_curve if loss <= l_ref), None)
    name = f"time_to_quality_{size}"
    if (photo_name, painting_name) != ("grace_hopper.png", "starry.jpg"):
        name += f"_{photo_name.split('.')[0]}_{painting_name.split('.')[0]}"
    side = np.concatenate([photo, ref_image, ours_image], axis=1)
    cv2.imwrite(str(RESULTS / f"{name}.images.png"), cv2.cvtColor(side, cv2.COLOR_RGB2BGR))
    return {
        "size": f"{photo.shape[1]}x{photo.shape[0]}",
        "reference": {"recipe": "noise init, 1 scale, Adam lr 10",
                      "iterations": ref_iterations, "L_ref": l_ref, "T_ref_s": t_ref},
        "default": {"recipe": f"{default.init} init, {default.levels} scale(s), "
                              f"{default.optimizer}", "iterations": default.iterations,
                    "final_loss": ours_curve[-1][1], "seconds": ours_curve[-1][0]},
        "default_reaches_L_ref_after_s": reached,
        "ratio_T_ref_over_reach": None if reached is None else round(t_ref / reached, 2),
        "images": str(RESULTS / f"{name}.images.png"),
        "pair": [photo_name, painting_name],
        "judge": None if judge is None else {"reference": judge(photo, starry, ref_image),
                                             "default": judge(photo, starry, ours_image)},
        "curves": {"reference": ref_curve, "default": ours_curve},
    }  # fmt: skip


def plot(report: dict[str, Any], width: int = 700, height: int = 450) -> np.ndarray:
    """Loss (log scale) against seconds: reference red, default blue, L_ref grey."""
    ref, ours = report["curves"]["reference"], report["curves"]["default"]
    l_ref, pad = report["reference"]["L_ref"], 50
    canvas = np.full((height, width, 3), 255, np.uint8)
    t_max = max(ref[-1][0], ours[-1][0])
    losses = [loss for _, loss in ref + ours]
    lo, hi = np.log10(min(losses)), np.log10(max(losses))

    def point(t: float, loss: float) -> tuple[int, int]:
        x = pad + (width - 2 * pad) * t / t_max
        y = height - pad - (height - 2 * pad) * (np.log10(loss) - lo) / max(hi - lo, 1e-9)
        return int(x), int(y)

    for curve, colour in ((ref, (40, 40, 220)), (ours, (220, 90, 30))):
        pts = np.array([point(t, loss) for t, loss in curve], np.int32)
        cv2.polylines(canvas, [pts], False, colour, 2, cv2.LINE_AA)
    y_ref = point(0, l_ref)[1]
    cv2.line(canvas, (pad, y_ref), (width - pad, y_ref), (150, 150, 150), 1)
    ratio = report["ratio_T_ref_over_reach"]
    title = f"{report['size']}: reference (red) vs default (blue); grey L_ref; ratio {ratio}"
    _text(canvas, title, (pad, 30))
    _text(canvas, f"0 .. {t_max:.0f} s", (width - pad - 90, height - 20))
    _text(canvas, "log loss", (5, height // 2))
    return canvas


def _text(canvas: np.ndarray, text: str, at: tuple[int, int]) -> None:
    cv2.putText(canvas, text, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ref-iterations", type=int, default=1000)
    args = parser.parse_args()
    report = run(args.size, args.ref_iterations)
    report["machine"] = machine()
    name = f"time_to_quality_{args.size}"
    write_json(name, report)
    cv2.imwrite(str(RESULTS / f"{name}.plot.png"), plot(report))
    print(json.dumps({k: v for k, v in report.items() if k != "curves"}, indent=2))


if __name__ == "__main__":
    main()
