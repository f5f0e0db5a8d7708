"""Issue 19, item 4: the service's lbfgs_adam road (its L-BFGS in the compact
form with a low-frequency first matrix, worker.pipeline.lbfgs_compact; Adam
after ADAM_AFTER iterations) on the quality pairs, against the classic
recipe's L_ref and T_ref.

    .venv/bin/python -m benchmarks.lbfgs_compact [--size 128] [--first-step 10] [--cap 600]

Per pair: iterations and seconds until the loss first reaches L_ref (the
reference: noise, Adam lr 10, 1000 steps; its numbers are kept in the
results folder and measured once per machine), T_ref over those seconds, and
the loss over L_ref along the way. The road runs as the service runs it
(worker.pipeline.style.stylize), with the host seeing every iteration's loss;
it is traced on the pair before the clock starts, as the reference is.
--first-step is the job's learning_rate (for L-BFGS: how far the most-changed
pixel moves first). benchmarks.quality_pairs runs the same road beside the
others, with the judge; this is the quick measure of its time. README, "The
low-frequency preconditioner again", has what it measured.
"""

import argparse
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, machine, write_json

PAIRS = [(p, s) for p in ("grace_hopper.png", "parrot.jpg", "kite_and_cold.jpg")
         for s in ("starry.jpg", "waves.jpg")]  # fmt: skip


def road(photo: np.ndarray, painting: np.ndarray, net: Any, *, first_step: float,
         steps: int) -> Iterator[float]:  # fmt: skip
    """The loss after each iteration of lbfgs_adam from the photo; traced
    before the first loss is asked for."""
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams

    params = StyleParams(iterations=steps, optimizer="lbfgs_adam", learning_rate=first_step)
    for _ in stylize(photo, [(painting, 1.0)], params.model_copy(update={"iterations": 2}), net,
                     lbfgs_every=1):  # fmt: skip
        pass

    def losses() -> Iterator[float]:
        for step in stylize(photo, [(painting, 1.0)], params, net, lbfgs_every=1):
            yield float(step.losses["total"])

    return losses()


def reference(photo_name: str, painting_name: str, photo: np.ndarray, painting: np.ndarray,
              net: Any) -> dict[str, float]:  # fmt: skip
    """L_ref and T_ref of the pair on this machine, measured once."""
    from benchmarks.quality_pairs import _warm_up, optimize
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.model_cache import get_previewer

    path = RESULTS / "lbfgs_compact_refs.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    key = f"{machine()} {photo_name}+{painting_name} {photo.shape[:2]}"
    if key not in known:
        _warm_up(photo, painting, net, get_previewer())
        ref = optimize(photo, painting, StyleParams(init="noise", iterations=1000,
                                                    optimizer="adam"), net)  # fmt: skip
        known[key] = {"L_ref": min(ref.losses), "T_ref": ref.seconds[-1]}
        path.write_text(json.dumps(known, indent=1))
    return known[key]


def measure(photo_name: str, painting_name: str, size: int, net: Any,
            options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    from tests.conftest import PHOTOS, STYLES, read_rgb
    from worker.pipeline.intake import to_working_size

    photo = to_working_size(read_rgb(PHOTOS / photo_name), size)
    painting = to_working_size(read_rgb(STYLES / painting_name), 512)
    ref = reference(photo_name, painting_name, photo, painting, net)
    run = road(photo, painting, net, **options)
    losses, reach, started = [], None, time.perf_counter()
    for loss in run:
        losses.append(loss)
        if loss <= ref["L_ref"]:
            reach = (len(losses), time.perf_counter() - started)
            break
    seconds = time.perf_counter() - started
    return {"pair": [photo_name, painting_name], **ref,
            "reach_iterations": reach and reach[0],
            "ratio": reach and round(ref["T_ref"] / reach[1], 2),
            "ratio_iterations": reach and round(1000 / reach[0], 2),
            "ms_per_iteration": round(1000 * seconds / len(losses), 1),
            "ms_per_adam_step": round(ref["T_ref"], 1),
            "loss_over_L_ref": {n: round(losses[n - 1] / ref["L_ref"], 4)
                                for n in (50, 100, 200, 400, 600) if n <= len(losses)}}  # fmt: skip


def main() -> None:
    import statistics

    from tqdm import tqdm

    from benchmarks.common import feature_net

    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--first-step", type=float, default=10.0)
    parser.add_argument("--cap", type=int, default=600)
    args = parser.parse_args()
    options = {"first_step": args.first_step, "steps": args.cap}
    net = feature_net()
    rows = [measure(p, s, args.size, net, options)
            for p, s in tqdm(PAIRS, desc="lbfgs_adam road", unit="pair")]  # fmt: skip
    ratios = [r["ratio"] or 0.0 for r in rows]
    report = {"machine": machine(), "size": args.size, "options": options, "pairs": rows,
              "median_ratio": statistics.median(ratios), "worst_ratio": min(ratios),
              "never_reached": sum(r["ratio"] is None for r in rows)}  # fmt: skip
    write_json(f"lbfgs_compact_{args.size}_first{args.first_step:g}", report)
    print(json.dumps({k: v for k, v in report.items() if k != "pairs"}, indent=1))


if __name__ == "__main__":
    main()
