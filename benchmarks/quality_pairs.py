"""Time to quality over 3 photos x 2 paintings, before and after: today's
default recipe and candidates (a warm start from the feed-forward preview, a
run-on stopping rule) against the classic recipe, with a judge that is not
the optimized loss.

    .venv/bin/python -m benchmarks.quality_pairs [--size 128] [--ref-iterations 1000] [--cap 400]
        [--polish-cap 600]

Per pair, five optimizations: the reference (neural-style's recipe: noise,
one scale, Adam lr 10, --ref-iterations steps; its final loss is L_ref, its
wall time T_ref), then the service's L-BFGS (on the device; every
iteration's loss seen) for --cap iterations from the photo (init content),
from the preview (init preview: the previewer's picture at the default
strength, as the service passes the one it published) and from the photo in
the painting's colours (init palette), and the L-BFGS-then-Adam road
(optimizer lbfgs_adam, from the photo) for --polish-cap iterations (0: not
run). Every recipe (init, cap, stop_below) is read off those runs: the
stopping rule only ends a run, it never changes its path, so each recipe's
run is a prefix of one of them, seconds included.

Per pair and recipe: seconds and iterations until the loss first reaches
L_ref (None: never), T_ref over those seconds, the final loss, iterations run,
seconds, and the judge's distances: Gram distances at VGG16's second conv of
each block (the loss uses the first) and the content distance at block3_conv2
(the loss uses block4_conv2), on the picture the recipe returns. Per recipe:
the median and the worst over pairs. The preview's seconds are added to the
warm start's (the service computes it anyway; this keeps the ratio honest
for a caller who would not). Writes JSON after every pair (a run cut off
still leaves what it measured) and one picture grid (photo | preview |
reference | before: photo, 100 | after: palette, 400).
"""

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from benchmarks.common import RESULTS, machine, write_json
from worker.pipeline.style_params import ADAM_AFTER

PHOTOS = ("grace_hopper.png", "parrot.jpg", "kite_and_cold.jpg")
PAINTINGS = ("starry.jpg", "waves.jpg")
JUDGE_STYLE = ("block1_conv2", "block2_conv2", "block3_conv2", "block4_conv3", "block5_conv2")
JUDGE_CONTENT = "block3_conv2"
STOPS = (0.0, 0.001, 0.002, 0.005, 0.01)
INITS = ("content", "preview", "palette")
# The L-BFGS-then-Adam road (optimizer lbfgs_adam, from the photo), read off
# one run of --polish-cap iterations: Adam's path depends on where it took over.
POLISH = "content+adam"


class Recipe(NamedTuple):
    init: str  # content | preview | palette: L-BFGS from there; POLISH: lbfgs_adam
    cap: int  # iterations at most
    stop_below: float  # the stopping rule's fraction; 0: off

    @property
    def name(self) -> str:
        return f"{self.init} {self.cap}" + (f" stop {self.stop_below}" if self.stop_below else "")


BEFORE = Recipe("content", 100, 0.0)  # today's default
AFTER = Recipe("palette", 400, 0.0)  # the grid's "after" column


def recipes(cap: int, polish_cap: int = 0) -> list[Recipe]:
    """Every start at 100, 200 and `cap` iterations, each with every stop
    fraction; the polish road at `polish_cap` and at the L-BFGS caps above
    its hand-over (below it, it is the photo start's run)."""
    caps = sorted({min(100, cap), min(200, cap), cap})
    after = ADAM_AFTER
    polished = sorted({c for c in (*caps, polish_cap) if after < c <= polish_cap})
    return [Recipe(i, c, s) for i in INITS for c in caps for s in STOPS] + [
        Recipe(POLISH, c, 0.0) for c in polished
    ]


@dataclass
class Run:
    """One optimization, every iteration: seconds since its start, the loss
    measured there (that of images[k] for losses[k]), and the pictures."""

    seconds: list[float]
    losses: list[float]
    images: list[np.ndarray]


