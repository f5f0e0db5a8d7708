"""The capacity model: GPUs, waits and cost for 10k, 100k and 1M photos a day.

    .venv/bin/python -m benchmarks.capacity [--docs] [--seeds 20]

Runs benchmarks.capacity_model (a discrete-event simulation of the fleet with
the service's scheduling rules and KEDA's autoscaling) in two ways:

1. The check: tests/load/test_fairness.py as it ran (2 workers serving every
   queue, interactive window 8, batch window 2, A's 200 batch jobs, C's 5, B's
   10 interactive a second apart), with the stage times measured here by
   benchmarks.capacity_probe (its JSON if present, else the numbers below,
   measured the same way), against the README's measured waits. Also with
   today's window rule (2 per live process, batch floor 2: window 4).
2. A day at 10k, 100k and 1M photos, peak 3x the mean, a mix of tenants
   (interactive apps and batch back-fills), 1-4 outputs a photo, on the
   deploy/k8s pools and KEDA settings (max replicas lifted so the need shows).
   GPU stage times: benchmarks/results/gpu_check.json (`make gpu-check`) when
   it exists, else the stand-in from the FLOP count (GPU_STANDIN below).

Prints both tables, writes benchmarks/results/capacity.json and
capacity_day.png (queue depth and replicas over each day); `--docs` also
writes docs/capacity_day.png for the README. Reports, never asserts. About a
minute or two on 2 cores, most of it the 1M day.
"""

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.capacity_model import (
    DAY,
    Arrival,
    Autoscale,
    Fleet,
    Pool,
    Result,
    StageTimes,
    Tenant,
    day_of_arrivals,
    empirical,
    fixed,
    lognormal,
    percentile,
    simulate,
)
from benchmarks.common import REPO, RESULTS, machine, write_json
from jobstore.capacity import WindowRule

GPU_PRICE_PER_HOUR = 3.00  # USD per GPU-hour: H100-class, on-demand cloud, 2026 (assumed)

# -- the GPU stand-in, from the FLOP count (deploy/README.md, "GPU on paper") --------
FLOP_PER_EVAL_512 = 271e9  # VGG16 forward + gradient to the image, 437x512, Grams included
GPU_PEAK_FLOPS = 989e12  # H100 SXM dense FP16 tensor (an H200 has the same compute)
GPU_SUSTAINED = 0.35  # of peak at batch 1 with XLA (0.85 on the CPU; 0.6-1 ms planned)
EVALS_PER_STYLE = 120  # 100 L-BFGS iterations x ~1.2 evaluations (line search)
ROUND_TRIPS_S = 10 * 0.002  # a host round trip every 10 iterations, ~2 ms each
CPU_SIDE_PER_RESULT_S = 0.10  # decode, PNG coding, S3 transfers, records (deploy/README.md)
PREVIEW_S = 0.01  # the feed-forward preview network on the GPU
SEGMENT_S = 0.07  # DeepLab (frozen graph) on the GPU ~15 ms, decode + store the photo
COMPOSITE_S = 0.15  # per output, on the CPU pool (512 px composite, PNG, S3)
FINALIZE_S = 0.01
STEP_OVERHEAD_S = 0.01  # Celery over Redis per step: ack, next message, job record
DISPATCH_S = 0.01  # a job's send to its first message in a worker's hands
POD_START_S = 90.0  # node ready: image pull (cached layers) ~45 s, TF + CUDA init and
#                     the models loaded and warmed ~45 s (startupProbe allows 300 s)

