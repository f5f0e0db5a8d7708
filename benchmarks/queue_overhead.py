"""Queue path vs in-process: the same job through Redis + Celery + S3 and through
run_local; and the wall time of a three-style job. Prints a table, writes JSON.

    .venv/bin/python benchmarks/queue_overhead.py [--size 256 --iterations 20 --repeats 5]

Starts its own S3 server (moto) and one worker process; uses Redis db 14.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from api_contracts.client import Client  # noqa: E402
from api_contracts.models import JobRequest, StyleRef  # noqa: E402
from tests.conftest import MODELS, PHOTOS, STYLES  # noqa: E402
from tests.services import service_stack  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    env = {"BACKDROP_INTAKE__MAX_SIDE": str(args.size),
           "BACKDROP_STYLE__ITERATIONS": str(args.iterations),
           "BACKDROP_STYLE__LEVELS": "2"}  # the same recipe as run_local  # fmt: skip
    with service_stack(REDIS_URL, out / "queue_overhead.worker.log", **env) as client:
        results = measure(client, args)
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(results, indent=2))
    (out / "queue_overhead.json").write_text(json.dumps(results, indent=2) + "\n")


def measure(client: Client, args: argparse.Namespace) -> dict[str, object]:
    from worker.run_local import LocalJob, run_local
    from worker.settings import Settings

    photo = (PHOTOS / "grace_hopper.png").read_bytes()
    styles = {n: (STYLES / n).read_bytes() for n in ("starry.jpg", "waves.jpg", "sketch.jpg")}
    photo_key = client.upload(photo)
    style_keys = {n: client.upload(b) for n, b in styles.items()}

    def queued(seed: int, names: list[str]) -> float:
        refs = [StyleRef(key=style_keys[n]) for n in names]
        request = JobRequest(photo_key=photo_key, styles=refs, options={"seed": seed})
        started = time.perf_counter()
        status = client.wait(client.submit(request).job_id, timeout=900, max_interval=0.05)
        assert status.state == "SUCCEEDED", status
        return time.perf_counter() - started

    settings = Settings(models_dir=MODELS, allow_download=False)
    settings.intake.max_side = args.size

    def local(seed: int) -> float:
        params = settings.style.model_copy(update={"iterations": args.iterations, "seed": seed})
        started = time.perf_counter()
        run_local(LocalJob(photo, [(styles["starry.jpg"], 1.0)], params=params), settings)
        return time.perf_counter() - started

    local(999), queued(999, ["starry.jpg"])  # warm both paths (tracing, model loading)
    local_times = [local(seed) for seed in range(args.repeats)]
    queue_times = [queued(seed, ["starry.jpg"]) for seed in range(args.repeats)]
    three = queued(4242, list(styles))
    return {
        "size": args.size,
        "iterations": args.iterations,
        "local_seconds": local_times,
        "queue_seconds": queue_times,
        "local_median": statistics.median(local_times),
        "queue_median": statistics.median(queue_times),
        "overhead_median": statistics.median(queue_times) - statistics.median(local_times),
        "three_styles_one_worker_seconds": three,
    }


if __name__ == "__main__":
    main()
