"""`make gpu-check` on this CPU machine: one line, exit 0; and the measuring
code it runs on a GPU, run here on the CPU at tiny sizes (`--smoke`)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_on_a_cpu_machine_it_says_so_in_one_line_and_exits_0() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0], done.stdout


@pytest.mark.slow
def test_the_gpu_measurements_run_on_the_cpu_at_tiny_sizes(tmp_path: Path) -> None:
    env = {**os.environ, "BACKDROP_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--smoke"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check_smoke.json").read_text())
    cells = {(s["precision"], s["xla"], s["batch"]) for s in report["steps"]}
    assert len(cells) == 3 * 2, "every precision, with and without XLA"
    assert all(batch == 2 for _, _, batch in cells), "the batched path"
    assert all(s.get("ms_per_step", 0) > 0 for s in report["steps"]), report["steps"]
    assert report["time_to_quality"]["reference"]["L_ref"] > 0
    assert report["styles_per_hour"]["styles_per_hour"] > 0
    paint = report["paint_full"]
    assert paint["seconds"] > 0 and paint["tiles"][-1] > 1, "painted above working size, tiled"
    assert "ms/step" in done.stdout and "styles per hour" in done.stdout
    assert "paint at full resolution" in done.stdout
    assert set(report["section_seconds"]) == {"steps", "time_to_quality", "styles_per_hour",
                                              "paint_full", "dial"}  # fmt: skip
    assert len(report["dial"]) == 3 and all(d["calibration_s"] > 0 for d in report["dial"])
    assert all(len(d["positions"]) == 5 for d in report["dial"]) and "strength dial" in done.stdout
