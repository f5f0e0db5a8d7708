"""What a job counts against outputs_per_minute (jobstore.job_cost): one
output at the defaults is 1, a costlier one its iterations times its pixels,
so a tenant cannot buy 30 default outputs' compute for the quota of one."""

import pytest

from api_contracts.models import JobOptions, JobRequest, StyleRef
from jobstore.job_cost import UNIT_ITERATIONS, UNIT_SIDE, job_units, output_units, paint_units


@pytest.mark.parametrize(("options", "units"), [
    ({}, 1), ({"quality": "preview", "iterations": 2000}, 1),
    ({"size": 256}, 1), ({"iterations": 10}, 1),  # cheaper than the defaults: still 1
    ({"iterations": 400}, 4), ({"iterations": 150}, 2),  # rounded up
    ({"quality": "high"}, 2), ({"quality": "high", "iterations": 300}, 3),  # not doubled
    ({"size": 1024}, 1),  # a 512 px deployment paints at 512 whatever is asked
    ({"quality": "high", "output": "original"}, 9),  # 2 + the painting's 6 + the full size's 1
    # a composite of up to 50 MP on the CPU pool: 12.7 s, not "a second's work"
    ({"output": "original"}, 2), ({"quality": "preview", "output": "original"}, 2),
])  # fmt: skip
def test_an_output_counts_its_iterations_times_its_pixels(options: dict, units: int) -> None:
    assert output_units(JobOptions(**options)) == units


def test_a_job_counts_every_output_and_portrait_counts_one() -> None:
    styles = [StyleRef(key=f"s{i}") for i in range(3)]
    heavy = JobOptions(iterations=500)
    assert job_units(JobRequest(photo_key="p", styles=styles, options=heavy)) == 15
    blended = [s.model_copy(update={"blend_group": 0}) for s in styles]  # one output
    assert job_units(JobRequest(photo_key="p", styles=blended, options=heavy)) == 5 + 1
    assert job_units(JobRequest(photo_key="p", mode="portrait", options=heavy)) == 1
    full = JobOptions(output="original")
    assert job_units(JobRequest(photo_key="p", mode="portrait", options=full)) == 2


def test_the_painting_is_priced_as_the_worker_paints_at_its_defaults() -> None:
    """The full-resolution painting's price follows worker.pipeline.paint_full:
    its default iterations shared over the levels from the working size up to
    its default cap (a change there must change the price)."""
    from worker.pipeline.paint_full import PaintParams, paint_levels
    from worker.pipeline.style_params import split_iterations

    paint = PaintParams()
    sides = paint_levels(UNIT_SIDE, paint.max_side)
    counts = split_iterations(paint.iterations, len(sides))
    work = sum(n * (side / UNIT_SIDE) ** 2 for n, side in zip(counts, sides, strict=True))
    assert paint_units() == pytest.approx(work / UNIT_ITERATIONS)


def test_the_size_is_charged_as_the_deployment_paints_it() -> None:
    """Without `size` a job gets the workers' intake.max_side (published in the
    service hash), and never more: a 1024 px deployment's default output costs
    4, and asking 2048 px of a 512 px one costs 1 (it paints at 512)."""
    assert output_units(JobOptions(), max_side=1024) == 4
    assert output_units(JobOptions(size=2048), max_side=512) == 1
    assert output_units(JobOptions(size=256), max_side=1024) == 1
    assert output_units(JobOptions(size=1024, iterations=2000), max_side=2048) == 80


def test_an_outputs_paintings_past_the_first_are_priced() -> None:
    """Each painting is decoded (up to 50 MP) and reduced to its targets before
    the first iteration: 16 in one blend at 1 iteration and 32 px held a GPU
    worker 16-25 s for 1 unit."""
    tiny = JobOptions(iterations=1, size=32)
    blend = [StyleRef(key=f"s{i}", blend_group=0) for i in range(16)]
    assert job_units(JobRequest(photo_key="p", styles=blend, options=tiny)) == 1 + 7
    assert job_units(JobRequest(photo_key="p", styles=blend[:2], options=tiny)) == 1
    own = [StyleRef(key=f"s{i}") for i in range(4)]  # four outputs of one painting each
    assert job_units(JobRequest(photo_key="p", styles=own, options=tiny)) == 4
    dual = JobRequest(photo_key="p", mode="dual", styles=blend[:2], subject_style=own[0],
                      options=tiny)  # fmt: skip
    assert job_units(dual) == 1 + 1, "the subject's painting is one more"
