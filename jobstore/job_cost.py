"""What a job costs against its tenant's `outputs_per_minute`, counted at
submit from the request alone.

A unit is one output of 100 optimizer iterations at 512 px (the defaults).
The size is the one the job will be painted at: `size` capped by the
workers' intake.max_side, which they publish in the service hash.
Counting outputs alone let one request of 2000 iterations, `quality: high`
and `output: original` cost the workers some 30 default outputs while the
quota saw one (an attacker's cheapest way to take the fleet). An output is
priced by its iterations times its pixels, plus the full-resolution painting
where it is asked for; anything cheaper than the defaults still counts 1,
output original 1 more (its composite at the photo's own size), and every 2
paintings past an output's first 1 more (their decoding and targets).
"""

import math

from api_contracts.models import JobOptions, JobRequest

UNIT_ITERATIONS = 100
UNIT_SIDE = 512
# quality high with output original also paints at up to 2048 px: 60 refine
# iterations shared by the 1024 and 2048 px levels (worker.pipeline.paint_full's
# defaults; a test holds the two together), priced at their most, since the
# photo's own size is not read at submit.
PAINT_LEVELS = ((30, 1024), (30, 2048))


# output original composites at the photo's own size on the CPU pool, up to
# the intake's 50 MP (12.7 s and 1.1 GB at 48 MP, README): priced at that
# limit, since the photo's size is not read at submit. A preview or portrait
# at full size counted 1, "a second's work", for 13 s of a CPU worker.
FULL_SIZE_UNITS = 1


def paint_units() -> float:
    return sum(n * (side / UNIT_SIDE) ** 2 for n, side in PAINT_LEVELS) / UNIT_ITERATIONS


def output_units(options: JobOptions, optimizes: bool = True, max_side: int = UNIT_SIDE) -> int:
    """One output's units: 1 for one that is not optimized (portrait mode,
    quality preview: a second's work), else its iterations (quality high
    doubles the default) times its pixels over the unit's, rounded up; plus
    FULL_SIZE_UNITS for output original.
    max_side: the deployment's working size (what a job without `size`
    gets, and the most any gets)."""
    full = FULL_SIZE_UNITS if options.output == "original" else 0
    if not optimizes or options.quality == "preview":
        return 1 + full
    doubled = 2 if options.quality == "high" else 1  # an explicit count is not doubled
    iterations = options.iterations or UNIT_ITERATIONS * doubled
    side = min(options.size or max_side, max_side)  # as the plan resolves it
    work = iterations * (side / UNIT_SIDE) ** 2 / UNIT_ITERATIONS
    if (options.quality, options.output) == ("high", "original"):
        work += paint_units()
    return max(1, math.ceil(work - 1e-9)) + full


def job_units(request: JobRequest, max_side: int = UNIT_SIDE) -> int:
    """The units the whole job takes from the tenant's minute: each output's,
    plus its paintings past the first (painting_units)."""
    units = output_units(request.options, request.mode != "portrait", max_side)
    subject = 1 if request.subject_style is not None else 0  # two paintings' mode
    return sum(units + painting_units(len(styles) + subject) for styles in request.outputs())


# Every painting of an output is decoded from its upload (up to 50 MP: 0.9-1.6 s
# of a core) and reduced to its Gram targets (about 9 evaluations) before the
# first iteration: a blend of 16 paintings at 1 iteration and 32 px held a GPU
# worker 16-25 s for 1 unit. Every PAINTINGS_PER_UNIT past the first count 1.
PAINTINGS_PER_UNIT = 2


def painting_units(paintings: int) -> int:
    return max(0, paintings - 1) // PAINTINGS_PER_UNIT
