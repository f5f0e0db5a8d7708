"""`make gpu-check`: everything a GPU machine must show, in one run.

    .venv/bin/python -m benchmarks.gpu_check [--smoke]

On a machine where TensorFlow sees a CUDA GPU (install with `make install-gpu`):
1. the tests marked `gpu` (pytest -m gpu);
2. ms per step (device L-BFGS iterations, the product's default) at 256, 512
   and 1024 px, in float32 / mixed_float16 / mixed_bfloat16, with and without
   XLA, for batches of 1, 4 and 8 styles;
3. time to quality at 512 px (benchmarks.time_to_quality);
4. styles per hour per GPU for the default recipe (one 512 px job's seconds);
5. painting detail at full resolution (quality high, output original): a
   512 px result painted at 2048 px, seconds and peak GPU memory;
6. the strength dial: its calibration's seconds (128 px, the job's 100
   iterations, 9 gains) and its evenness on the 512 px job it was made for,
   over three photo/painting pairs (the CPU benchmark measures it at 128 px).
It writes benchmarks/results/gpu_check.json and prints one table.

On a CPU-only machine it says so in one line and exits 0. `--smoke` runs the
same measuring code on the CPU at tiny sizes (the test suite does, so the
command cannot rot before a GPU is found); its numbers mean nothing.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.common import REPO, feature_net, load_scaled, machine, write_json

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    batches: tuple[int, ...]
    iterations: int
    ttq: tuple[int, int]  # size, reference iterations
    job_side: int
    paint: tuple[int, int, int, int]  # working side, paint side, iterations, tile pixels
    dial: tuple[int, int, int]  # job side, calibration side, iterations


FULL = Plan((256, 512, 1024), (1, 4, 8), 20, (512, 300), 512, (512, 2048, 60, 2048 * 2048),
            (512, 128, 100))  # fmt: skip
# The smoke run's batch of 2 goes through stylize_many's batched path, which a
# batch of 1 shares (CI time: each cell traces and, with XLA, compiles).
SMOKE = Plan((48,), (2,), 2, (48, 4), 48, (48, 96, 2, 48 * 48), (48, 32, 2))
DIAL_PAIRS = (("grace_hopper.png", "starry.jpg"), ("parrot.jpg", "waves.jpg"),
              ("dog_segmentation.png", "strokes.jpg"))  # fmt: skip


def visible_gpus() -> list[str]:
    """Asked in a child process, so that TensorFlow's start-up chatter about
    missing CUDA drivers does not bury the one line a CPU machine prints."""
    probe = (
        "import tensorflow as tf; print(*[d.name for d in tf.config.list_physical_devices('GPU')])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    return done.stdout.split()


def run(smoke: bool) -> dict[str, Any]:
    from tqdm import tqdm

    plan = SMOKE if smoke else FULL
    report: dict[str, Any] = {"machine": machine(), "gpus": visible_gpus(), "smoke": smoke}
    report["gpu_tests"] = {"skipped": "smoke run"} if smoke else gpu_tests()
    grid = list(itertools.product(plan.sizes, PRECISIONS, (False, True), plan.batches))
    sections: dict[str, Callable[[], Any]] = {
        "steps": lambda: [step_ms(size, precision, xla, batch, plan.iterations) for
                          size, precision, xla, batch in tqdm(grid, desc="ms per step",
                                                              unit="case")],
        "time_to_quality": lambda: time_to_quality(*plan.ttq),
        "styles_per_hour": lambda: styles_per_hour(plan.job_side, smoke),
        "paint_full": lambda: paint_time(*plan.paint),
        "dial": lambda: [dial_check(*pair, *plan.dial) for pair in DIAL_PAIRS],
    }  # fmt: skip
    report["section_seconds"] = {}
    for name, section in sections.items():
        began = time.perf_counter()
        report[name] = section()
        report["section_seconds"][name] = round(time.perf_counter() - began, 1)
    return report


def gpu_tests() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "tests/gpu"],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    return {"exit_code": done.returncode, "summary": done.stdout.strip().splitlines()[-1:]}


def step_ms(size: int, precision: str, xla: bool, batch: int, iterations: int) -> dict[str, Any]:
    """ms per device L-BFGS iteration for `batch` styles of one photo, after a
    warm-up run (the trace and, with XLA, the compilation are not counted)."""
    from worker.pipeline.style import stylize_many
    from worker.pipeline.style_params import StyleParams

    net = feature_net(precision)
    photo = load_scaled("photos/grace_hopper.png", size)
    names = ["starry", "waves", "strokes", "sketch", "hubble"]
    outputs = [[(load_scaled(f"styles/{names[i % 5]}.jpg", size), 1.0)] for i in range(batch)]
    params = StyleParams(iterations=iterations, levels=1, optimizer="lbfgs")
    run = lambda: list(stylize_many(photo, outputs, params, net, xla=xla,  # noqa: E731
                                    lbfgs_every=iterations))  # fmt: skip
    try:
        run()
        start = time.perf_counter()
        last = run()[-1]
    except Exception as exc:  # out of memory, or XLA refusing an op: reported, not fatal
        return {"size": size, "precision": precision, "xla": xla, "batch": batch,
                "error": f"{type(exc).__name__}: {str(exc)[:200]}"}  # fmt: skip
    ms = (time.perf_counter() - start) * 1000 / iterations
    return {"size": size, "precision": precision, "xla": xla, "batch": batch,
            "ms_per_step": round(ms, 2), "ms_per_image": round(ms / batch, 2),
            "final_loss": round(sum(p["total"] for p in last.losses) / batch, 1)}  # fmt: skip


def time_to_quality(size: int, iterations: int) -> dict[str, Any]:
    from benchmarks import time_to_quality as ttq

    result = ttq.run(size, iterations, lbfgs_every=5)  # the product's default path
    keep = ("size", "reference", "default_reaches_L_ref_after_s", "ratio_T_ref_over_reach")
    return {k: result[k] for k in keep if k in result}


def styles_per_hour(side: int, smoke: bool) -> dict[str, Any]:
    """One default-recipe style at `side` px, optimized as the worker does;
    3600 / its seconds is a GPU's styles per hour (one process per GPU)."""
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.settings import Settings

    settings = Settings()
    params = StyleParams(iterations=4) if smoke else settings.style
    net = feature_net(settings.compute.precision)
    photo = load_scaled("photos/grace_hopper.png", side)
    painting = load_scaled("styles/starry.jpg", side)
    every = settings.compute.lbfgs_round_trip(max(1, params.iterations // 20))
    list(stylize(photo, [(painting, 1.0)], params, net, lbfgs_every=every))  # warm
    start = time.perf_counter()
    list(stylize(photo, [(painting, 1.0)], params, net, lbfgs_every=every))
    seconds = time.perf_counter() - start
    return {"side": side, "iterations": params.iterations, "seconds_per_style": round(seconds, 2),
            "styles_per_hour": round(3600 / seconds)}  # fmt: skip


def paint_time(working: int, side: int, iterations: int, tile_pixels: int) -> dict[str, Any]:
    """A working-size picture painted at `side` px as the stylize step paints
    it (settings' compute, paint_full's tiles); the photo itself stands in for
    the stylized image (the time does not depend on it). Timed after a
    2-iteration warm-up (traces, XLA's compilation per size)."""
    from worker.pipeline.paint_full import paint_full, paint_levels, tile_boxes
    from worker.runtime.settings import Settings

    settings = Settings()
    compute, overlap = settings.compute, min(64, side // 8)
    size = {"max_side": side, "tile_pixels": tile_pixels, "tile_overlap": overlap}
    paint = settings.paint_full.model_copy(update=size)
    net = feature_net(compute.precision)
    photo = load_scaled("photos/kite_and_cold.jpg", side)
    start = load_scaled("photos/kite_and_cold.jpg", working)
    painting = load_scaled("styles/starry.jpg", 512)
    every = compute.lbfgs_round_trip(compute.lbfgs_every)

    def run(n: int) -> None:
        paint_full(photo, start, [(painting, 1.0)], settings.style,
                   paint.model_copy(update={"iterations": n}), net, lbfgs_every=every,
                   xla=compute.xla)  # fmt: skip

    run(2)
    _gpu_peak(reset=True)
    began = time.perf_counter()
    run(iterations)
    seconds = time.perf_counter() - began
    h, w = photo.shape[:2]
    tiles = [len(tile_boxes((round(h * s / side), round(w * s / side)), paint))
             for s in paint_levels(working, side)]  # fmt: skip
    return {"working": working, "side": side, "iterations": iterations, "tiles": tiles,
            "seconds": round(seconds, 2), "peak_gpu_mib": _gpu_peak()}  # fmt: skip


def _gpu_peak(reset: bool = False) -> int | None:
    """The first GPU's peak memory in MiB since the last reset (None: no GPU)."""
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    peak = int(tf.config.experimental.get_memory_info("GPU:0")["peak"]) // 2**20
    if reset:
        tf.config.experimental.reset_memory_stats("GPU:0")
    return peak


def dial_check(photo_name: str, painting_name: str, side: int, dial_side: int,
               iterations: int) -> dict[str, Any]:  # fmt: skip
    """The dial calibrated as the stylize step does, then the job's picture at
    strengths 0, 0.25, 0.5, 0.75 and 1: seconds to calibrate, and evenness."""
    from worker.pipeline.judge import JUDGE_LAYERS, judge
    from worker.pipeline.strength_dial import calibrate, evenness, gain_for, positions
    from worker.pipeline.style import stylize
    from worker.runtime.settings import Settings

    settings = Settings()
    params = settings.style.model_copy(update={"iterations": iterations})
    net, judge_net = feature_net(settings.compute.precision), feature_net("float32", JUDGE_LAYERS)
    photo = load_scaled(f"photos/{photo_name}", side)
    styles = [(load_scaled(f"styles/{painting_name}", side), 1.0)]
    every = settings.compute.lbfgs_round_trip(settings.compute.lbfgs_every)
    start = time.perf_counter()
    curve = calibrate(photo, styles, params, net, judge_net, side=dial_side)
    seconds = time.perf_counter() - start
    pictures = [photo]
    for s in (0.25, 0.5, 0.75, 1.0):
        run = stylize(photo, styles, params, net, lbfgs_every=every,
                      gain=gain_for(s, lambda: curve))  # fmt: skip
        pictures.append(list(run)[-1].image)
    verdicts = [judge(judge_net, photo, styles, p) for p in pictures]
    places = positions([v.style for v in verdicts], [v.content for v in verdicts])
    return {
        "pair": f"{photo_name} + {painting_name}",
        "calibration_s": round(seconds, 2),
        "positions": [round(p, 3) for p in places],
        "evenness": round(evenness(places), 3),
    }


def table(report: dict[str, Any]) -> str:
    lines = [f"machine: {report['machine']}; GPUs: {report['gpus'] or 'none'}"]
    lines.append(f"gpu tests: {report['gpu_tests']}")
    lines.append(
        f"{'size':>5} {'precision':<15} {'xla':<5} {'batch':>5} {'ms/step':>9} {'ms/image':>9}"
    )
    for s in report["steps"]:
        cost = f"{s['ms_per_step']:>9} {s['ms_per_image']:>9}" if "ms_per_step" in s else s["error"]
        lines.append(f"{s['size']:>5} {s['precision']:<15} {s['xla']!s:<5} {s['batch']:>5} {cost}")
    lines.append(f"time to quality: {json.dumps(report['time_to_quality'])}")
    lines.append(f"styles per hour per GPU: {json.dumps(report['styles_per_hour'])}")
    lines.append(f"paint at full resolution: {json.dumps(report['paint_full'])}")
    lines += [f"strength dial: {json.dumps(d)}" for d in report["dial"]]
    lines.append(f"seconds per section: {json.dumps(report['section_seconds'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="the same code on the CPU, tiny")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not args.smoke and not visible_gpus():
        print("gpu-check: no CUDA GPU is visible to TensorFlow on this machine: nothing to "
              "measure (on a GPU machine: make install-gpu && make gpu-check)")  # fmt: skip
        return 0
    report = run(args.smoke)
    path = write_json("gpu_check_smoke" if args.smoke else "gpu_check", report)
    print(table(report))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
