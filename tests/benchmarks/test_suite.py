"""The benchmark command runs on a clean clone and reports every section.

`benchmarks.run_all --quick` (real models, real worker, real S3 server, just
small): its timings mean nothing, so only what must hold whatever the machine
is asserted, above all the fan-out's proof that one job computes the photo's
mask and content features once for four styles.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("step_throughput", "time_to_quality_256", "time_to_quality_512",
            "preview_latency_512", "fan_out_256", "queue_overhead_256",
            "full_resolution", "gateway_latency")  # fmt: skip


def test_quick_suite_reports_every_section(tmp_path: Path) -> None:
    env = {**os.environ, "BACKDROP_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "benchmarks.run_all", "--quick"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "all.json").read_text())
    assert set(SECTIONS) <= set(report)
    assert "time to quality" in done.stdout and "queue overhead" in done.stdout
    assert report["full_resolution"]["12MP"]["peak_rss_mb"] > 0
    one = report["fan_out_256"]["one_4_style_job"]
    assert one["states"] == ["SUCCEEDED"] and one["results"] == 4
    assert one["counters"]["segment"] == 1 and one["counters"]["content_features"] == 1
    assert one["counters"]["content_features_reused"] == 3 and one["counters"]["stylize"] == 4
    four = report["fan_out_256"]["four_1_style_jobs"]["counters"]
    assert four["segment"] + four["mask_reused"] == 4 and four["segment"] == 1
    assert four["content_features"] + four["content_features_reused"] == 4
    assert four["content_features"] == 1
    for key in ("time_to_quality_256", "time_to_quality_512"):
        ttq = report[key]
        assert ttq["reference"]["L_ref"] > 0 and len(ttq["curves"]["default"]) >= 2
    assert report["preview_latency_512"]["worker_child_peak_rss_mib"] > 300  # TF is loaded
    plot = cv2.imread(str(tmp_path / "all.plot.png"))
    assert plot is not None and plot.shape[1] >= 1000, "both sizes' curves side by side"
