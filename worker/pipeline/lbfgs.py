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
ARMIJO_C = 1e-4
MAX_BACKTRACKS = 10


def lbfgs_steps(
    images: np.ndarray, objective: Any, targets: Any, first_step: float, steps: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """images: B x h x w x 3. A batch is optimized as one problem (the sum of its
    images' losses); yields per-image losses before each update, and the update."""
    evaluate = _evaluator(objective, targets, images.shape)
    x = images.astype(np.float64).ravel()
    losses, g = evaluate(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=HISTORY)
    for _ in range(steps):
        d = -_two_loop(g, pairs)
        if not pairs:
            # No curvature yet: move the largest pixel by about first_step levels.
            d *= first_step / max(np.abs(d).max(), 1e-12)
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: drop the history
            pairs.clear()
            d, slope = -g, -float(g @ g)
        alpha, x_new, new = 1.0, x, (losses, g)
        for _ in range(MAX_BACKTRACKS):
            x_new = np.clip(x + alpha * d, 0.0, 255.0)
            new = evaluate(x_new)
            if new[0]["total"].sum() <= losses["total"].sum() + ARMIJO_C * alpha * slope:
                break
            alpha *= 0.5
        s, y = x_new - x, new[1] - g
        if float(s @ y) > 1e-10:
            pairs.append((s, y, 1.0 / float(s @ y)))
        yield losses, x_new.reshape(images.shape).astype(np.float32)
        x, (losses, g) = x_new, new


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
        return {k: v.numpy() for k, v in losses.items()}, grad.numpy().astype(np.float64).ravel()

    return evaluate
