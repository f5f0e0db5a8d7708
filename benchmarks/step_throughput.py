"""Milliseconds per style step, its FLOPs, the GFLOP/s achieved against this
CPU's peak, batched steps, and what that means on a GPU.

    .venv/bin/python -m benchmarks.step_throughput [--sizes 256 512 --iterations 5]

FLOPs are counted analytically for the VGG convolutions up to the deepest loss
layer: forward 2*H*W*Cin*Cout*9 per conv, and the same again for the gradient
with respect to the input (no weight gradients are taken); Gram matrices add
2*HW*C*C per style layer, forward and backward. CPU peak = cores x clock x FP32
FLOPs per cycle per core (see flops_per_cycle_per_core), at the clock that
/proc/cpuinfo reports.
One step = one loss-and-gradient evaluation plus the update (Adam's; an
L-BFGS iteration is one or more of them, reported separately).
"""

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, write_json

H100_FP16_TENSOR_TFLOPS = 989.0  # dense, SXM
BATCH = 4


def conv_flops(net: Any, height: int, width: int) -> tuple[float, float]:
    """(forward conv FLOPs, Gram FLOPs) for one image."""
    forward = gram = 0.0
    h, w = height, width
    for layer in net.model.layers:
        cls = type(layer).__name__
        if cls == "MaxPooling2D":
            h, w = h // 2, w // 2
        elif cls == "Conv2D":
            cin, cout = layer.input.shape[-1], layer.filters
            forward += 2.0 * h * w * cin * cout * 9
            if layer.name.endswith("conv1"):
                gram += 2.0 * h * w * cout * cout
    return forward, gram


def flops_per_cycle_per_core(cpuinfo: str) -> int:
    """FP32 FLOPs per cycle per core from the vector width and FMA pipes: Intel
    server cores with AVX-512 have two 512-bit FMA units (2 x 16 lanes x 2 FLOPs
    = 64); AMD Zen 4 runs AVX-512 on two 256-bit pipes (32), as AVX2 cores do."""
    flags = set(re.search(r"flags\s*:\s*(.*)", cpuinfo).group(1).split())  # type: ignore[union-attr]
    if "avx512f" in flags and "GenuineIntel" in cpuinfo:
        return 64
    return 32 if "fma" in flags else 8


def cpu_peak_gflops() -> tuple[float, str]:
    """Peak at the nominal clock of /proc/cpuinfo (a VM shows no turbo clock:
    under sustained AVX-512 load the real clock may sit above or below it)."""
    text = Path("/proc/cpuinfo").read_text()
    found = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
    mhz = float(found.group(1)) if found else 2000.0
    cores, per_cycle = os.cpu_count() or 1, flops_per_cycle_per_core(text)
    how = f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} FP32 FLOPs/cycle"
    return cores * mhz / 1000 * per_cycle, how


def _seconds_per_step(steps: Any) -> float:
    next(steps), next(steps)  # tracing, and oneDNN's first pass at a new shape: not timed
    started = time.perf_counter()
    count = sum(1 for _ in steps)
    return (time.perf_counter() - started) / count


def measure(size: int, iterations: int) -> dict[str, Any]:
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style import stylize, stylize_many
    from worker.pipeline.style_params import StyleParams

    adam = StyleParams(iterations=iterations + 1, levels=1, optimizer="adam")
    net = load_feature_net((adam.content_layer, *adam.style_layers), MODELS)
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), size)
    names = ("starry.jpg", "waves.jpg", "sketch.jpg", "starry.jpg")
    paintings = [to_working_size(read_rgb(STYLES / n), size) for n in names[:BATCH]]
    one = _seconds_per_step(stylize(photo, [(paintings[0], 1.0)], adam, net))
    lbfgs = adam.model_copy(update={"optimizer": "lbfgs"})
    lbfgs_it = _seconds_per_step(stylize(photo, [(paintings[0], 1.0)], lbfgs, net))
    outputs = [[(p, 1.0)] for p in paintings]
    batched = _seconds_per_step(stylize_many(photo, outputs, adam, net))
    forward, gram = conv_flops(net, *photo.shape[:2])
    step_flops = 2 * forward + 2 * gram
    peak, how = cpu_peak_gflops()
    achieved = step_flops / one / 1e9
    fraction = achieved / peak
    gpu_step = step_flops / (H100_FP16_TENSOR_TFLOPS * 1e12 * fraction)
    return {
        "size": f"{photo.shape[1]}x{photo.shape[0]}",
        "network": net.name,
        "ms_per_adam_step": round(one * 1000, 1),
        "ms_per_lbfgs_iteration": round(lbfgs_it * 1000, 1),
        f"ms_per_image_step_batch_of_{BATCH}": round(batched / BATCH * 1000, 1),
        "batch_speedup_per_image": round(one / (batched / BATCH), 2),
        "gflop_per_step": round(step_flops / 1e9, 1),
        "achieved_gflops": round(achieved, 1),
        "cpu_peak_gflops": round(peak, 1),
        "cpu_peak_is": how,
        "fraction_of_peak": round(fraction, 3),
        "h100_fp16_ms_per_step_at_same_fraction": round(gpu_step * 1000, 3),
        # The default recipe: 100 L-BFGS iterations, each costing what it costs here
        # in Adam steps (line-search evaluations included).
        "h100_jobs_per_hour_default_recipe": round(3600 / (100 * lbfgs_it / one * gpu_step)),
    }


def run(sizes: list[int], iterations: int) -> dict[str, Any]:
    return {str(size): measure(size, iterations) for size in sizes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.sizes, args.iterations)}
    write_json("step_throughput", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