# -- the check's stage times, measured here (benchmarks.capacity_probe, 2 workers
# under a backlog, 2026-12-04, AMD EPYC 2 vCPUs shared): used without its JSON.
# fmt: off
PROBE_DEFAULT: dict[str, Any] = {
    "loaded_step_samples_s": {
        "segment": [0.085, 0.039, 0.058, 0.056, 0.045, 0.064, 0.035, 0.048,
            0.058, 0.076, 0.056, 0.044, 0.047, 0.053, 0.06, 0.05],
        "stylize": [0.783, 0.902, 0.746, 0.844, 0.786, 0.854, 0.857, 0.797,
            0.883, 0.773, 1.012, 0.855, 1.002, 0.848, 0.921, 0.636],
        "composite": [0.051, 0.056, 0.047, 0.045, 0.056, 0.05, 0.061, 0.065,
            0.035, 0.064, 0.061, 0.07, 0.058, 0.066, 0.051, 0.04],
        "finalize": [0.006, 0.005, 0.008, 0.004, 0.012, 0.006, 0.004, 0.004,
            0.006, 0.008, 0.003, 0.005, 0.004, 0.009, 0.004, 0.004],
    },
    "idle_wait_s": {"median": 0.007},
    "backlog_s_per_job": 0.473,
    "submit_s": 0.0047,
    "workers": 2,
}
# fmt: on

# The README's numbers (tests/load/test_fairness.py, two runs, 2026-11-24).
MEASURED: dict[str, tuple[float, ...]] = {
    "b_median": (0.58, 0.05), "b_p95": (0.96, 0.51),  # B's wait behind A's backlog, s
    "c_median": (4.2, 3.3), "c_p95": (6.6, 4.7),  # C's batch wait, s
    "a_done": (12, 15),  # A's jobs done when B's and C's were
}  # fmt: skip

TENANTS = (
    Tenant("photoapp", "interactive", 0.35),
    Tenant("editor", "interactive", 0.15),
    Tenant("kiosk", "interactive", 0.10),
    Tenant("social", "interactive", 0.06),
    Tenant("studio", "interactive", 0.02),
    Tenant("trial", "interactive", 0.02),
    Tenant("archive", "batch", 0.20, chunk_s=60.0),  # a minute's worth at once (its quota)
    Tenant("catalog", "batch", 0.10),  # one by one
)
OUTPUTS = ((1, 0.4), (2, 0.3), (3, 0.2), (4, 0.1))  # styles a photo: mean 2.0
SCENARIOS = (10_000, 100_000, 1_000_000)


# -- stage times ---------------------------------------------------------------------
def gpu_stages() -> tuple[StageTimes, dict[str, Any]]:
    """From gpu_check.json (a real GPU run) when there is one, else the stand-in."""
    path = RESULTS / "gpu_check.json"
    if path.exists():
        check = json.loads(path.read_text())
        if not check.get("smoke") and check.get("styles_per_hour", {}).get("seconds_per_style"):
            optimize = float(check["styles_per_hour"]["seconds_per_style"])
            source = f"measured: {path.name} ({check.get('gpus')}), {optimize} s a style"
            return _stages(optimize), {"source": source, "optimize_s": optimize}
    eval_s = FLOP_PER_EVAL_512 / (GPU_PEAK_FLOPS * GPU_SUSTAINED)
    optimize = EVALS_PER_STYLE * eval_s + ROUND_TRIPS_S
    source = (f"stand-in from the FLOP count: {FLOP_PER_EVAL_512 / 1e9:.0f} GFLOP an "
              f"evaluation / ({GPU_PEAK_FLOPS / 1e12:.0f} TFLOP/s x {GPU_SUSTAINED}) = "
              f"{eval_s * 1e3:.2f} ms, x {EVALS_PER_STYLE} evaluations + round trips = "
              f"{optimize:.3f} s a style")  # fmt: skip
    return _stages(optimize), {"source": source, "eval_ms": round(eval_s * 1e3, 3),
                               "optimize_s": round(optimize, 3)}  # fmt: skip


def _stages(optimize_s: float) -> StageTimes:
    stylize = optimize_s + PREVIEW_S + CPU_SIDE_PER_RESULT_S
    return StageTimes(segment=lognormal(SEGMENT_S, 0.3), stylize=lognormal(stylize, 0.2),
                      composite=lognormal(COMPOSITE_S, 0.3), finalize=fixed(FINALIZE_S),
                      step_overhead=STEP_OVERHEAD_S, dispatch=DISPATCH_S)  # fmt: skip


def probe() -> dict[str, Any]:
    path = RESULTS / "capacity_probe.json"
    return json.loads(path.read_text()) if path.exists() else PROBE_DEFAULT