def judge_for() -> Any:
    from tests.conftest import MODELS
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.measures import content_distance, style_distance

    net = load_feature_net((*JUDGE_STYLE, JUDGE_CONTENT), MODELS)

    def judge(photo: np.ndarray, painting: np.ndarray, image: np.ndarray) -> dict[str, float]:
        style = style_distance(net, image, painting, JUDGE_STYLE)
        content = content_distance(net, image, photo, JUDGE_CONTENT)
        return {"style": round(style, 3), "content": round(content, 3)}

    return judge


def optimize(photo: np.ndarray, painting: np.ndarray, params: Any, net: Any,
             init: np.ndarray | None = None) -> Run:  # fmt: skip
    """`params` run to the end; images[k] is the picture losses[k] was measured on.

    L-BFGS runs on the device as the service runs it, with the host seeing
    every iteration (lbfgs_every 1; the service's 10 makes fewer round trips),
    so losses[k] is that of the picture after k + 1 updates. Adam (the
    reference) measures each loss before its update: images[0] is the start.
    lbfgs_adam is both: after its hand-over each loss is that of the picture
    the step before returned."""
    from worker.pipeline.style import stylize

    device = params.optimizer != "adam"
    start = photo if init is None else init
    run = Run([], [], [] if device else [np.clip(np.rint(start), 0, 255).astype(np.uint8)])
    every = 1 if device else 0  # the reference needs only its result
    started = time.perf_counter()
    for step in stylize(photo, [(painting, 1.0)], params, net, checkpoint_every=every,
                        init_image=init, lbfgs_every=every):  # fmt: skip
        run.seconds.append(time.perf_counter() - started)
        run.losses.append(step.losses["total"])
        if step.image is not None:
            run.images.append(step.image)
    if params.optimizer == "lbfgs_adam" and len(run.losses) > ADAM_AFTER:
        k = ADAM_AFTER  # Adam's k-th loss is the picture shown one step before
        run.images = run.images[:k] + run.images[k - 1 : -1]
    return run


def stopped_at(losses: list[float], below: float) -> int:
    """Iterations the stopping rule lets run (worker.pipeline.style._converged)."""
    from worker.pipeline.style import _converged

    totals: list[tuple[int, float]] = []
    for k, loss in enumerate(losses, 1):
        totals.append((k, loss))
        if _converged(totals, below):
            return k
    return len(losses)


def read_recipe(run: Run, recipe: Recipe, l_ref: float, t_ref: float,
                extra_s: float) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """The recipe's numbers and picture, read off the longer run it is a prefix of."""
    n = stopped_at(run.losses[: recipe.cap], recipe.stop_below)
    losses = run.losses[:n]
    best = int(np.argmin(losses))  # stylize returns the best picture it measured
    reach = next((k for k, loss in enumerate(losses) if loss <= l_ref), None)
    reach_s = None if reach is None else round(extra_s + run.seconds[reach], 2)
    return {
        "reach_iterations": None if reach is None else reach + 1, "reach_s": reach_s,
        "ratio": None if reach_s is None else round(t_ref / reach_s, 2),
        "final_loss": round(losses[best], 1), "loss_over_L_ref": round(losses[best] / l_ref, 3),
        "iterations": n, "seconds": round(extra_s + run.seconds[n - 1], 2),
    }, run.images[best]  # fmt: skip


