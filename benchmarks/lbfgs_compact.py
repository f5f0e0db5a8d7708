"""A probe for issue 19, item 4 (not the service's optimizer): L-BFGS in its
compact form (Byrd, Nocedal and Schnabel 1994) with a low-frequency first
matrix, on the quality pairs, against the classic recipe's L_ref and T_ref.

    .venv/bin/python -m benchmarks.lbfgs_compact [--history 30] [--blur 4 --sigma 2]
        [--first-step 30] [--cap 600] [--polish-after 200] [--perturb 0.01 --seed 1]

The shipped device L-BFGS (worker.pipeline.lbfgs_device) runs the two-loop
recursion: 4 x history small vector operations a direction, and its history
is copied twice an iteration. Here the history lives in tf.Variable ring
buffers with P Y beside Y, and the small matrices S'Y (a column an
iteration) and Y'PY are kept up to date, so a direction is 4 matrix-vector
products over the history and one blur, whatever its length. The first
matrix is H0 = gamma P, P = I + blur x G (G a Gaussian blur of sigma px):
low frequencies move first. After --polish-after iterations Adam at rate 5
takes over, as lbfgs_adam does. Per pair: iterations and seconds until the
loss first reaches L_ref (the reference: noise, Adam lr 10, 1000 steps; its
numbers are kept in the results folder and measured once per machine),
T_ref over those seconds, and the loss over L_ref along the way.
docs/faster-road.md, "The low-frequency preconditioner again", has what it
measured.
"""

import argparse
import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, machine, pair_objective, write_json

PAIRS = [(p, s) for p in ("grace_hopper.png", "parrot.jpg", "kite_and_cold.jpg")
         for s in ("starry.jpg", "waves.jpg")]  # fmt: skip
Vector = Callable[[Any], Any]
Road = Callable[[np.ndarray, np.ndarray, Any], Iterator[float]]


def blur_preconditioner(h: int, w: int, strength: float, sigma: float) -> Vector:
    """q -> (I + strength G) q on a flat h x w x 3 image; symmetric and
    positive definite (a zero-padded Gaussian's spectrum is positive)."""
    import tensorflow as tf

    if strength <= 0:
        return lambda q: q
    r = int(3 * sigma + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-t * t / (2 * sigma * sigma))
    k /= k.sum()
    kx = tf.constant(np.tile(k[None, :, None, None], (1, 1, 3, 1)))
    ky = tf.constant(np.tile(k[:, None, None, None], (1, 1, 3, 1)))

    def apply(q: Any) -> Any:
        x = tf.reshape(q, [1, h, w, 3])
        g = tf.nn.depthwise_conv2d(x, kx, [1, 1, 1, 1], "SAME")
        g = tf.nn.depthwise_conv2d(g, ky, [1, 1, 1, 1], "SAME")
        return tf.reshape(x + strength * g, [-1])

    return apply


