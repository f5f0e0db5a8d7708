"""How soon the preview of a 512 px photo shows in the job status, and the peak
resident memory of the worker process that ran a full 512 px job.

    .venv/bin/python -m benchmarks.preview_latency [--size 512 --repeats 5]

Starts its own S3 server and one worker (Redis db 14); submits jobs and polls
the status every 20 ms; prints seconds from submit and from the job's start
(a worker took it) to the preview URL, segmentation included. Then runs one
job with the default recipe and reads the pool process's VmHWM (peak RSS) from
/proc: the worker records its pid in the job record.
"""

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine, upload_variant, write_json

REDIS_URL = "redis://127.0.0.1:6379/14"


def run(size: int, repeats: int) -> dict[str, Any]:
    from api_contracts.models import StyleRef
    from tests.conftest import STYLES
    from tests.services import service_stack

    log = RESULTS / "preview_latency.worker.log"
    with service_stack(REDIS_URL, log, BACKDROP_INTAKE__MAX_SIDE=str(size)) as client:
        style = StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))
        runs = [_one(client, upload_variant(client, seed), style, seed)
                for seed in range(repeats + 1)][1:]  # fmt: skip
        memory = _peak_memory(client, upload_variant(client, 4242), style)
    return {
        "size": size,
        "from_submit_s": [r[0] for r in runs],
        "from_start_s": [r[1] for r in runs],
        "median_from_submit_s": statistics.median(r[0] for r in runs),
        "median_from_start_s": statistics.median(r[1] for r in runs),
        **memory,
    }


def _one(client: Any, photo: str, style: Any, seed: int) -> tuple[float, float]:
    """The first run warms the worker; segmentation runs in every run."""
    from api_contracts.models import JobRequest

    request = JobRequest(photo_key=photo, styles=[style], options={"seed": seed, "iterations": 3})
    submitted = time.perf_counter()
    job_id = client.submit(request).job_id
    while not (status := client.status(job_id)).styles[0].preview_key:
        time.sleep(0.02)
    seen = time.perf_counter()
    started = status.started_at or datetime.now(UTC)
    from_start = (datetime.now(UTC) - started).total_seconds()
    client.wait(job_id, timeout=600)
    return round(seen - submitted, 3), round(from_start, 3)


def _peak_memory(client: Any, photo: str, style: Any) -> dict[str, Any]:
    """A default-recipe job at this size; then the pool child's peak RSS."""
    from redis import Redis

    from api_contracts.models import JobRequest
    from jobstore.redis_keys import JOB_KEY_PREFIX
    from worker.pipeline.style_params import StyleParams

    default = {"iterations": StyleParams().iterations}  # the stack's own default is 10
    started = time.perf_counter()
    job_id = client.submit(JobRequest(photo_key=photo, styles=[style], options=default)).job_id
    final = client.wait(job_id, timeout=1800)
    seconds = time.perf_counter() - started
    worker = Redis.from_url(REDIS_URL, decode_responses=True).hget(
        f"{JOB_KEY_PREFIX}{job_id}", "s0.worker"
    )
    pid = int(str(worker).rsplit(":", 1)[1])
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "default_job_state": str(final.state),
        "default_job_seconds": round(seconds, 1),
        "worker_child_peak_rss_mib": round(int(fields["VmHWM"].split()[0]) / 1024),
        "worker_child_rss_after_mib": round(int(fields["VmRSS"].split()[0]) / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.repeats)}
    write_json("preview_latency", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