def measure_pair(photo_name: str, painting_name: str, size: int, ref_iterations: int,
                 cap: int, tools: dict[str, Any],
                 polish_cap: int = 0) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """One pair: the reference, an L-BFGS run per start, every recipe read off them."""
    from tests.conftest import PHOTOS as PHOTO_DIR
    from tests.conftest import STYLES, read_rgb
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style_params import StyleParams, preview_mix

    net, judge = tools["net"], tools["judge"]
    photo = to_working_size(read_rgb(PHOTO_DIR / photo_name), size)
    painting = to_working_size(read_rgb(STYLES / painting_name), 512)
    _warm_up(photo, painting, net, tools["previewer"])
    started = time.perf_counter()
    mix = preview_mix(StyleParams().strength)
    preview = tools["previewer"].stylize(photo, [(painting, 1.0)], mix)
    preview_s = time.perf_counter() - started
    ref = optimize(photo, painting, StyleParams(init="noise", iterations=ref_iterations,
                                                optimizer="adam"), net)  # fmt: skip
    l_ref, t_ref = min(ref.losses), ref.seconds[-1]
    runs = {init: optimize(photo, painting, StyleParams(iterations=cap, init=init), net,
                           preview if init == "preview" else None)
            for init in INITS}  # fmt: skip
    if polish_cap:
        polish = StyleParams(iterations=polish_cap, optimizer="lbfgs_adam")
        runs[POLISH] = optimize(photo, painting, polish, net)
    report: dict[str, Any] = {
        "pair": [photo_name, painting_name], "size": list(photo.shape[:2]),
        "preview_s": round(preview_s, 3),
        "ms_per_iteration": {"reference_adam": round(1000 * t_ref / ref_iterations, 1),
                             **{f"run_{k}": round(1000 * r.seconds[-1] / len(r.losses), 1)
                                for k, r in runs.items()}},
        "reference": {"L_ref": round(l_ref, 1), "T_ref_s": round(t_ref, 2),
                      "judge": judge(photo, painting, ref.images[-1])},
        "preview_judge": judge(photo, painting, preview), "recipes": {},
        # (seconds, loss) per iteration: any other recipe can be read off later.
        "curves": {k: [(round(t, 2), round(loss, 1))
                       for t, loss in zip(r.seconds, r.losses, strict=True)]
                   for k, r in runs.items()},
    }  # fmt: skip
    shown: dict[str, np.ndarray] = {}
    judged: dict[tuple[str, int], dict[str, float]] = {}
    for recipe in recipes(cap, polish_cap):
        extra = preview_s if recipe.init == "preview" else 0.0
        numbers, image = read_recipe(runs[recipe.init], recipe, l_ref, t_ref, extra)
        same = (recipe.init, numbers["iterations"])  # the same picture: judged once
        judged.setdefault(same, judge(photo, painting, image))
        report["recipes"][recipe.name] = {**numbers, "judge": judged[same]}
        shown[recipe.name] = image
    before, after = (r._replace(cap=min(r.cap, cap)).name for r in (BEFORE, AFTER))
    row = [photo, preview, ref.images[-1], shown[before], shown[after]]
    return report, np.concatenate(row, axis=1)


def _warm_up(photo: np.ndarray, painting: np.ndarray, net: Any, previewer: Any) -> None:
    """Trace both optimizers and the previewer at this pair's shape: not timed."""
    from worker.pipeline.style import stylize
    from worker.pipeline.style_params import StyleParams

    list(stylize(photo, [(painting, 1.0)], StyleParams(iterations=3), net, lbfgs_every=1))
    list(stylize(photo, [(painting, 1.0)], StyleParams(iterations=3, optimizer="adam"), net))
    previewer.stylize(photo, [(painting, 1.0)])


def summarize(pairs: list[dict[str, Any]], ref_iterations: int) -> dict[str, dict[str, Any]]:
    """Per recipe, over pairs: the median and the worst (never reached counts
    as ratio 0; the judge's worst is its largest distance). The ratio in
    iterations (reference steps over iterations to reach L_ref) does not move
    with the machine's load; an L-BFGS iteration costs one evaluation or more."""
    out = {}
    for name in pairs[0]["recipes"]:
        rows = [p["recipes"][name] for p in pairs]
        out[name] = {**_ratios([r["ratio"] for r in rows], "ratio"),
                     **_ratios([r["reach_iterations"] and ref_iterations / r["reach_iterations"]
                                for r in rows], "ratio_iterations"),
                     "never_reached": sum(r["ratio"] is None for r in rows),
                     **_median_max(rows, "loss_over_L_ref", "iterations", "seconds"),
                     **_median_max([r["judge"] for r in rows], "style", "content")}  # fmt: skip
    refs = [p["reference"]["judge"] for p in pairs]
    out["reference"] = {**_median_max(refs, "style", "content")}
    out["preview alone"] = _median_max([p["preview_judge"] for p in pairs], "style", "content")
    return out


def _ratios(values: list[float | None], name: str) -> dict[str, float]:
    """Median and worst of T_ref over the time to reach L_ref; never = 0."""
    ratios = [v or 0.0 for v in values]
    return {f"median_{name}": round(statistics.median(ratios), 2),
            f"worst_{name}": round(min(ratios), 2)}  # fmt: skip


