"""L-BFGS on the device: the same method as worker.pipeline.lbfgs (two-loop
recursion over the last HISTORY pairs, Armijo backtracking, pixels projected
to 0..255), written as TensorFlow ops in one compiled function with the
objective, so k iterations run with no host round trip.

On a GPU the host version's NumPy work (float64 dot products over every pixel,
a copy to and from the device per evaluation) is far slower than the step
itself; here the history (S, Y, rho) stays on the device, in float32 whatever
precision the objective runs in. The host sees the images and losses every k
iterations: the progress and cancel check.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np

from worker.pipeline.lbfgs import ARMIJO_C, HISTORY, MAX_BACKTRACKS

LOSS_KEYS = ("content", "style", "tv", "total")


def device_lbfgs_steps(
    images: np.ndarray, objective: Any, targets: Any, first_step: float, steps: int,
    every: int, xla: bool = False,
) -> Iterator[tuple[int, dict[str, np.ndarray], np.ndarray]]:  # fmt: skip
    """Yield (iterations run, per-image losses of the returned images, images)
    every `every` iterations (fewer at the end)."""
    import tensorflow as tf

    chunk = _chunk_for(objective, xla)
    args = targets.args()
    x = tf.constant(images, tf.float32)
    losses, g = objective.value_and_grad(x, *args)
    n = int(np.prod(images.shape))
    state = (tf.zeros([HISTORY, n]), tf.zeros([HISTORY, n]), tf.zeros([HISTORY]),
             tf.constant(0, tf.int32))  # fmt: skip
    values = tuple(tf.cast(losses[k], tf.float32) for k in LOSS_KEYS)
    done = 0
    while done < steps:
        k = min(every, steps - done)
        x, g, values, *rest = chunk(x, g, values, *state, tf.constant(k, tf.int32),
                                    tf.constant(first_step, tf.float32), *args)  # fmt: skip
        state = tuple(rest)
        done += k
        yield k, {key: v.numpy() for key, v in zip(LOSS_KEYS, values, strict=True)}, x.numpy()


def _chunk_for(objective: Any, xla: bool) -> Any:
    """Compiled once per objective (kept with it: a per-process cache) and XLA flag."""
    import tensorflow as tf

    key = ("lbfgs_device", xla)
    if key not in objective.compiled:
        objective.compiled[key] = tf.function(
            lambda *a: _run(objective, *a), jit_compile=xla, reduce_retracing=True
        )
    return objective.compiled[key]


def _run(objective: Any, x: Any, g: Any, values: Any, s_hist: Any, y_hist: Any, rho: Any,
         count: Any, k: Any, first_step: Any, *targets: Any) -> tuple[Any, ...]:  # fmt: skip
    """k iterations; returns x, its gradient and losses, and the history."""
    import tensorflow as tf

    shape = tf.shape(x)

    def evaluate(flat: Any) -> tuple[tuple[Any, ...], Any]:
        losses, grad = objective.value_and_grad(tf.reshape(flat, shape), *targets)
        return tuple(tf.cast(losses[n], tf.float32) for n in LOSS_KEYS), tf.reshape(grad, [-1])

    def iteration(i: Any, xf: Any, gf: Any, vals: Any, s: Any, y: Any, r: Any, c: Any) -> Any:
        d = -_two_loop(gf, s, y, r, c)
        scale = first_step / tf.maximum(tf.reduce_max(tf.abs(d)), 1e-12)
        d = tf.where(c == 0, d * scale, d)  # no curvature yet: the largest pixel moves first_step
        slope = tf.tensordot(gf, d, 1)
        reset = slope >= 0  # not a descent direction: forget the history
        s, y = tf.where(reset, tf.zeros_like(s), s), tf.where(reset, tf.zeros_like(y), y)
        r, c = tf.where(reset, tf.zeros_like(r), r), tf.where(reset, 0, c)
        d = tf.where(reset, -gf, d)
        slope = tf.where(reset, -tf.tensordot(gf, gf, 1), slope)
        x_new, new_vals, g_new = _line_search(evaluate, xf, d, slope, tf.reduce_sum(vals[3]))
        step, change = x_new - xf, g_new - gf
        sy = tf.tensordot(step, change, 1)
        keep = sy > 1e-10
        s = tf.where(keep, tf.concat([s[1:], step[None]], 0), s)
        y = tf.where(keep, tf.concat([y[1:], change[None]], 0), y)
        r = tf.where(keep, tf.concat([r[1:], [1.0 / tf.maximum(sy, 1e-30)]], 0), r)
        c = tf.where(keep, tf.minimum(c + 1, HISTORY), c)
        return i + 1, x_new, g_new, new_vals, s, y, r, c

    loop = (tf.constant(0), tf.reshape(x, [-1]), tf.reshape(g, [-1]), tuple(values), s_hist,
            y_hist, rho, count)  # fmt: skip
    _, xf, gf, vals, s_hist, y_hist, rho, count = tf.while_loop(lambda i, *_: i < k, iteration,
                                                                loop)  # fmt: skip
    return tf.reshape(xf, shape), tf.reshape(gf, shape), vals, s_hist, y_hist, rho, count


def _two_loop(q: Any, s: Any, y: Any, rho: Any, count: Any) -> Any:
    """H·q from the history, oldest row first; empty rows (rho 0) do nothing."""
    import tensorflow as tf

    alphas = []
    for j in reversed(range(HISTORY)):
        a = rho[j] * tf.tensordot(s[j], q, 1)
        alphas.append(a)
        q = q - a * y[j]
    newest = tf.tensordot(s[-1], y[-1], 1) / tf.maximum(tf.tensordot(y[-1], y[-1], 1), 1e-30)
    q = q * tf.where(count > 0, newest, 1.0)
    for j in range(HISTORY):
        b = rho[j] * tf.tensordot(y[j], q, 1)
        q = q + (alphas[HISTORY - 1 - j] - b) * s[j]
    return q


def _line_search(evaluate: Any, xf: Any, d: Any, slope: Any, f0: Any) -> tuple[Any, Any, Any]:
    """Halve the step until the Armijo condition holds (at most MAX_BACKTRACKS
    tries; the last one is taken either way, as the host version does)."""
    import tensorflow as tf

    def trial(alpha: Any) -> tuple[Any, Any, Any]:
        x_new = tf.clip_by_value(xf + alpha * d, 0.0, 255.0)
        vals, g_new = evaluate(x_new)
        return x_new, vals, g_new

    def body(j: Any, alpha: Any, done: Any, x_new: Any, vals: Any, g_new: Any) -> Any:
        x_new, vals, g_new = trial(alpha)
        ok = tf.reduce_sum(vals[3]) <= f0 + ARMIJO_C * alpha * slope
        return j + 1, tf.where(ok, alpha, alpha * 0.5), ok, x_new, vals, g_new

    first = trial(tf.constant(1.0))
    ok = tf.reduce_sum(first[1][3]) <= f0 + ARMIJO_C * slope
    start = (tf.constant(1), tf.where(ok, 1.0, 0.5), ok, *first)
    _, _, _, x_new, vals, g_new = tf.while_loop(
        lambda j, alpha, done, *_: tf.logical_and(j < MAX_BACKTRACKS, tf.logical_not(done)),
        body, start,
    )  # fmt: skip
    return x_new, vals, g_new
