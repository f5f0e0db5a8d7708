"""Time to quality over several photos and paintings, not one, with a judge
that is not the optimized loss.

    .venv/bin/python -m benchmarks.quality_pairs [--size 256] [--ref-iterations 1000]

For each pair: when Backdrop's default recipe first reaches the classic
recipe's final loss (time_to_quality.run), with the median and the worst over
pairs. The judge scores both final pictures by statistics the optimization
never saw: Gram distances at VGG16's second conv of each block (the loss uses
the first) and the content distance at block3_conv2 (the loss uses
block4_conv2). Writes JSON and one picture grid (photo | reference | default).
"""

import argparse
import json
import statistics
from typing import Any

import cv2
import numpy as np

from benchmarks import time_to_quality as ttq
from benchmarks.common import RESULTS, machine, write_json

PHOTOS = ("grace_hopper.png", "parrot.jpg", "kite_and_cold.jpg")
PAINTINGS = ("starry.jpg", "waves.jpg")
JUDGE_STYLE = ("block1_conv2", "block2_conv2", "block3_conv2", "block4_conv3", "block5_conv2")
JUDGE_CONTENT = "block3_conv2"


def judge_for() -> Any:
    from tests.conftest import MODELS
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.measures import content_distance, style_distance

    net = load_feature_net((*JUDGE_STYLE, JUDGE_CONTENT), MODELS)

    def judge(photo: np.ndarray, painting: np.ndarray, image: np.ndarray) -> dict[str, float]:
        style = style_distance(net, image, painting, JUDGE_STYLE)
        content = content_distance(net, image, photo, JUDGE_CONTENT)
        return {"style": round(style, 3), "content": round(content, 3)}

    return judge


def run(size: int, ref_iterations: int, photos: tuple[str, ...] = PHOTOS,
        paintings: tuple[str, ...] = PAINTINGS) -> dict[str, Any]:  # fmt: skip
    judge = judge_for()
    pairs = []
    for photo in photos:
        for painting in paintings:
            result = ttq.run(size, ref_iterations, photo, painting, judge)
            result.pop("curves")
            pairs.append(result)
            # Kept after every pair: a run cut off still leaves what it measured.
            write_json(f"quality_pairs_{size}.partial", {"machine": machine(), "pairs": pairs})
            print(json.dumps({k: result[k] for k in ("pair", "ratio_T_ref_over_reach", "judge")}),
                  flush=True)  # fmt: skip
    ratios = [p["ratio_T_ref_over_reach"] or 0.0 for p in pairs]  # None: never reached = 0
    grid = np.concatenate([_row(p["images"]) for p in pairs], axis=0)
    cv2.imwrite(str(RESULTS / f"quality_pairs_{size}.grid.png"), grid)
    return {"size": size, "ref_iterations": ref_iterations, "pairs": pairs,
            "median_ratio": statistics.median(ratios), "worst_ratio": min(ratios),
            "never_reached": sum(p["ratio_T_ref_over_reach"] is None for p in pairs),
            "grid": str(RESULTS / f"quality_pairs_{size}.grid.png")}  # fmt: skip


def _row(path: str, height: int = 200) -> np.ndarray:
    image = cv2.imread(path)
    assert image is not None, path
    width = round(image.shape[1] * height / image.shape[0])
    row = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(row, 2, 2, 0, 900 - width if width < 900 else 0,
                              cv2.BORDER_CONSTANT, value=(255, 255, 255))[:, :900]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ref-iterations", type=int, default=1000)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.ref_iterations)}
    write_json(f"quality_pairs_{args.size}", report)
    print(json.dumps({k: v for k, v in report.items() if k != "pairs"}, indent=2))


if __name__ == "__main__":
    main()
