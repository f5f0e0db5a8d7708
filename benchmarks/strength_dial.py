"""The strength dial's evenness, before and after its calibration per painting.

    .venv/bin/python -m benchmarks.strength_dial [--size 128] [--iterations 100]

For each photo x painting: the dial calibrated on the photo (worker.pipeline.
strength_dial, at its own small size), then the picture at strengths 0, 0.25,
0.5, 0.75 and 1 at --size with the old fixed curve and with the calibrated
gains. The judge places each picture between the photo (0) and the strongest
(1); evenness = smallest step / largest step (1 is even). Reports each pair's
evenness, before and after, the gains, and the worst and median over pairs;
writes JSON and a grid (per pair: a row before, a row after).
"""

import argparse
import json
import statistics
import time
from typing import Any

import cv2
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from worker.pipeline.strength_dial import DIAL_SIDE

PHOTOS = ("grace_hopper.png", "parrot.jpg", "dog_segmentation.png")
PAINTINGS = ("starry.jpg", "waves.jpg", "strokes.jpg")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def one_pair(
    photo_name: str, painting_name: str, size: int, iterations: int, dial_side: int
) -> dict[str, Any]:
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.judge import JUDGE_LAYERS, judge
    from worker.pipeline.strength_dial import calibrate, evenness, positions
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams, strength_gain

    params = StyleParams(iterations=iterations)
    net = load_feature_net((params.content_layer, *params.style_layers), MODELS)
    judge_net = load_feature_net(JUDGE_LAYERS, MODELS)
    photo = to_working_size(read_rgb(PHOTOS / photo_name), size)
    styles = [(to_working_size(read_rgb(STYLES / painting_name), 2 * size), 1.0)]
    started = time.perf_counter()
    curve = calibrate(photo, styles, params, net, judge_net, side=dial_side)
    calibration_s = time.perf_counter() - started
    gains = {"before": [strength_gain(s) for s in STRENGTHS],
             "after": [curve.gain_at(s) for s in STRENGTHS]}  # fmt: skip
    images: dict[float, np.ndarray] = {0.0: photo}
    rows, report = {}, {}
    for name, ladder in gains.items():
        pictures = [photo]
        for g in ladder[1:]:
            if round(g, 9) not in images:
                image = list(stylize(photo, styles, params, net, gain=g))[-1].image
                assert image is not None
                images[round(g, 9)] = image
            pictures.append(images[round(g, 9)])
        verdicts = [judge(judge_net, photo, styles, p) for p in pictures]
        places = positions([v.style for v in verdicts], [v.content for v in verdicts])
        report[name] = {"gains": [round(g, 6) for g in ladder],
                        "positions": [round(p, 3) for p in places],
                        "evenness": round(evenness(places), 3)}  # fmt: skip
        rows[name] = np.concatenate(pictures, axis=1)
    return {"pair": [photo_name, painting_name], "calibration_s": round(calibration_s, 1),
            "dial": {"gains": curve.gains, "positions": curve.positions}, **report,
            "rows": rows}  # fmt: skip


def run(size: int, iterations: int, dial_side: int) -> dict[str, Any]:
    pairs, grid = [], []
    for photo in PHOTOS:
        for painting in PAINTINGS:
            result = one_pair(photo, painting, size, iterations, dial_side)
            grid += [_labelled(result["rows"][k], f"{photo} + {painting}: {k}") for k in
                     ("before", "after")]  # fmt: skip
            result.pop("rows")
            pairs.append(result)
            write_json(f"strength_dial_{size}.partial", {"machine": machine(), "pairs": pairs})
            print(json.dumps({k: result[k] for k in ("pair", "before", "after")}), flush=True)
    width = max(r.shape[1] for r in grid)
    grid = [cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT,
                               value=(255, 255, 255)) for r in grid]  # fmt: skip
    path = RESULTS / f"strength_dial_{size}.grid.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(grid), cv2.COLOR_RGB2BGR))
    summary = {k: {"worst": min(p[k]["evenness"] for p in pairs),
                   "median": statistics.median(p[k]["evenness"] for p in pairs)}
               for k in ("before", "after")}  # fmt: skip
    return {"size": size, "iterations": iterations, "dial_side": dial_side,
            "summary": summary, "pairs": pairs,
            "grid": str(path)}  # fmt: skip


def _labelled(row: np.ndarray, text: str) -> np.ndarray:
    band = np.full((18, row.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, row])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--dial-side", type=int, default=DIAL_SIDE, help="calibration's size")
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations, args.dial_side)}
    write_json(f"strength_dial_{args.size}", report)
    print(json.dumps({"summary": report["summary"], "grid": report["grid"]}, indent=2))


if __name__ == "__main__":
    main()
