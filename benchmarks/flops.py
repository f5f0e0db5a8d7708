"""FLOPs of one style step, achieved GFLOP/s on this CPU, and a GPU projection.

    .venv/bin/python benchmarks/flops.py [--size 512 --iterations 5]

FLOPs are counted analytically for the VGG convolutions up to the deepest loss
layer: forward 2*H*W*Cin*Cout*9 per conv, and the same again for the gradient
with respect to the input (no weight gradients are taken). Gram matrices and
the rest are added as 2*HW*C*C per style layer. CPU peak = cores x clock x
FP32 FLOPs per cycle per core (32 for two 256-bit FMA pipes, as on AMD Zen 4
running AVX-512; read the clock from /proc/cpuinfo).
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

H100_FP16_TENSOR_TFLOPS = 989.0  # dense, SXM
H100_FP32_TFLOPS = 67.0
FLOPS_PER_CYCLE_PER_CORE = 32
# /proc/cpuinfo shows the base clock; AMD EPYC 9004 (Zen 4) boosts to about
# 3.7 GHz, and measured throughput above the base-clock peak shows it does.
BOOST_GHZ = 3.7


def conv_flops(net, height: int, width: int) -> tuple[float, float]:
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


def cpu_peak_gflops() -> float:
    text = Path("/proc/cpuinfo").read_text()
    mhz = float(re.search(r"cpu MHz\s*:\s*([\d.]+)", text).group(1))
    return (os.cpu_count() or 1) * mhz / 1000 * FLOPS_PER_CYCLE_PER_CORE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams

    params = StyleParams(iterations=args.iterations + 1, levels=1)
    net = load_feature_net((params.content_layer, *params.style_layers), MODELS)
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), args.size)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), args.size)
    steps = stylize(photo, [(painting, 1.0)], params, net)
    next(steps)
    started = time.perf_counter()
    count = sum(1 for _ in steps)
    seconds = (time.perf_counter() - started) / count
    forward, gram = conv_flops(net, *photo.shape[:2])
    step_flops = 2 * forward + 2 * gram  # forward + input gradient
    achieved = step_flops / seconds / 1e9
    peak = cpu_peak_gflops()
    boost_peak = (os.cpu_count() or 1) * BOOST_GHZ * FLOPS_PER_CYCLE_PER_CORE
    fraction = achieved / boost_peak
    gpu_step = step_flops / (H100_FP16_TENSOR_TFLOPS * 1e12 * fraction)
    per_job = 300 * (0.25 + 1.0) / 2  # default recipe: 150 steps at 1/4 the pixels, 150 at full
    report = {
        "size": f"{photo.shape[1]}x{photo.shape[0]}",
        "network": net.name,
        "gflop_per_step": round(step_flops / 1e9, 1),
        "cpu_ms_per_step": round(seconds * 1000, 1),
        "cpu_achieved_gflops": round(achieved, 1),
        "cpu_peak_gflops_base_clock": round(peak, 1),
        "cpu_peak_gflops_boost_clock": round(boost_peak, 1),
        "fraction_of_boost_peak": round(fraction, 3),
        "h100_fp16_ms_per_step_at_same_fraction": round(gpu_step * 1000, 2),
        "h100_jobs_per_hour_default_recipe": round(3600 / (per_job * gpu_step), 0),
    }
    print(json.dumps(report, indent=2))
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "flops.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
