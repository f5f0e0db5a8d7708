"""Every benchmark in one run: `make bench` (about 30 minutes on 2 cores).

    .venv/bin/python -m benchmarks.run_all [--quick]

Runs, in this order, on this machine and nothing else (do not run tests beside
it: they share the two cores): step throughput and GFLOP/s at 256 and 512 px;
time to quality at 256 px (reference 1000 iterations) and 512 px (300); the
preview latency at 512 px and the worker's peak memory on a 512 px job; the
fan-out of one photo to four styles; the queue overhead at 256 px; full resolution;
the gateway's added latency on status calls. Prints a
table, writes benchmarks/results/all.json and all.plot.png (both loss curves
and both picture comparisons). Numbers are reported, never asserted.
`--quick` shrinks every run (a smoke test of the suite, not a measurement).
"""

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from benchmarks import (
    fan_out,
    full_resolution,
    gateway_latency,
    preview_latency,
    queue_overhead,
    step_throughput,
)
from benchmarks import time_to_quality as ttq
from benchmarks.common import RESULTS, machine, write_json


def suite(quick: bool) -> dict[str, Callable[[], dict[str, Any]]]:
    """The full runs; in quick mode the same code on tiny images and counts."""
    small, large = (64, 96) if quick else (256, 512)
    return {
        "step_throughput": lambda: step_throughput.run([small, large], 2 if quick else 5),
        "time_to_quality_256": lambda: ttq.run(small, 20 if quick else 1000),
        "time_to_quality_512": lambda: ttq.run(large, 10 if quick else 300),
        "preview_latency_512": lambda: preview_latency.run(large, 2 if quick else 5),
        "fan_out_256": lambda: fan_out.run(small, 5 if quick else 100),
        "queue_overhead_256": lambda: queue_overhead.run(small, 5 if quick else 20,
                                                         1 if quick else 5),
        "full_resolution": lambda: full_resolution.run(["12MP"] if quick else ["12MP", "48MP"]),
        "gateway_latency": lambda: gateway_latency.run(10 if quick else 100),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="run just these (names as in all.json)")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    if args.only and (RESULTS / "all.json").exists():  # re-run some, keep the rest
        report = {**json.loads((RESULTS / "all.json").read_text()), **report}
    for name, bench in suite(args.quick).items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        report[name] = bench()
        report[name]["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
        write_json("all", report)  # kept after every benchmark: a cut-off run keeps its part
    print(table(report))
    cv2.imwrite(str(RESULTS / "all.plot.png"), summary_picture(report))
    print(f"wrote {RESULTS / 'all.json'} and {RESULTS / 'all.plot.png'}")


def table(r: dict[str, Any]) -> str:
    rows = [("machine", r["machine"])]
    for s in r.get("step_throughput", {}).values():
        if isinstance(s, dict):
            rows += [(f"step {s['size']}", f"{s['ms_per_adam_step']} ms/step, L-BFGS "
                      f"{s['ms_per_lbfgs_iteration']} ms/it, {s['achieved_gflops']} GFLOP/s = "
                      f"{s['fraction_of_peak']:.0%} of {s['cpu_peak_gflops']}, "
                      f"batch of 4: x{s['batch_speedup_per_image']} per image")]  # fmt: skip
    for key in ("time_to_quality_256", "time_to_quality_512"):
        if t := r.get(key):
            rows.append((f"time to quality {t['size']}",
                         f"L_ref {t['reference']['L_ref']:.0f} in T_ref "
                         f"{t['reference']['T_ref_s']:.0f} s; default reaches it after "
                         f"{t['default_reaches_L_ref_after_s']} s: ratio "
                         f"{t['ratio_T_ref_over_reach']}"))  # fmt: skip
    if p := r.get("preview_latency_512"):
        rows.append(("preview", f"median {p['median_from_submit_s']} s from submit, "
                     f"{p['median_from_start_s']} s from start"))  # fmt: skip
        rows.append(("worker peak RSS", f"{p['worker_child_peak_rss_mib']} MiB (512 px job)"))
    if f := r.get("fan_out_256"):
        for arm in ("one_4_style_job", "four_1_style_jobs"):
            rows.append((arm, f"{f[arm]['wall_s']} s, {f[arm]['counters']}"))
    if q := r.get("queue_overhead_256"):
        rows.append(("queue overhead", f"{q['overhead_median_s']} s (queue "
                     f"{q['queue_median_s']} s vs local {q['local_median_s']} s)"))  # fmt: skip
    for label, m in r.get("full_resolution", {}).items():
        if isinstance(m, dict):
            rows.append((f"full resolution {label}",
                         f"{m['seconds']} s, peak RSS {m['peak_rss_mb']} MB"))  # fmt: skip
    for kind, g in r.get("gateway_latency", {}).items():
        if isinstance(g, dict):
            rows.append((f"gateway, status of a {kind.replace('_', ' ')}",
                         f"+{g['added_median_ms']} ms median, +{g['added_p95_ms']} ms p95 "
                         f"over {g['calls']} calls ({g['gateway_ms']['median']} vs "
                         f"{g['client_ms']['median']} ms)"))  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def summary_picture(r: dict[str, Any]) -> np.ndarray:
    """Loss curves on top, photo | reference | default below, per size."""
    columns = []
    for key in ("time_to_quality_256", "time_to_quality_512"):
        if key not in r:
            continue
        curves = ttq.plot(r[key])
        pictures = cv2.imread(r[key]["images"])
        if pictures is None:
            continue
        scale = curves.shape[1] / pictures.shape[1]
        pictures = cv2.resize(pictures, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        columns.append(np.concatenate([curves, pictures], axis=0))
    if not columns:
        return np.full((50, 300, 3), 255, np.uint8)
    height = max(c.shape[0] for c in columns)
    padded = [np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)), constant_values=255)
              for c in columns]  # fmt: skip
    return np.concatenate(padded, axis=1)


if __name__ == "__main__":
    main()
