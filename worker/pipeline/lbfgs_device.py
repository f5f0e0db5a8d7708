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
    b, n = images.shape[0], int(np.prod(images.shape[1:]))
    state = (tf.zeros([HISTORY, b, n]), tf.zeros([HISTORY, b, n]), tf.zeros([HISTORY, b]),
             tf.zeros([b], tf.int32))  # fmt: skip
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
    """k iterations; returns x, its gradient and losses, and the history.

    Each image of a batch is its own problem (its own history, step and line
    search), as if optimized alone: the batch shares only the VGG passes, so
    an output's picture does not depend on the outputs it was batched with."""
    import tensorflow as tf

    shape = tf.shape(x)
    batch = shape[0]

    def evaluate(flat: Any) -> tuple[tuple[Any, ...], Any]:
        losses, grad = objective.value_and_grad(tf.reshape(flat, shape), *targets)
        flat_grad = tf.ensure_shape(tf.reshape(grad, tf.shape(flat)), flat.shape)
        return tuple(tf.cast(losses[n], tf.float32) for n in LOSS_KEYS), flat_grad

    def iteration(i: Any, xf: Any, gf: Any, vals: Any, s: Any, y: Any, r: Any, c: Any) -> Any:
        # No curvature yet, or a history whose direction does not descend: the
        # gradient, scaled so that the largest pixel moves first_step.
        largest = tf.maximum(tf.reduce_max(tf.abs(gf), axis=1), 1e-12)
        steepest = -gf * (first_step / largest)[:, None]
        d = -_two_loop(gf, s, y, r, c)
        reset = (c == 0) | (_dot(gf, d) >= 0)
        d = tf.where(reset[:, None], steepest, d)
        s, y = tf.where(reset[None, :, None], 0.0, s), tf.where(reset[None, :, None], 0.0, y)
        r, c = tf.where(reset[None, :], 0.0, r), tf.where(reset, 0, c)
        x_new, new_vals, g_new, ok = _line_search(evaluate, xf, d, _dot(gf, d), vals[3])
        # A history direction no step along which lowers the loss: stay, and
        # start again from the gradient (taking its last trial could climb far).
        stay = ~ok & (c > 0)
        x_new, g_new = tf.where(stay[:, None], xf, x_new), tf.where(stay[:, None], gf, g_new)
        new_vals = tuple(tf.where(stay, v, n) for v, n in zip(vals, new_vals, strict=True))
        s, y = tf.where(stay[None, :, None], 0.0, s), tf.where(stay[None, :, None], 0.0, y)
        r, c = tf.where(stay[None, :], 0.0, r), tf.where(stay, 0, c)
        step, change = x_new - xf, g_new - gf
        sy = _dot(step, change)
        keep = sy > 1e-10
        s = tf.where(keep[None, :, None], tf.concat([s[1:], step[None]], 0), s)
        y = tf.where(keep[None, :, None], tf.concat([y[1:], change[None]], 0), y)
        r = tf.where(keep[None, :], tf.concat([r[1:], (1.0 / tf.maximum(sy, 1e-30))[None]], 0), r)
        c = tf.where(keep, tf.minimum(c + 1, HISTORY), c)
        return i + 1, x_new, g_new, new_vals, s, y, r, c

    loop = (tf.constant(0), tf.reshape(x, [batch, -1]), tf.reshape(g, [batch, -1]), tuple(values),
            s_hist, y_hist, rho, count)  # fmt: skip
    _, xf, gf, vals, s_hist, y_hist, rho, count = tf.while_loop(lambda i, *_: i < k, iteration,
                                                                loop)  # fmt: skip
    return tf.reshape(xf, shape), tf.reshape(gf, shape), vals, s_hist, y_hist, rho, count


def _dot(a: Any, b: Any) -> Any:
    """Per image: B x n by B x n -> B."""
    import tensorflow as tf

    return tf.reduce_sum(a * b, axis=-1)


def _two_loop(q: Any, s: Any, y: Any, rho: Any, count: Any) -> Any:
    """H·q per image from its history (HISTORY x B x n), oldest row first;
    empty rows (rho 0) do nothing."""
    import tensorflow as tf

    alphas = []
    for j in reversed(range(HISTORY)):
        a = rho[j] * _dot(s[j], q)
        alphas.append(a)
        q = q - a[:, None] * y[j]
    newest = _dot(s[-1], y[-1]) / tf.maximum(_dot(y[-1], y[-1]), 1e-30)
    q = q * tf.where(count > 0, newest, 1.0)[:, None]
    for j in range(HISTORY):
        b = rho[j] * _dot(y[j], q)
        q = q + (alphas[HISTORY - 1 - j] - b)[:, None] * s[j]
    return q


def _line_search(evaluate: Any, xf: Any, d: Any, slope: Any, f0: Any) -> tuple[Any, ...]:
    """Per image (xf, d: B x n; slope, f0: B), halve its step until the Armijo
    condition holds (at most MAX_BACKTRACKS tries): the step's image, losses and
    gradient, and whether it holds (else they are the last try's, as the host
    version's). An image that has its step keeps it while the others search on
    (the batch is evaluated whole)."""
    import tensorflow as tf

    def trial(alpha: Any) -> tuple[Any, Any, Any]:
        x_new = tf.clip_by_value(xf + alpha[:, None] * d, 0.0, 255.0)
        vals, g_new = evaluate(x_new)
        return x_new, vals, g_new

    def body(j: Any, alpha: Any, done: Any, x_new: Any, vals: Any, g_new: Any) -> Any:
        x_try, vals_try, g_try = trial(alpha)
        ok = vals_try[3] <= f0 + ARMIJO_C * alpha * slope
        x_new = tf.where(done[:, None], x_new, x_try)  # done: its accepted step stays
        g_new = tf.where(done[:, None], g_new, g_try)
        vals = tuple(tf.where(done, v, t) for v, t in zip(vals, vals_try, strict=True))
        alpha = tf.where(done | ok, alpha, alpha * 0.5)
        return j + 1, alpha, done | ok, x_new, vals, g_new

    ones = tf.ones_like(f0)
    x_new, vals, g_new = trial(ones)
    ok = vals[3] <= f0 + ARMIJO_C * slope
    start = (tf.constant(1), tf.where(ok, ones, 0.5 * ones), ok, x_new, vals, g_new)
    _, _, done, x_new, vals, g_new = tf.while_loop(
        lambda j, alpha, done, *_: tf.logical_and(j < MAX_BACKTRACKS,
                                                  tf.logical_not(tf.reduce_all(done))),
        body, start,
    )  # fmt: skip
    return x_new, vals, g_new, done
