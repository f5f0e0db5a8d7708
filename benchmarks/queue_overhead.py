"""Queue path vs in-process: the same 256 px job through Redis + Celery + S3 and
through `backdrop run`'s run_local, median of --repeats each.

    .venv/bin/python -m benchmarks.queue_overhead [--size 256 --iterations 20 --repeats 5]

Starts its own S3 server (moto) and one worker process; uses Redis db 14.
"""

import argparse
import json
import statistics
import time
from typing import Any

from benchmarks.common import RESULTS, machine, photo_variant, write_json

REDIS_URL = "redis://127.0.0.1:6379/14"


def run(size: int, iterations: int, repeats: int) -> dict[str, Any]:
    from tests.services import service_stack

    env = {"BACKDROP_INTAKE__MAX_SIDE": str(size), "BACKDROP_STYLE__ITERATIONS": str(iterations)}
    with service_stack(REDIS_URL, RESULTS / "queue_overhead.worker.log", **env) as client:
        return measure(client, size, iterations, repeats)


def measure(client: Any, size: int, iterations: int, repeats: int) -> dict[str, Any]:
    from api_contracts.models import JobRequest, StyleRef
    from tests.conftest import MODELS, STYLES
    from tests.services import WORKER_DIAL
    from worker.local_job import LocalJob, run_local
    from worker.runtime.settings import Settings

    style = (STYLES / "starry.jpg").read_bytes()
    style_key = client.upload(style)

    def queued(seed: int) -> float:
        # A new photo each time: the queue would otherwise reuse the stored mask
        # and features, which run_local cannot, and come out ahead.
        request = JobRequest(photo_key=client.upload(photo_variant(seed)),
                             styles=[StyleRef(key=style_key)], options={"seed": seed})  # fmt: skip
        started = time.perf_counter()
        status = client.wait(client.submit(request).job_id, timeout=900, max_interval=0.05)
        assert status.state == "SUCCEEDED", status
        return time.perf_counter() - started

    settings = Settings(models_dir=MODELS, allow_download=False)
    settings.intake.max_side = size
    # The same work on both paths: run_local uses service_stack's worker's dial
    # (it would otherwise calibrate one for every new photo, the worker not).
    settings.compute.dial = WORKER_DIAL

    def local(seed: int) -> float:
        params = settings.style.model_copy(update={"iterations": iterations, "seed": seed})
        started = time.perf_counter()
        run_local(LocalJob(photo_variant(seed), [(style, 1.0)], params=params), settings)
        return time.perf_counter() - started

    local(999), queued(999)  # warm both paths (tracing, model loading)
    # Interleaved, so a drift in the machine's speed hits both paths alike.
    pairs = [(local(seed), queued(seed)) for seed in range(repeats)]
    local_times, queue_times = [p[0] for p in pairs], [p[1] for p in pairs]
    return {
        "size": size,
        "iterations": iterations,
        "local_seconds": [round(t, 3) for t in local_times],
        "queue_seconds": [round(t, 3) for t in queue_times],
        "local_median_s": round(statistics.median(local_times), 3),
        "queue_median_s": round(statistics.median(queue_times), 3),
        # Paired: each run's photo differs by a pixel, and L-BFGS's line search
        # takes a different number of evaluations for it (runs vary by 1.5 s),
        # but the local and queued runs of one pair see the same photo.
        "overhead_median_s": round(statistics.median(q - loc for loc, q in pairs), 3),
        "difference_of_medians_s": round(
            statistics.median(queue_times) - statistics.median(local_times), 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations, args.repeats)}
    write_json("queue_overhead", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
