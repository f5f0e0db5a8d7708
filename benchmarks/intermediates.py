"""The cost of results that sharpen as they run: the time a job spends
publishing its intermediates (composite, PNG, store, at 25/50/75%) against
the job's own time, on several photos, in-process on the real Redis and a
local store (the same steps a worker runs).

    .venv/bin/python -m benchmarks.intermediates [--size 256] [--iterations 100]

Measured as a share of one run rather than two runs compared, so a busy
machine does not blur it.
"""

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from redis import Redis

from benchmarks.common import machine, write_json

PHOTOS = ("grace_hopper.png", "parrot.jpg", "kite_and_cold.jpg")
SUBJECTS = {"parrot.jpg": ["bird"]}  # the others: a person


def run(size: int, iterations: int, photos: tuple[str, ...] = PHOTOS) -> dict[str, Any]:
    from api_contracts.models import JobRequest
    from tests.conftest import MODELS, STYLES
    from tests.conftest import PHOTOS as PHOTO_DIR
    from worker.runtime.settings import Settings
    from worker.service import progressive, steps, stylize_steps
    from worker.service.context import Services
    from worker.storage.local_store import LocalStore

    spent = [0.0]
    original = progressive.publish_latest

    def timed(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        original(*args, **kwargs)
        spent[0] += time.perf_counter() - started

    stylize_steps.publish_latest = timed
    redis = Redis.from_url("redis://127.0.0.1:6379/8")
    rows = {}
    with tempfile.TemporaryDirectory() as root:
        settings = Settings(models_dir=MODELS, allow_download=False)
        settings.intake.max_side = size
        s = settings.storage
        store = LocalStore(Path(root))
        store.ensure_buckets([s.input_bucket, s.styles_bucket, s.work_bucket, s.results_bucket])
        svc = Services(settings, store, redis)
        store.put(s.input_bucket, "uploads/starry", (STYLES / "starry.jpg").read_bytes(), "x")
        for n, name in enumerate(photos):
            redis.flushdb()
            store.put(s.input_bucket, f"uploads/{name}", (PHOTO_DIR / name).read_bytes(), "x")
            request = JobRequest(photo_key=f"uploads/{name}", styles=[{"key": "uploads/starry"}],
                                 subjects=SUBJECTS.get(name, ["person"]),
                                 options={"iterations": iterations, "seed": n})  # fmt: skip
            svc.record(f"bench{n}").create(request)
            steps.segment_step(svc, f"bench{n}")
            spent[0] = 0.0
            started = time.perf_counter()
            steps.stylize_step(svc, f"bench{n}", 0)
            total = time.perf_counter() - started
            share = 100 * spent[0] / (total - spent[0])
            rows[name] = {"job_s": round(total, 2), "intermediates_s": round(spent[0], 3),
                          "overhead_pct": round(share, 2)}  # fmt: skip
            print(name, rows[name], flush=True)
    stylize_steps.publish_latest = original
    worst = max(r["overhead_pct"] for r in rows.values())
    return {"size": size, "iterations": iterations, "photos": rows, "worst_overhead_pct": worst}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.size, args.iterations)}
    print(write_json("intermediates", report))
    print(f"worst overhead {report['worst_overhead_pct']}%")


if __name__ == "__main__":
    main()