class CompactHistory:
    """The last m curvature pairs (s, y) in ring buffers, with P y and the
    products the compact form needs."""

    def __init__(self, n: int, m: int, precondition: Vector) -> None:
        import tensorflow as tf

        self.m, self.p = m, precondition
        self.s, self.y, self.py = (tf.Variable(tf.zeros([m, n])) for _ in range(3))
        self.sy = tf.Variable(tf.zeros([m, m]))  # sy[i, j] = s_i . y_j (slots)
        self.ypy = tf.Variable(tf.zeros([m, m]))  # ypy[i, j] = y_i . P y_j
        self.count = tf.Variable(0)  # pairs pushed since the last reset

    def reset(self) -> None:
        for v in (self.s, self.y, self.py, self.sy, self.ypy):
            v.assign(v * 0)
        self.count.assign(0)

    def push(self, s: Any, y: Any) -> None:
        import tensorflow as tf

        j = self.count % self.m
        py = self.p(y)
        self.s[j].assign(s)
        self.y[j].assign(y)
        self.py[j].assign(py)
        # R needs s_i . y_j for i older than j: the newest pair's column.
        column = tf.linalg.matvec(self.s, y)
        self.sy.assign(tf.transpose(tf.tensor_scatter_nd_update(tf.transpose(self.sy), [[j]],
                                                                column[None])))  # fmt: skip
        cross = tf.linalg.matvec(self.y, py)
        ypy = tf.tensor_scatter_nd_update(self.ypy, [[j]], cross[None])
        self.ypy.assign(tf.transpose(tf.tensor_scatter_nd_update(tf.transpose(ypy), [[j]],
                                                                 cross[None])))  # fmt: skip
        self.count.assign_add(1)

    def times(self, g: Any) -> Any:
        """H g for the history's inverse-Hessian estimate (H0 = gamma P, gamma
        from the newest pair); P g when the history is empty."""
        import tensorflow as tf

        m, c = self.m, self.count.read_value()
        k = tf.minimum(c, m)
        order = (tf.where(c < m, 0, c % m) + tf.range(m)) % m  # oldest first
        back = tf.math.invert_permutation(order)
        valid = tf.cast(tf.range(m) < k, tf.float32)
        both = valid[:, None] * valid[None, :]
        a = tf.gather(tf.linalg.matvec(self.s, g), order) * valid
        b = tf.gather(tf.linalg.matvec(self.py, g), order) * valid
        sy = tf.gather(tf.gather(self.sy, order), order, axis=1) * both
        ypy = tf.gather(tf.gather(self.ypy, order), order, axis=1) * both
        r = tf.linalg.band_part(sy, 0, -1) + tf.linalg.diag(1.0 - valid)
        newest = (c - 1) % m
        gamma = tf.where(k > 0, self.sy[newest, newest] / tf.maximum(self.ypy[newest, newest],
                                                                    1e-30), 1.0)  # fmt: skip
        p = tf.linalg.triangular_solve(r, a[:, None], lower=False)[:, 0]
        t = tf.linalg.diag_part(sy) * p + gamma * tf.linalg.matvec(ypy, p) - gamma * b
        u = tf.linalg.triangular_solve(r, t[:, None], lower=False, adjoint=True)[:, 0]
        u, p = tf.gather(u * valid, back), tf.gather(p * valid, back)
        return (gamma * self.p(g) + tf.linalg.matvec(self.s, u, transpose_a=True)
                - gamma * tf.linalg.matvec(self.py, p, transpose_a=True))  # fmt: skip


def lbfgs_compact_steps(photo: np.ndarray, painting: np.ndarray, net: Any, *, history: int,
                        blur: float, sigma: float, first_step: float, steps: int,
                        polish_after: int, start: str = "photo",
                        refuse: bool = True) -> Iterator[float]:  # fmt: skip
    """Set up and trace, then return an iterator of the loss after each
    iteration (the picture after it is fetched too, as
    benchmarks.quality_pairs' runs do): the caller times the iterations only."""
    import tensorflow as tf

    from worker.pipeline import lbfgs_device
    from worker.pipeline.style import _adam_steps
    from worker.pipeline.style_params import POLISH_RATE

    objective, level = pair_objective(photo, painting, net)
    size = photo.shape[:2]
    targets = level.args()
    shape = [1, *size, 3]
    precondition = blur_preconditioner(size[0], size[1], blur, sigma)
    hist = CompactHistory(int(np.prod(shape)), history, precondition)

    def evaluate(flat: Any) -> tuple[tuple[Any, ...], Any]:
        losses, grad = objective.value_and_grad(tf.reshape(flat, shape), *targets)
        # The line search's batch of one: per-image losses, a 1 x n gradient.
        return (tuple(tf.cast(losses[k], tf.float32) for k in lbfgs_device.LOSS_KEYS),
                tf.reshape(grad, [1, -1]))  # fmt: skip

    def one(x: Any, g: Any, f: Any) -> tuple[Any, Any, Any]:
        scaled = -g * (first_step / tf.maximum(tf.reduce_max(tf.abs(g)), 1e-12))
        d = tf.where(hist.count > 0, -hist.times(g), scaled)
        if tf.tensordot(g, d, 1) >= 0:  # not a descent direction: forget the history
            hist.count.assign(0)
            d = scaled
        x_new, values, g_new, ok = lbfgs_device._line_search(
            evaluate, x[None], d[None], tf.tensordot(g, d, 1)[None], f[None])  # fmt: skip
        x_new, g_new, f_new = x_new[0], g_new[0], tf.reduce_sum(values[3])
        # As the service's LBFGS_VERSION 2: a failed search along the history's
        # direction stays, and starts again from the gradient.
        stay = tf.logical_and(tf.logical_not(ok[0]), hist.count > 0) if refuse else False
        if stay:
            hist.count.assign(0)
        x_new, g_new, f_new = (tf.where(stay, x, x_new), tf.where(stay, g, g_new),
                               tf.where(stay, f, f_new))  # fmt: skip
        if tf.tensordot(x_new - x, g_new - g, 1) > 1e-10:
            hist.push(x_new - x, g_new - g)
        return x_new, g_new, f_new

    step = tf.function(one)
    if start == "palette":  # the photo recoloured to the painting's colour statistics
        from worker.pipeline.palette import palette_start

        photo = palette_start(photo, [(painting, 1.0)])
    x = tf.reshape(tf.constant(photo, tf.float32), [-1])
    losses, g = objective.value_and_grad(tf.reshape(x, shape), *targets)
    g, f = tf.reshape(g, [-1]), tf.reduce_sum(losses["total"])
    step(x, g, f)  # traced here, before the caller's clock starts; its history forgotten
    hist.reset()

    def iterate(x: Any, g: Any, f: Any) -> Iterator[float]:
        for _ in range(min(steps, polish_after)):
            x, g, f = step(x, g, f)
            x.numpy()
            yield float(f.numpy())
        polish = _adam_steps(x.numpy().reshape(shape), objective, level, POLISH_RATE,
                             steps - polish_after)  # fmt: skip
        for losses, _ in polish:  # as lbfgs_adam: the service's own Adam
            yield float(losses["total"][0])

    return iterate(x, g, f)


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


