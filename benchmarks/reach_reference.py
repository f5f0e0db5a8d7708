"""Issue 19, item 4, the quick measure: the service's `lbfgs_adam` road (its
L-BFGS with the Adam-like diagonal first matrix, then Adam after ADAM_AFTER)
on the 6 quality pairs, against the classic recipe's L_ref and T_ref.

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
import json
import statistics
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.common import machine, write_json
from benchmarks.lbfgs_compact import PAIRS, measure


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
    from tqdm import tqdm

    from benchmarks.common import feature_net

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--optimizer", default="lbfgs_adam", choices=["lbfgs", "lbfgs_adam"])
    parser.add_argument("--cap", type=int, default=600)
    parser.add_argument("--perturb", type=float, default=0.0, help="noise on the photo, levels")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    net = feature_net()
    road = service_road(args.optimizer, args.cap)
    rows = [measure(p, s, args.size, net, road, args.perturb, args.seed)
            for p, s in tqdm(PAIRS, desc=args.optimizer, unit="pair")]  # fmt: skip
    ratios = [r["ratio"] or 0.0 for r in rows]
    report = {"machine": machine(), "size": args.size, "optimizer": args.optimizer,
              "cap": args.cap, "perturb": {"levels": args.perturb, "seed": args.seed},
              "pairs": rows, "median_ratio": statistics.median(ratios),
              "worst_ratio": min(ratios),
              "never_reached": sum(r["ratio"] is None for r in rows)}  # fmt: skip
    noise = f"_perturb{args.perturb:g}_seed{args.seed}" if args.perturb > 0 else ""
    write_json(f"reach_reference_{args.optimizer}_{args.size}{noise}", report)
    print(json.dumps({k: v for k, v in report.items() if k != "pairs"}, indent=1))


if __name__ == "__main__":
    main()