def check_stages(p: dict[str, Any]) -> tuple[StageTimes, dict[str, Any]]:
    """The fairness test's job: every step as measured under the backlog, and a
    process's overhead per step (what the backlog's pace leaves over the steps)."""
    samples = p["loaded_step_samples_s"]
    mean = {k: statistics.fmean(v) for k, v in samples.items()}
    per_job = sum(mean.values())  # one output: 4 steps
    cycle = p["backlog_s_per_job"] * p["workers"]  # one worker's seconds per job
    overhead = max(0.0, (cycle - per_job) / 4)
    stages = StageTimes(empirical(samples["segment"]), empirical(samples["stylize"]),
                        empirical(samples["composite"]), empirical(samples["finalize"]),
                        step_overhead=overhead, dispatch=p["idle_wait_s"]["median"],
                        cpu_on_gpu_processes=True)  # fmt: skip
    return stages, {"step_mean_s": {k: round(v, 3) for k, v in mean.items()},
                    "worker_s_per_job": round(cycle, 3), "overhead_per_step_s": round(overhead, 3),
                    "dispatch_s": p["idle_wait_s"]["median"]}  # fmt: skip


# -- 1. the check against the two-worker run -----------------------------------------
def check(seeds: int, batch_window: WindowRule, p: dict[str, Any]) -> dict[str, Any]:
    stages, info = check_stages(p)
    pool = Pool("workers", "interactive", ("interactive", "batch"), 2, 0.0)
    windows = {"interactive": WindowRule(2.0, 8, 1024), "batch": batch_window}
    fleet = Fleet((pool,), windows, stages)
    submit = p["submit_s"]
    runs = []
    for seed in range(seeds):
        arrivals = [Arrival(i * submit, "a", "batch", 1) for i in range(200)]
        t = 200 * submit
        arrivals += [Arrival(t + i * submit, "c", "batch", 1) for i in range(5)]
        t += 5 * submit
        b_times = [t + i * (1.0 + submit) for i in range(10)]
        arrivals += [Arrival(b, "b", "interactive", 1) for b in b_times]
        result = simulate(fleet, arrivals, seed=seed, sample_every_s=3600)
        jobs = {k: [j for j in result.jobs if j.tenant == k] for k in "abc"}
        # The test: B's round returns after its last sleep and its jobs' ends (polled
        # every 0.2 s), then C's jobs are waited for (0.5 s), then A's are counted.
        b_back = max(b_times[-1] + 1.0, max(j.finished for j in jobs["b"]) + 0.1)
        end = max(b_back, max(j.finished for j in jobs["c"]) + 0.25)
        runs.append({
            "b_median": statistics.median(j.wait for j in jobs["b"]),
            "b_p95": percentile([j.wait for j in jobs["b"]], 0.95),
            "c_median": statistics.median(j.wait for j in jobs["c"]),
            "c_p95": percentile([j.wait for j in jobs["c"]], 0.95),
            "a_done": sum(j.finished <= end for j in jobs["a"]),
        })  # fmt: skip
    summary = {k: {"median": round(statistics.median(r[k] for r in runs), 2),
                   "p10": round(percentile([r[k] for r in runs], 0.1), 2),
                   "p90": round(percentile([r[k] for r in runs], 0.9), 2)}
               for k in runs[0]}  # fmt: skip
    return {"batch_window": batch_window.window(2), "seeds": seeds, "stages": info, **summary}


# -- 2. a day -------------------------------------------------------------------------
def day_fleet(stages: StageTimes) -> Fleet:
    """deploy/k8s (base behaviour, production minimums) with max replicas lifted."""
    interactive = Autoscale(target_per_pod=2, min_replicas=2, max_replicas=2000, polling_s=15,
                            cooldown_s=300, down_stabilization_s=600, up_pods=4, up_period_s=60,
                            down_pods=1, down_period_s=120)  # fmt: skip
    batch = Autoscale(target_per_pod=4, min_replicas=0, max_replicas=2000, polling_s=15,
                      cooldown_s=600, down_stabilization_s=300, up_percent=100, up_period_s=60,
                      down_pods=2, down_period_s=120)  # fmt: skip
    pools = (Pool("worker-gpu", "interactive", ("interactive", "batch"), 2, POD_START_S,
                  interactive),
             Pool("worker-gpu-batch", "batch", ("batch",), 0, POD_START_S, batch))  # fmt: skip
    windows = {"interactive": WindowRule(2.0, 8, 1024), "batch": WindowRule(2.0, 4, 512)}
    return Fleet(pools, windows, stages)