def perturbed(photo: np.ndarray, levels: float, seed: int) -> np.ndarray:
    """The photo plus Gaussian noise of `levels` (0: the photo itself): a
    road whose iterations change with noise far below a level is fragile."""
    if levels <= 0:
        return photo
    noise = np.random.default_rng(seed).normal(0.0, levels, photo.shape)
    return np.clip(photo + noise, 0, 255).astype(np.float32)


def measure(photo_name: str, painting_name: str, size: int, net: Any, road: Road,
            perturb: float = 0.0, seed: int = 1) -> dict[str, Any]:  # fmt: skip
    """road(photo, painting, net): set up (and traced), then an iterator of
    the loss after each iteration; only the iterations are timed."""
    from tests.conftest import PHOTOS, STYLES, read_rgb
    from worker.pipeline.intake import to_working_size

    photo = to_working_size(read_rgb(PHOTOS / photo_name), size)
    painting = to_working_size(read_rgb(STYLES / painting_name), 512)
    ref = reference(photo_name, painting_name, photo, painting, net)  # of the photo itself
    run = road(perturbed(photo, perturb, seed), painting, net)
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


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every road's run over the pairs takes."""
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cap", type=int, default=600)
    parser.add_argument("--perturb", type=float, default=0.0, help="noise on the photo, levels")
    parser.add_argument("--seed", type=int, default=1)


def run_pairs(name: str, road: Road, args: argparse.Namespace,
              settings: dict[str, Any]) -> None:  # fmt: skip
    """`road` on every pair: per pair, the median and the worst, written to
    the results folder as `name` (plus the noise, if any) and printed."""
    import statistics

    from tqdm import tqdm

    from benchmarks.common import feature_net

    net = feature_net()
    rows = [measure(p, s, args.size, net, road, args.perturb, args.seed)
            for p, s in tqdm(PAIRS, desc=name, unit="pair")]  # fmt: skip
    ratios = [r["ratio"] or 0.0 for r in rows]
    report = {"machine": machine(), "size": args.size, **settings,
              "perturb": {"levels": args.perturb, "seed": args.seed}, "pairs": rows,
              "median_ratio": statistics.median(ratios), "worst_ratio": min(ratios),
              "never_reached": sum(r["ratio"] is None for r in rows)}  # fmt: skip
    noise = f"_perturb{args.perturb:g}_seed{args.seed}" if args.perturb > 0 else ""
    write_json(f"{name}_{args.size}{noise}", report)
    print(json.dumps({k: v for k, v in report.items() if k != "pairs"}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    add_pair_arguments(parser)
    parser.add_argument("--history", type=int, default=30)
    parser.add_argument("--blur", type=float, default=4.0)
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--first-step", type=float, default=30.0)
    parser.add_argument("--polish-after", type=int, default=200)
    parser.add_argument("--start", choices=["photo", "palette"], default="photo")
    parser.add_argument(
        "--take-failed-steps",
        action="store_true",
        help="take a failed line search's last trial (as before LBFGS_VERSION 2)",
    )
    args = parser.parse_args()
    options = {"history": args.history, "blur": args.blur, "sigma": args.sigma,
               "first_step": args.first_step, "steps": args.cap,
               "polish_after": args.polish_after, "start": args.start,
               "refuse": not args.take_failed_steps}  # fmt: skip
    road = functools.partial(lbfgs_compact_steps, **options)
    run_pairs("lbfgs_compact", road, args, {"options": options})


if __name__ == "__main__":
    main()
