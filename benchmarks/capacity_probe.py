"""The fairness load test's job, timed once on one real worker: the capacity
model's stage times for its check against that test (benchmarks.capacity).

    .venv/bin/python -m benchmarks.capacity_probe [--jobs 16 --workers 2]

The same settings and worker processes as tests/load/test_fairness.py (64 px,
3 iterations, one level, batch window 2, two `backdrop worker` processes with
one child each, sharing this machine's cores), with its own redis-server on a
free port and its own S3 server (moto). It measures: the seconds of each step
from the workers' logs (segment, stylize, composite, finalize), once with one
job at a time (idle) and once with a batch backlog keeping both workers busy
(loaded: the two share the CPU, as in the fairness test); the wait of an
interactive job on an idle queue (submit to a worker taking it); the seconds
between two jobs' ends under the backlog; and the seconds a submit takes. Writes
benchmarks/results/capacity_probe.json, which benchmarks.capacity reads. About
a minute; numbers are reported, never asserted.
"""

import argparse
import itertools
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, write_json

FAIRNESS_ENV = {"BACKDROP_INTAKE__MAX_SIDE": "64", "BACKDROP_STYLE__ITERATIONS": "3",
                "BACKDROP_QUEUE__BATCH_WINDOW": "2"}  # fmt: skip
_TASK = re.compile(r"Task backdrop\.(\w+)\[[^\]]+\] succeeded in ([0-9.]+)s")


def run(jobs: int, count: int) -> dict[str, Any]:
    from redis import Redis

    from api_contracts.models import JobRequest
    from jobstore.tenants import Limits, Tenants
    from tests.conftest import PHOTOS, STYLES
    from tests.faults.harness import OwnRedis, make_client, workers
    from tests.services import running_s3

    with tempfile.TemporaryDirectory() as tmp_name, running_s3() as s3:
        tmp = Path(tmp_name)
        (tmp / "redis").mkdir()
        redis = OwnRedis(tmp / "redis")
        try:
            with workers(tmp / "w", redis.url, s3, count=count, **FAIRNESS_ENV) as procs:
                client = make_client(redis.url, s3)
                issued = Tenants(Redis.from_url(redis.url)).add("p", Limits())
                client.config.api_key = issued.api_key
                photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
                style = {"key": client.upload((STYLES / "waves.jpg").read_bytes())}

                def request(seed: int, priority: str) -> JobRequest:
                    fields = {"photo_key": photo, "styles": [style], "options": {"seed": seed}}
                    return JobRequest.model_validate({**fields, "priority": priority})

                warm = [client.submit(request(i, "interactive")).job_id for i in range(count)]
                for job_id in warm:  # every worker's first job pays its cold start (tracing)
                    client.wait(job_id, timeout=300)
                idle = []
                for seed in range(100, 108):  # one at a time on an idle queue
                    final = client.wait(client.submit(request(seed, "interactive")).job_id,
                                        timeout=300, max_interval=0.05)  # fmt: skip
                    idle.append(final)
                marks = [len(p.log_path.read_text()) for p in procs]
                started = time.perf_counter()
                ids = [client.submit(request(200 + i, "batch")).job_id for i in range(jobs)]
                submit_s = (time.perf_counter() - started) / jobs
                backlog = [client.wait(i, timeout=600, max_interval=0.05) for i in ids]
                logs = [p.log_path.read_text() for p in procs]
        finally:
            redis.stop()
    idle_log = "".join(log[:mark] for log, mark in zip(logs, marks, strict=True))
    loaded_log = "".join(log[mark:] for log, mark in zip(logs, marks, strict=True))
    return report(idle, backlog, submit_s, idle_log, loaded_log, count)


def step_times(log: str) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = {}
    for name, seconds in _TASK.findall(log):
        steps.setdefault(name, []).append(float(seconds))
    return steps


def report(idle: list[Any], backlog: list[Any], submit_s: float, idle_log: str,
           loaded_log: str, count: int) -> dict[str, Any]:  # fmt: skip
    # The warm-up jobs (one per worker, at once) carry each worker's cold start.
    idle_steps = {k: v[count:] or v for k, v in step_times(idle_log).items()}
    loaded_steps = step_times(loaded_log)
    ends = sorted(f.finished_at.timestamp() for f in backlog)
    gaps = [b - a for a, b in itertools.pairwise(ends)]

    def seconds(values: list[float]) -> dict[str, float]:
        values = sorted(values)
        return {"median": round(statistics.median(values), 3), "min": round(values[0], 3),
                "max": round(values[-1], 3), "n": len(values)}  # fmt: skip

    return {
        "machine": machine(),
        "settings": FAIRNESS_ENV,
        "workers": count,
        "idle_step_s": {name: seconds(v) for name, v in idle_steps.items()},
        "loaded_step_s": {name: seconds(v) for name, v in loaded_steps.items()},
        "loaded_step_samples_s": {k: [round(x, 3) for x in v] for k, v in loaded_steps.items()},
        "idle_wait_s": seconds([(f.started_at - f.created_at).total_seconds() for f in idle]),
        "idle_job_s": seconds([(f.finished_at - f.started_at).total_seconds() for f in idle]),
        "backlog_gap_s": seconds(gaps),
        # Under the backlog, the workers together end a job every this many seconds.
        "backlog_s_per_job": round((ends[-1] - ends[0]) / (len(ends) - 1), 3),
        "submit_s": round(submit_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=16, help="batch jobs queued at once")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, one child each")
    args = parser.parse_args()
    result = run(args.jobs, args.workers)
    path = write_json("capacity_probe", result)
    shown = ("idle_step_s", "loaded_step_s", "idle_wait_s", "idle_job_s", "backlog_gap_s")
    for key in (*shown, "backlog_s_per_job", "submit_s"):
        print(f"{key}: {result[key]}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
