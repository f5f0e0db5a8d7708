"""What the HTTP gateway adds to a status call: `calls` GET /v1/jobs/{id} over
HTTP (keep-alive, as an app's HTTP client does) against the same number of
TrustedClient.status calls in-process, on one job of each kind (queued, and finished
with a presigned result URL). Median and p95 of each, and the difference.

    .venv/bin/python -m benchmarks.gateway_latency [--calls 100]

Starts its own S3 server (moto) and a gateway process; uses Redis db 5. No
worker: the finished job's record is ended by hand (a status call reads the
record and signs URLs, whatever ran the job).
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import RESULTS, machine, write_json

REDIS_URL = "redis://127.0.0.1:6379/5"


def run(calls: int) -> dict[str, Any]:
    import httpx
    from redis import Redis

    from jobstore.tenants import Limits, Tenants
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig
    from tests.services import ACCESS, SECRET, running_gateway, running_s3, service_env

    Redis.from_url(REDIS_URL).flushdb()
    with running_s3() as s3:
        key = Tenants(Redis.from_url(REDIS_URL)).add("bench", Limits()).api_key
        config = TrustedClientConfig(redis_url=REDIS_URL, s3_endpoint=s3, access_key=ACCESS,
                                     secret_key=SECRET, api_key=key)  # fmt: skip
        client = TrustedClient(config)
        jobs = _jobs(client)
        env = service_env(s3, BACKDROP_REDIS__URL=REDIS_URL)
        log = RESULTS / "gateway_latency.gateway.log"
        headers = {"Authorization": f"Bearer {key.get_secret_value()}"}
        with running_gateway(env, log) as url, httpx.Client(base_url=url, headers=headers) as http:

            def pair(job_id: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
                return (lambda: client.status(job_id),
                        lambda: http.get(f"/v1/jobs/{job_id}").raise_for_status())  # fmt: skip

            return {kind: _compare(*pair(job_id), calls) for kind, job_id in jobs.items()}


def _jobs(client: Any) -> dict[str, str]:
    from api_contracts.models import JobRequest, JobState
    from jobstore.records import JobRecord

    for key in ("uploads/x", "uploads/y"):  # as if the tenant had uploaded them
        client.uploads.claim(client.tenant, key)
    queued = client.submit(JobRequest(photo_key="uploads/x", mode="portrait")).job_id
    done = client.submit(JobRequest(photo_key="uploads/y", mode="portrait")).job_id
    record = JobRecord(client.redis, done)
    record.set(output=0, result_key=f"results/{done}.png")
    record.finish(JobState.SUCCEEDED, open_outputs=JobState.SUCCEEDED)
    return {"queued_job": queued, "finished_job": done}


def _compare(direct: Callable[[], Any], over_http: Callable[[], Any], calls: int) -> dict[str, Any]:
    for call in (direct, over_http):  # warm both paths (connections, imports)
        for _ in range(5):
            call()
    d, h = _timings(direct, calls), _timings(over_http, calls)
    return {"calls": calls, "client_ms": d, "gateway_ms": h,
            "added_median_ms": round(h["median"] - d["median"], 2),
            "added_p95_ms": round(h["p95"] - d["p95"], 2)}  # fmt: skip


def _timings(call: Callable[[], Any], calls: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"median": round(statistics.median(times), 2), "p95": round(p95, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    report = {"machine": machine(), **run(args.calls)}
    write_json("gateway_latency", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