def _median_max(rows: list[dict[str, Any]], *keys: str) -> dict[str, float]:
    return {f"{agg}_{k}": round(fn([r[k] for r in rows]), 3) for k in keys
            for agg, fn in (("median", statistics.median), ("worst", max))}  # fmt: skip


def table(summary: dict[str, dict[str, Any]]) -> str:
    """One line per recipe: what the note quotes."""
    lines = ["recipe | ratio s median / worst | ratio iterations median / worst | never | "
             "loss/L_ref median / worst | "
             "iterations median / max | s median / max | judge style median / worst | "
             "judge content median / worst"]  # fmt: skip
    for name, s in summary.items():
        if "median_ratio" not in s:
            lines.append(f"{name} | judge style {s['median_style']} / {s['worst_style']} | "
                         f"content {s['median_content']} / {s['worst_content']}")  # fmt: skip
            continue
        spread = [
            f"{s['median_' + k]} / {s['worst_' + k]}"
            for k in ("loss_over_L_ref", "iterations", "seconds", "style", "content")
        ]
        ratios = [f"{s['median_' + k]} / {s['worst_' + k]}" for k in ("ratio", "ratio_iterations")]
        lines.append(" | ".join([name, *ratios, str(s["never_reached"]), *spread]))
    return "\n".join(lines)


def run(size: int, ref_iterations: int, cap: int, photos: tuple[str, ...] = PHOTOS,
        paintings: tuple[str, ...] = PAINTINGS, polish_cap: int = 0) -> dict[str, Any]:  # fmt: skip
    from tests.conftest import MODELS
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.model_cache import get_previewer

    p = StyleParams()
    tools = {"net": load_feature_net((p.content_layer, *p.style_layers), MODELS),
             "judge": judge_for(), "previewer": get_previewer()}  # fmt: skip
    name = f"quality_pairs_{size}"
    pairs, rows = [], []
    for photo in photos:
        for painting in paintings:
            pair, row = measure_pair(photo, painting, size, ref_iterations, cap, tools,
                                     polish_cap)  # fmt: skip
            pairs.append(pair)
            rows.append(_row(row))
            write_json(f"{name}.partial", {"machine": machine(), "pairs": pairs})
            print(json.dumps({"pair": pair["pair"], "reference": pair["reference"],
                              **{r.name: pair["recipes"][r.name] for r in (BEFORE, AFTER)
                                 if r.name in pair["recipes"]}}), flush=True)  # fmt: skip
    cv2.imwrite(str(RESULTS / f"{name}.grid.png"),
                cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))  # fmt: skip
    return {"size": size, "ref_iterations": ref_iterations, "cap": cap, "polish_cap": polish_cap,
            "lbfgs": "device, lbfgs_every 1 (every iteration seen)", "pairs": pairs,
            "summary": summarize(pairs, ref_iterations),
            "grid": str(RESULTS / f"{name}.grid.png")}  # fmt: skip


def _row(image: np.ndarray, height: int = 160, width: int = 1400) -> np.ndarray:
    """A pair's pictures side by side at one height, padded white to one width."""
    scaled = cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height),
                        interpolation=cv2.INTER_AREA)[:, :width]  # fmt: skip
    return cv2.copyMakeBorder(scaled, 2, 2, 0, width - scaled.shape[1], cv2.BORDER_CONSTANT,
                              value=(255, 255, 255))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--ref-iterations", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=400, help="the L-BFGS runs' iterations")
    parser.add_argument("--polish-cap", type=int, default=600,
                        help="the lbfgs_adam run's iterations (0: not run)")  # fmt: skip
    parser.add_argument("--table", type=Path, help="only print the table of a saved (partial) run")
    args = parser.parse_args()
    if args.table:  # a run still going: its partial JSON, summarized
        print(table(summarize(json.loads(args.table.read_text())["pairs"], args.ref_iterations)))
        return
    measured = run(args.size, args.ref_iterations, args.cap, polish_cap=args.polish_cap)
    report = {"machine": machine(), **measured}
    write_json(f"quality_pairs_{args.size}", report)
    print(table(report["summary"]))


if __name__ == "__main__":
    main()
