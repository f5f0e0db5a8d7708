"""Issue 19, item 4, the quick measure: the service's `lbfgs_adam` road (its
device L-BFGS, then Adam after ADAM_AFTER) on the 6 quality pairs, against
the classic recipe's L_ref and T_ref.

    .venv/bin/python -m benchmarks.reach_reference [--size 128] [--optimizer lbfgs_adam]
        [--cap 600] [--perturb 0.01 --seed 1]

Per pair: iterations and seconds until the loss first reaches L_ref (noise,
Adam lr 10, 1000 steps; measured once per machine and kept in the results
folder, shared with benchmarks.lbfgs_compact), T_ref over those seconds, ms
per iteration, and the loss over L_ref along the way. The road runs as the
service runs it (worker.pipeline.style.stylize, the host seeing every
iteration's loss), traced on the pair before the clock starts, as the
reference is. --perturb adds Gaussian noise of that many levels to the photo
(L_ref stays the clean photo's): a road whose result moves with noise far
below a level is fragile. benchmarks.quality_pairs runs the same road with
the judge, in about half an hour; this takes a few minutes.
"""

import argparse
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.lbfgs_compact import add_pair_arguments, run_pairs


def service_road(optimizer: str, steps: int) -> Any:
    """A Road (benchmarks.lbfgs_compact.measure) running `optimizer` as the service does."""
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams

    params = StyleParams(iterations=steps, optimizer=optimizer)

    def road(photo: np.ndarray, painting: np.ndarray, net: Any) -> Iterator[float]:
        short = params.model_copy(update={"iterations": 2})
        for _ in stylize(photo, [(painting, 1.0)], short, net, lbfgs_every=1):
            pass  # traced for this size before the clock starts

        def losses() -> Iterator[float]:
            for step in stylize(photo, [(painting, 1.0)], params, net, lbfgs_every=1):
                yield float(step.losses["total"])

        return losses()

    return road


def main() -> None:
    parser = argparse.ArgumentParser()
    add_pair_arguments(parser)
    parser.add_argument("--optimizer", default="lbfgs_adam", choices=["lbfgs", "lbfgs_adam"])
    args = parser.parse_args()
    road = service_road(args.optimizer, args.cap)
    run_pairs(f"reach_reference_{args.optimizer}", road, args,
              {"optimizer": args.optimizer, "cap": args.cap})  # fmt: skip


if __name__ == "__main__":
    main()
