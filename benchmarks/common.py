"""What every benchmark shares: where results go and how the machine is named."""

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
# BACKDROP_BENCH_RESULTS: the suite's smoke test writes elsewhere than real runs.
RESULTS = Path(os.environ.get("BACKDROP_BENCH_RESULTS", REPO / "benchmarks" / "results"))
RESULTS.mkdir(parents=True, exist_ok=True)


def machine() -> str:
    """CPU model, cores and memory: every number is quoted with it."""
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    name = cpu.group(1).strip() if cpu else platform.processor()
    return f"{name}, {os.cpu_count()} cores, {pages / 2**30:.0f} GiB, no GPU"


def write_json(name: str, report: dict[str, Any]) -> Path:
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
