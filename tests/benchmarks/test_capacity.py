"""The capacity model (benchmarks.capacity_model) on tiny scenarios: what a user
of its numbers would check first. Nothing here is timed."""

import random

import pytest

from benchmarks.capacity import PROBE_DEFAULT, check
from benchmarks.capacity_model import (
    DAY,
    Arrival,
    Autoscale,
    Fleet,
    Pool,
    StageTimes,
    daily_shape,
    fixed,
    percentile,
    simulate,
)
from jobstore.capacity import WindowRule

STAGES = StageTimes(segment=fixed(0.1), stylize=fixed(0.5), composite=fixed(0.2),
                    finalize=fixed(0.01), step_overhead=0.01, dispatch=0.02)  # fmt: skip
WINDOWS = {"interactive": WindowRule(2.0, 2, 1024), "batch": WindowRule(2.0, 2, 512)}


def fleet(start_s: float = 30.0, initial: int = 1, max_replicas: int = 50) -> Fleet:
    scale = Autoscale(target_per_pod=2, min_replicas=1, max_replicas=max_replicas, up_pods=4,
                      down_stabilization_s=120)  # fmt: skip
    pool = Pool("gpu", "interactive", ("interactive", "batch"), initial, start_s, scale)
    return Fleet((pool,), WINDOWS, STAGES)


def poisson(
    rate: float, seconds: float, priority: str, seed: int, tenants: int = 3
) -> list[Arrival]:
    rng, t, out = random.Random(seed), 0.0, []
    while (t := t + rng.expovariate(rate)) < seconds:
        out.append(Arrival(t, f"{priority}-{rng.randrange(tenants)}", priority, rng.randint(1, 4)))
    return out


def test_every_job_is_served_once_and_ends() -> None:
    arrivals = poisson(3.0, 300, "interactive", 1) + poisson(1.0, 300, "batch", 2)
    result = simulate(fleet(), arrivals, seed=1)
    assert len(result.jobs) == len(arrivals) > 500
    for job in result.jobs:
        assert job.segments == 1 and job.stylized == job.outputs
        assert job.created <= job.sent <= job.started < job.finished <= result.end


def test_on_an_idle_fleet_no_job_waits_beyond_its_dispatch() -> None:
    arrivals = [Arrival(10.0 * i, f"t{i % 3}", "interactive", 2) for i in range(30)]
    result = simulate(fleet(initial=2), arrivals)
    assert max(result.waits("interactive")) == pytest.approx(STAGES.dispatch)


def test_more_load_starts_more_pods() -> None:
    peaks = [simulate(fleet(), poisson(rate, 900, "interactive", 3)).peak_replicas()
             for rate in (0.5, 2.0, 8.0)]  # fmt: skip
    assert peaks[0] < peaks[1] < peaks[2], peaks


def test_interactive_jobs_pass_a_batch_backlog() -> None:
    backlog = [Arrival(0.0, "backfill", "batch", 1) for _ in range(400)]
    people = poisson(0.5, 300, "interactive", 4)
    result = simulate(fleet(initial=2, max_replicas=2), backlog + people, seed=4)
    interactive, batch = result.waits("interactive"), result.waits("batch")
    assert percentile(interactive, 0.95) * 10 < percentile(batch, 0.95)


def test_the_window_is_never_exceeded_and_fills_under_a_backlog() -> None:
    backlog = [Arrival(0.0, f"t{i % 4}", "batch", 2) for i in range(300)]
    result = simulate(fleet(initial=3, max_replicas=3), backlog)
    assert result.window_breaches == 0
    assert result.max_inflight["batch"] == result.max_window["batch"] == 6  # 2 x 3 processes


def test_tenants_take_turns_within_a_priority() -> None:
    backlog = [Arrival(0.0, "big", "batch", 1) for _ in range(100)]
    small = [Arrival(0.1, "small", "batch", 1) for _ in range(5)]
    result = simulate(fleet(initial=1, max_replicas=1), backlog + small)
    order = sorted(result.jobs, key=lambda j: j.started)
    small_positions = [i for i, j in enumerate(order) if j.tenant == "small"]
    assert small_positions[-1] < 15, small_positions  # every other job, not after the 100


def test_the_day_peaks_at_three_times_its_mean() -> None:
    shape = daily_shape(3.0)
    values = [shape(t) for t in range(0, int(DAY), 60)]
    assert abs(sum(values) / len(values) - 1) < 0.01 and abs(max(values) - 3.0) < 0.01


def test_the_two_worker_check_reports_every_number() -> None:
    report = check(2, WindowRule(2.0, 2, 2), PROBE_DEFAULT)
    for key in ("b_median", "b_p95", "c_median", "c_p95", "a_done"):
        assert report[key]["median"] >= 0
    assert report["batch_window"] == 2
