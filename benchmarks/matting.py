"""Soft edges: the guided filter against closed-form matting, on synthetic hair
and fur with a known alpha, and what the matting costs.

    .venv/bin/python -m benchmarks.matting [--quick]

Cases: long hair strands and dense short fur, 0.5, 1 and 2 px wide, each over
several shared photos at 512 px (tests/pipeline/hair.py makes them; the mask is
DeepLab-like: the dense part only, blocky). Per case SAD and gradient error of
the alpha (thousands, alphamatting.com's units) and the colour error of the
subject put over a new background where the true alpha is fractional inside
the band ("bleed": the old background carried along). Cost, each in its own
process: the edge of a 512 px picture, and a 12 MP `output: original`
composite, seconds and peak memory (tracemalloc peak of the call, and the
process's peak RSS); numba's warm-up, cold (empty cache) and cached. Writes
benchmarks/results/matting.json and docs/matting_hair.jpg (close-ups of the
shared portraits: guided | matting, over a flat green). Numbers are reported,
never asserted.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

import cv2
import numpy as np

from benchmarks.common import REPO, load_scaled, machine, write_json
from tests.pipeline.hair import bleed, gradient_error, hair_scene, sad
from worker.pipeline.matting import outer_width, trimap
from worker.pipeline.stages import CompositeParams, band_half_width, refined_edge

BACKGROUNDS = ["kite_and_cold.jpg", "parrot.jpg", "cat_720p.jpg", "bird_segmentation.png"]
KINDS, WIDTHS = ("hair", "fur"), (0.5, 1.0, 2.0)
GREEN = (40, 200, 60)


def quality(side: int, backgrounds: list[str]) -> dict[str, Any]:
    rows = []
    for name in backgrounds:
        background = load_scaled(f"photos/{name}", side).astype(np.float32)
        for kind in KINDS:
            for width in WIDTHS:
                rows.append({"background": name, "kind": kind, "width_px": width,
                             **_one_case(background, kind, width)})  # fmt: skip
                print(_row_text(rows[-1]), flush=True)
    ratios = [r["matting"]["grad"] / r["guided"]["grad"] for r in rows]
    worst = rows[int(np.argmax(ratios))]
    return {"side": side, "cases": rows, "worst_case": worst,
            "grad_reduction_worst": round(1 - max(ratios), 3),
            "grad_reduction_median": round(1 - float(np.median(ratios)), 3),
            "mean": {m: _means([r[m] for r in rows]) for m in ("guided", "matting")}}  # fmt: skip


def _means(results: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in results])), 4) for k in results[0]}


def _one_case(background: np.ndarray, kind: str, width: float) -> dict[str, Any]:
    scene = hair_scene(background, kind, width, seed=1)
    over = np.zeros_like(scene.fg)
    over[...] = GREEN
    side = max(scene.photo.shape[:2])
    half = band_half_width(CompositeParams(), side)
    tri = trimap(scene.mask, half, outer_width(half))  # the service's band
    where = (tri == 0.5) & (scene.alpha > 0.02) & (scene.alpha < 0.98)
    out = {}
    for method in ("guided", "matting"):
        edge = refined_edge(scene.photo, scene.mask, CompositeParams(edge=method))
        a = edge.alpha
        out[method] = {"sad": round(sad(a, scene.alpha), 3),
                       "grad": round(gradient_error(a, scene.alpha), 4),
                       "bleed": round(bleed(scene, a, edge.fg, over, where), 2)}  # fmt: skip
    return out


def _row_text(r: dict[str, Any]) -> str:
    g, m = r["guided"], r["matting"]
    return (f"{r['background']:<22} {r['kind']:<4} {r['width_px']:>3} px  SAD {g['sad']:6.2f} -> "
            f"{m['sad']:6.2f}  grad {g['grad']:7.3f} -> {m['grad']:7.3f}  bleed "
            f"{g['bleed']:5.1f} -> {m['bleed']:5.1f}")  # fmt: skip


def cost_one(label: str, method: str) -> dict[str, float]:
    """One measurement, in this (fresh) process: seconds and peak memory."""
    from worker.runtime.model_cache import warm_matting

    warm_matting()  # compile or load numba's cache first: a worker does it at start
    params = CompositeParams(edge=method)
    if label == "512px":
        scene = hair_scene(load_scaled("photos/kite_and_cold.jpg", 512).astype(np.float32))
        call = lambda: refined_edge(scene.photo, scene.mask, params)  # noqa: E731
    else:
        call = _twelve_mp(params)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": round(seconds, 2), "traced_peak_mib": round(peak),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_before_mib": round(base)}  # fmt: skip


def _twelve_mp(params: CompositeParams) -> Any:
    """As benchmarks.full_resolution: a 4000x3000 upload, working size 512."""
    from tests.conftest import PHOTOS, read_rgb
    from worker.pipeline.full_resolution import composite_full
    from worker.pipeline.intake import to_working_size

    full = cv2.resize(read_rgb(PHOTOS / "kite_and_cold.jpg"), (4000, 3000),
                      interpolation=cv2.INTER_CUBIC)  # fmt: skip
    working = to_working_size(full, 512)
    mask = np.zeros(working.shape[:2], np.float32)
    cv2.circle(mask, (working.shape[1] // 2, working.shape[0] // 2), working.shape[0] // 4, 1, -1)
    stylized = cv2.GaussianBlur(working, (0, 0), 3)[:, ::-1].copy()
    return lambda: composite_full(full, working, mask, stylized, "background", params)


def _subprocess(args: list[str], env: dict[str, str] | None = None) -> Any:
    done = subprocess.run([sys.executable, "-m", "benchmarks.matting", *args], capture_output=True,
                          text=True, check=True, env=env)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def cost(labels: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for label in labels:
        report[label] = {m: _subprocess(["--cost", label, m]) for m in ("guided", "matting")}
        print(label, report[label], flush=True)
    return report


def warm_up_times() -> dict[str, float]:
    """worker.runtime.model_cache.warm_matting in a fresh process: with an empty
    numba cache (a new image or machine) and then with the cache it left."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = _subprocess(["--warm"], env)
        cached = _subprocess(["--warm"], env)
    return {"cold_s": cold, "cached_s": cached}


