"""A small L-BFGS (two-loop recursion, Armijo backtracking) for the style loss.

Written here rather than taken from scipy so that it is a generator like Adam:
one yield per iteration, so progress and checkpoints work the same way. Pixels
are kept in 0..255 by projecting after each step.
"""

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

HISTORY = 8
# In every key of a picture or dial it optimized (worker.service.plan): 2 since
# a line search that finds no lower loss refuses the step (1 took it, and climbed).
LBFGS_VERSION = 2
ARMIJO_C = 1e-4
MAX_BACKTRACKS = 10


def lbfgs_steps(
    images: np.ndarray, objective: Any, targets: Any, first_step: float, steps: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """images: B x h x w x 3, each its own problem (its own history, step and
    line search, as if optimized alone: a batch shares only the VGG passes);
    yields per-image losses before each update, and the update."""
    evaluate = _evaluator(objective, targets, images.shape)
    b = images.shape[0]
    x = images.astype(np.float64).reshape(b, -1)
    losses, g = evaluate(x)
    history = [_History() for _ in range(b)]
    for _ in range(steps):
        d = np.stack([h.direction(gi, first_step) for h, gi in zip(history, g, strict=True)])
        slope = np.einsum("ij,ij->i", g, d)
        for i in map(int, np.flatnonzero(slope >= 0)):  # not a descent direction: drop its history
            history[i].pairs.clear()
            d[i] = history[i].direction(g[i], first_step)
            slope[i] = float(g[i] @ d[i])
        x_new, new, ok = _line_search(evaluate, x, d, slope, (losses, g))
        for i, h in enumerate(history):
            if not ok[i] and h.pairs:
                # A history direction no step along which lowers the loss: stay,
                # and start again from the gradient (its last trial could climb far).
                h.pairs.clear()
                x_new[i], new[1][i] = x[i], g[i]
                for k in losses:
                    new[0][k][i] = losses[k][i]
            h.push(x_new[i] - x[i], new[1][i] - g[i])
        yield losses, x_new.reshape(images.shape).astype(np.float32)
        x, (losses, g) = x_new, new


class _History:
    """One image's last HISTORY curvature pairs."""

    def __init__(self) -> None:
        self.pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=HISTORY)

    def direction(self, g: np.ndarray, first_step: float) -> np.ndarray:
        d = -_two_loop(g, self.pairs)
        if not self.pairs:
            # No curvature yet: move the largest pixel by about first_step levels.
            d *= first_step / max(np.abs(d).max(), 1e-12)
        return d

    def push(self, s: np.ndarray, y: np.ndarray) -> None:
        if float(s @ y) > 1e-10:
            self.pairs.append((s, y, 1.0 / float(s @ y)))


Evaluated = tuple[dict[str, np.ndarray], np.ndarray]


def _line_search(
    evaluate: Any, x: np.ndarray, d: np.ndarray, slope: np.ndarray, now: Evaluated
) -> tuple[np.ndarray, Evaluated, np.ndarray]:
    """Per image, halve its step until the Armijo condition holds (else the
    last of MAX_BACKTRACKS tries, and False in the returned mask); an image
    that has its step keeps it while the others search on."""
    f0 = now[0]["total"]
    alpha, done = np.ones(len(x)), np.zeros(len(x), bool)
    x_new, losses, g = x.copy(), {k: v.copy() for k, v in now[0].items()}, now[1].copy()
    for _ in range(MAX_BACKTRACKS):
        x_try = np.where(done[:, None], x_new, np.clip(x + alpha[:, None] * d, 0.0, 255.0))
        tried, g_try = evaluate(x_try)
        # In the losses' float32, as the comparison always was (and the device's is).
        ok = tried["total"] <= f0 + (ARMIJO_C * alpha * slope).astype(f0.dtype)
        todo = ~done
        x_new[todo], g[todo] = x_try[todo], g_try[todo]
        for k in losses:
            losses[k][todo] = tried[k][todo]
        alpha = np.where(done | ok, alpha, alpha * 0.5)
        done |= ok
        if done.all():
            break
    return x_new, (losses, g), done


def _two_loop(g: np.ndarray, pairs: deque[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        alphas.append(a)
        q -= a * y
    if pairs:
        s, y, _ = pairs[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
        b = rho * float(y @ q)
        q += (a - b) * s
    return q


def _evaluator(objective: Any, targets: Any, shape: tuple[int, ...]) -> Any:
    import tensorflow as tf

    def evaluate(flat: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x = tf.constant(flat.reshape(shape), dtype=tf.float32)
        losses, grad = objective.value_and_grad(x, *targets.args())
        grads = grad.numpy().astype(np.float64).reshape(shape[0], -1)
        return {k: v.numpy() for k, v in losses.items()}, grads

    return evaluate
