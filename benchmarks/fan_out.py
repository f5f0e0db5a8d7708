"""One photo, four paintings: one four-style job against four one-style jobs
submitted together, through the queue, with the default recipe.

    .venv/bin/python -m benchmarks.fan_out [--size 256 --iterations 100]

Starts its own S3 server and one worker (Redis db 14). Each arm gets its own
copy of the photo (one pixel changed) so neither reuses the other's mask or
features. Reports wall time from submit to the last result, and the job
records' counters: how many times the photo was segmented and its VGG content
features computed, against how many times they were reused.
"""

import argparse
import json
import time
from typing import Any

from benchmarks.common import RESULTS, machine, upload_variant, write_json

REDIS_URL = "redis://127.0.0.1:6379/14"
COUNTERS = ("segment", "mask_reused", "content_features", "content_features_reused", "stylize")


def run(size: int, iterations: int = 100) -> dict[str, Any]:
    from api_contracts.models import JobRequest, StyleRef
    from tests.conftest import STYLES
    from tests.services import service_stack

    log = RESULTS / "fan_out.worker.log"
    env = {"BACKDROP_INTAKE__MAX_SIDE": str(size), "BACKDROP_STYLE__ITERATIONS": str(iterations)}
    with service_stack(REDIS_URL, log, **env) as client:
        paintings = sorted(STYLES.glob("*.jpg"))[:4]
        styles = [StyleRef(key=client.upload(p.read_bytes())) for p in paintings]
        warm = JobRequest(photo_key=upload_variant(client, 900), styles=styles[:1],
                          options={"iterations": 2})  # fmt: skip
        client.wait(client.submit(warm).job_id, timeout=600)
        one_job = _arm(client, [JobRequest(photo_key=upload_variant(client, 901), styles=styles)])
        photo = upload_variant(client, 902)
        four_jobs = _arm(client, [JobRequest(photo_key=photo, styles=[s]) for s in styles])
    return {"size": size, "iterations": iterations, "paintings": [p.name for p in paintings],
            "one_4_style_job": one_job, "four_1_style_jobs": four_jobs}  # fmt: skip


def _arm(client: Any, requests: list[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    ids = [client.submit(r).job_id for r in requests]
    finals = [client.wait(i, timeout=3600) for i in ids]
    seconds = time.perf_counter() - started
    counters = {c: sum(f.counters.get(c, 0) for f in finals) for c in COUNTERS}
    return {"wall_s": round(seconds, 1), "states": [str(f.state) for f in finals],
            "results": sum(len(f.styles) for f in finals), "counters": counters}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100, help="100: the default recipe")
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations)}
    write_json("fan_out", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
