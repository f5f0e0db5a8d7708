"""How soon the preview of a 512 px photo shows in the job status.

    .venv/bin/python benchmarks/preview_latency.py [--size 512 --repeats 5]

Starts its own S3 server and one worker (Redis db 14); submits jobs and polls
the status every 20 ms; prints seconds from submit and from the job's start
(a worker took it) to the preview URL, segmentation included.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from api_contracts.client import Client  # noqa: E402
from api_contracts.models import JobRequest, StyleRef  # noqa: E402
from tests.conftest import PHOTOS, STYLES  # noqa: E402
from tests.services import service_stack  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    log = out / "preview_latency.worker.log"
    with service_stack(REDIS_URL, log, BACKDROP_INTAKE__MAX_SIDE=str(args.size)) as client:
        style = StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))
        runs = [_one(client, _variant(client, seed), style, seed)
                for seed in range(args.repeats + 1)][1:]  # fmt: skip
    report = {
        "size": args.size,
        "from_submit_s": [r[0] for r in runs],
        "from_start_s": [r[1] for r in runs],
        "median_from_submit_s": statistics.median(r[0] for r in runs),
        "median_from_start_s": statistics.median(r[1] for r in runs),
    }
    print(json.dumps(report, indent=2))
    (out / "preview_latency.json").write_text(json.dumps(report, indent=2) + "\n")


def _variant(client: Client, seed: int) -> str:
    """The photo with one pixel changed: new bytes, so no cached mask is reused."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(PHOTOS / "grace_hopper.png").convert("RGB")).copy()
    pixels[0, 0] = (seed, seed, seed)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return client.upload(buffer.getvalue())


def _one(client: Client, photo: str, style: StyleRef, seed: int) -> tuple[float, float]:
    """The first run warms the worker; segmentation runs in every run."""
    request = JobRequest(photo_key=photo, styles=[style], options={"seed": seed, "iterations": 10})
    submitted = time.perf_counter()
    job_id = client.submit(request).job_id
    while not (status := client.status(job_id)).styles[0].preview_key:
        time.sleep(0.02)
    seen = time.perf_counter()
    started = status.started_at or datetime.now(UTC)
    from_start = (datetime.now(UTC) - started).total_seconds()
    client.wait(job_id, timeout=600)
    return round(seen - submitted, 3), round(from_start, 3)


if __name__ == "__main__":
    main()