def day(photos: int, stages: StageTimes, seed: int = 0) -> tuple[dict[str, Any], Result]:
    arrivals = day_of_arrivals(photos, TENANTS, OUTPUTS, 3.0, seed)
    result = simulate(day_fleet(stages), arrivals, seed=seed, sample_every_s=60)
    pictures = sum(j.outputs for j in result.jobs)
    gpu_hours = result.gpu_seconds() / 3600
    hours = result.end / 3600
    busy = sum(p.busy_s for p in result.pods) / 3600
    inter, batch = result.waits("interactive"), result.waits("batch")
    row = {
        "photos": len(result.jobs), "pictures": pictures,
        "gpus_peak": result.peak_replicas(),
        "gpus_mean": round(gpu_hours / hours, 1),
        "gpu_busy": round(busy / gpu_hours, 2),
        "interactive_wait_p50_s": round(percentile(inter, 0.5), 2),
        "interactive_wait_p95_s": round(percentile(inter, 0.95), 2),
        "interactive_wait_max_s": round(max(inter), 1),
        "batch_wait_p50_s": round(percentile(batch, 0.5), 1),
        "batch_wait_p95_s": round(percentile(batch, 0.95), 1),
        "gpu_hours": round(gpu_hours, 1),
        "cost_usd_per_1000_pictures": round(gpu_hours * GPU_PRICE_PER_HOUR / pictures * 1000, 3),
        "pods_started": len(result.pods),
        "window_breaches": result.window_breaches,
    }  # fmt: skip
    return row, result


# -- output ---------------------------------------------------------------------------
def check_table(rows: Sequence[dict[str, Any]]) -> str:
    def sim(row: dict[str, Any], key: str) -> str:
        s = row[key]
        return f"{s['median']:g} ({s['p10']:g}-{s['p90']:g})"

    m = MEASURED
    heads = " ".join(f"{'sim, batch window ' + str(r['batch_window']):>26}" for r in rows)
    lines = [f"{'two-worker check':<28} {'measured (2 runs)':>18} {heads}"]
    items = [("B wait behind backlog p50", "b_median", m["b_median"]),
             ("B wait behind backlog p95", "b_p95", m["b_p95"]),
             ("C batch wait p50", "c_median", m["c_median"]),
             ("C batch wait p95", "c_p95", m["c_p95"]),
             ("A's done when B, C done", "a_done", m["a_done"])]  # fmt: skip
    for label, key, measured in items:
        shown = " / ".join(f"{v:g}" for v in measured)
        lines.append(f"{label:<28} {shown:>18} " + " ".join(f"{sim(r, key):>26}" for r in rows))
    return "\n".join(lines)


def day_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (f"{'photos/day':>10} {'pictures':>9} {'GPUs peak':>9} {'mean':>6} {'busy':>5} "
            f"{'int. p50':>8} {'p95':>6} {'batch p50':>9} {'p95':>7} "
            f"{'$/1000 pict.':>12}")  # fmt: skip
    lines = [head]
    for r in rows:
        lines.append(f"{r['photos']:>10} {r['pictures']:>9} {r['gpus_peak']:>9} "
                     f"{r['gpus_mean']:>6} {r['gpu_busy']:>5.0%} "
                     f"{r['interactive_wait_p50_s']:>7}s {r['interactive_wait_p95_s']:>5}s "
                     f"{r['batch_wait_p50_s']:>8}s {r['batch_wait_p95_s']:>6}s "
                     f"{r['cost_usd_per_1000_pictures']:>12.3f}")  # fmt: skip
    return "\n".join(lines)