def contact_sheet(path: str) -> None:
    """Hair and fur close-ups of shared photos, DeepLab's mask, over flat
    green: guided (left) | matting (right)."""
    from tests.conftest import MODELS, PHOTOS, read_rgb
    from worker.pipeline.segmentation import TFLiteSegmenter, subject_class_ids, subject_mask

    deeplab = TFLiteSegmenter(MODELS / "deeplabv3_mnv2_pascal_quant.tflite")
    rows = []
    for name, subject, box in (("grace_hopper.png", "person", (0.0, 0.05, 0.45, 0.75)),
                               ("cat_720p.jpg", "cat", (0.0, 0.2, 0.5, 0.7))):  # fmt: skip
        photo = load_scaled(f"photos/{name}", 512)
        mask = subject_mask(read_rgb(PHOTOS / name), deeplab, subject_class_ids([subject]),
                            photo.shape[:2])  # fmt: skip
        h, w = photo.shape[:2]
        y0, x0, y1, x1 = (int(box[0] * h), int(box[1] * w), int(box[2] * h), int(box[3] * w))
        tiles = []
        for method in ("guided", "matting"):
            edge = refined_edge(photo, mask, CompositeParams(edge=method))
            a = edge.alpha[..., None]
            out = a * edge.fg.astype(np.float32) + (1 - a) * np.array(GREEN, np.float32)
            tile = np.clip(out[y0:y1, x0:x1], 0, 255).astype(np.uint8)
            tiles.append(cv2.resize(tile, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
        row = np.concatenate([tiles[0], np.full((tiles[0].shape[0], 6, 3), 255, np.uint8),
                              tiles[1]], axis=1)  # fmt: skip
        rows.append(cv2.resize(row, (900, round(row.shape[0] * 900 / row.shape[1]))))
    sheet = np.concatenate(rows, axis=0)
    cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="256 px, two photos, no 12 MP")
    parser.add_argument("--cost", nargs=2, metavar=("SIZE", "METHOD"))
    parser.add_argument("--warm", action="store_true")
    args = parser.parse_args()
    if args.cost:
        print(json.dumps(cost_one(*args.cost)))
        return
    if args.warm:
        from worker.runtime.model_cache import warm_matting

        print(json.dumps(round(warm_matting(), 2)))
        return
    report: dict[str, Any] = {"machine": machine()}
    side, backgrounds = (256, BACKGROUNDS[:2]) if args.quick else (512, BACKGROUNDS)
    report["quality"] = quality(side, backgrounds)
    report["cost"] = cost(["512px"] if args.quick else ["512px", "12MP"])
    if not args.quick:
        report["numba_warm_up"] = warm_up_times()
        contact_sheet(str(REPO / "docs" / "matting_hair.jpg"))
    q = report["quality"]
    print(f"worst case: {_row_text(q['worst_case'])}")
    print(
        f"gradient error: {q['grad_reduction_worst']:.0%} lower in the worst case, "
        f"{q['grad_reduction_median']:.0%} median; means {q['mean']}"
    )
    print(json.dumps({k: report[k] for k in ("cost", "numba_warm_up") if k in report}))
    print(write_json("matting", report))


if __name__ == "__main__":
    main()
