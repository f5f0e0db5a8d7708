"""The worker's Prometheus metrics, scraped over HTTP from the real worker
(multiprocess: the tasks run in forked children, the parent serves their sum)."""

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api_contracts.models import JobRequest, StyleRef
from tests.conftest import PHOTOS, STYLES

pytestmark = pytest.mark.integration


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_and_durations_move_after_jobs(worker, client) -> None:
    before = scrape(worker.metrics_url)
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    painting = client.upload((STYLES / "starry.jpg").read_bytes())
    good = JobRequest(photo_key=photo, styles=[StyleRef(key=painting)], options={"seed": 777})
    missing = JobRequest(photo_key="uploads/no-such-photo", mode="portrait")
    for request in (good, missing):
        client.wait(client.submit(request).job_id, timeout=300)
    ok = ("backdrop_jobs_finished_total", {"state": "SUCCEEDED", "code": ""})
    failed = ("backdrop_jobs_finished_total", {"state": "FAILED", "code": "INPUT_NOT_FOUND"})
    deadline = time.monotonic() + 30  # ends are counted as the worker reads their events
    while True:
        after = scrape(worker.metrics_url)
        moved = [value(after, n, **lab) - value(before, n, **lab) for n, lab in (ok, failed)]
        if min(moved) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert min(moved) >= 1, f"job counters did not move: {moved}"
    for stage in ("segment", "preview", "stylize", "composite", "end_to_end"):
        count = "backdrop_stage_seconds_count"
        assert value(after, count, stage=stage) > value(before, count, stage=stage), stage