def plot(days: Sequence[tuple[int, Result]], path: Path) -> None:
    """Per scenario: held + in flight per priority (top), replicas per pool
    (bottom), over the day. Pillow only (no matplotlib here)."""
    from PIL import Image, ImageDraw

    w, h, pad, gap = 300, 110, 34, 22
    image = Image.new("RGB", (len(days) * (w + pad + 8) + 8, 2 * (h + gap) + 44), "white")
    draw = ImageDraw.Draw(image)
    colours = {"interactive": (31, 119, 180), "batch": (255, 127, 14),
               "worker-gpu": (31, 119, 180), "worker-gpu-batch": (255, 127, 14),
               "total": (60, 60, 60)}  # fmt: skip
    for col, (photos, result) in enumerate(days):
        x0 = 8 + col * (w + pad + 8) + pad
        draw.text((x0, 4), f"{photos:,} photos/day", fill="black")
        s = result.samples
        panels = [("held + in flight", {k: [x.signal[k] for x in s] for k in s[0].signal}),
                  ("GPU pods", {**{k: [x.replicas[k] for x in s] for k in s[0].replicas},
                                "total": [sum(x.replicas.values()) for x in s]})]  # fmt: skip
        for row, (title, series) in enumerate(panels):
            y0 = 20 + row * (h + gap)
            top = max(1, max(max(v) for v in series.values()))
            draw.rectangle((x0, y0, x0 + w, y0 + h), outline=(170, 170, 170))
            draw.text((x0 + 3, y0 + 2), title, fill=(90, 90, 90))
            draw.text((x0 - pad + 2, y0), f"{top}", fill="black")
            draw.text((x0 - pad + 2, y0 + h - 10), "0", fill="black")
            for name, values in series.items():
                points = [(x0 + w * min(1.0, x.time / DAY), y0 + h - h * v / top)
                          for x, v in zip(s, values, strict=True)]  # fmt: skip
                draw.line(points, fill=colours[name], width=1)
            for hour in (0, 6, 12, 18, 24):
                draw.text((x0 + w * hour / 24 - 4, y0 + h + 2), f"{hour}h", fill=(90, 90, 90))
    legend = ("blue: interactive (queue; worker-gpu pods)   orange: batch (queue; worker-gpu-batch "
              "pods)   grey: all pods")  # fmt: skip
    draw.text((8, image.height - 14), legend, fill="black")
    image.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20, help="runs of the two-worker check")
    parser.add_argument("--docs", action="store_true", help="also write docs/capacity_day.png")
    parser.add_argument("--photos", type=int, nargs="*", default=list(SCENARIOS))
    args = parser.parse_args(argv)
    p = probe()
    # As measured (batch window 2), and today's rule: 2 per live process, floor 2.
    checks = [
        check(args.seeds, WindowRule(2.0, 2, 2), p),
        check(args.seeds, WindowRule(2.0, 2, 512), p),
    ]
    print(check_table(checks))
    stages, gpu = gpu_stages()
    print(f"\nGPU stage times: {gpu['source']}; pod start {POD_START_S:.0f} s; "
          f"${GPU_PRICE_PER_HOUR:.2f} a GPU-hour")  # fmt: skip
    rows, days = [], []
    for photos in args.photos:
        row, result = day(photos, stages)
        rows.append(row)
        days.append((photos, result))
    print(day_table(rows))
    report = {"machine": machine(), "check": checks, "measured": MEASURED,
              "probe": "capacity_probe.json" if (RESULTS / "capacity_probe.json").exists()
              else "built-in", "gpu": gpu, "pod_start_s": POD_START_S,
              "gpu_price_per_hour": GPU_PRICE_PER_HOUR,
              "tenants": [t.__dict__ for t in TENANTS], "outputs": OUTPUTS,
              "days": rows}  # fmt: skip
    path = write_json("capacity", report)
    plot(days, RESULTS / "capacity_day.png")
    if args.docs:
        plot(days, REPO / "docs" / "capacity_day.png")
    print(f"wrote {path} and {RESULTS / 'capacity_day.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
