"""lbfgs_adam's L-BFGS: the compact form (Byrd, Nocedal and Schnabel 1994)
with a low-frequency first matrix, on the device.

Why not worker.pipeline.lbfgs_device's two-loop recursion: with the longer
history this road needs (30 pairs), the two-loop's 4 x 30 small vector
operations cost 6.4 ms a call at 128 px on 2 vCPUs, and its history is copied
twice an iteration. Here the history lives in tf.Variable ring buffers with
P y beside y, and the small matrices S'Y (a column an iteration) and Y'PY are
kept up to date, so a direction is four matrix-vector products over the
history and one blur, whatever its length.

The first matrix is H0 = gamma P with P = I + BLUR G (G a Gaussian blur of
SIGMA px): low frequencies move first. With it, history 30 and Adam after
ADAM_AFTER iterations, all 6 quality pairs reach the classic recipe's loss
(README, "The low-frequency preconditioner again"). The host version with the
same first matrix is worker.pipeline.lbfgs (precondition=host_preconditioner).
"""

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from worker.pipeline.lbfgs_device import LOSS_KEYS, _line_search

HISTORY = 30
BLUR = 4.0
SIGMA = 2.0


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The 1-D kernel both versions blur with (3 sigma each side, sum 1)."""
    r = int(3 * sigma + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float32)
    k = np.exp(-t * t / (2 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def host_preconditioner(shape: tuple[int, ...], strength: float = BLUR,
                        sigma: float = SIGMA) -> Any:  # fmt: skip
    """q -> (I + strength G) q on a flat B x h x w x 3 float64 vector (zero
    padding, as the device's SAME convolution): symmetric, positive definite."""
    import cv2

    k = gaussian_kernel(sigma).astype(np.float64)

    def apply(q: np.ndarray) -> np.ndarray:
        images = q.reshape(shape)
        blurred = np.stack([cv2.sepFilter2D(im, -1, k, k, borderType=cv2.BORDER_CONSTANT)
                            for im in images])  # fmt: skip
        return q + strength * blurred.ravel()

    return apply


class History(NamedTuple):
    """The last m pairs (s, y) in ring buffers (slot = pair count mod m)."""

    s: Any  # m x n
    y: Any
    py: Any  # P y
    syt: Any  # syt[j, i] = s_i . y_j: row j is pair j's column of S'Y
    ypy: Any  # ypy[i, j] = y_i . P y_j (symmetric)
    count: Any  # pairs pushed since the last reset


def new_history(n: int, m: int = HISTORY) -> History:
    import tensorflow as tf

    def zeros(*shape: int) -> Any:
        return tf.Variable(tf.zeros(shape), trainable=False)

    return History(zeros(m, n), zeros(m, n), zeros(m, n), zeros(m, m), zeros(m, m),
                   tf.Variable(0, trainable=False))  # fmt: skip


def compact_lbfgs_steps(
    images: np.ndarray, objective: Any, targets: Any, first_step: float, steps: int,
    every: int, xla: bool = False,
) -> Iterator[tuple[int, dict[str, np.ndarray], np.ndarray]]:  # fmt: skip
    """As lbfgs_device.device_lbfgs_steps: yield (iterations run, per-image
    losses of the returned images, images) every `every` iterations."""
    import tensorflow as tf

    chunk = _chunk_for(objective, xla)
    args = targets.args()
    kernel = tf.constant(gaussian_kernel(SIGMA))
    x = tf.constant(images, tf.float32)
    losses, g = objective.value_and_grad(x, *args)
    history = new_history(int(np.prod(images.shape)))  # this run's: no state between jobs
    values = tuple(tf.cast(losses[k], tf.float32) for k in LOSS_KEYS)
    done = 0
    while done < steps:
        k = min(every, steps - done)
        x, g, values = chunk(x, g, values, *history, tf.constant(k, tf.int32),
                             tf.constant(first_step, tf.float32), kernel, *args)  # fmt: skip
        done += k
        yield k, {key: v.numpy() for key, v in zip(LOSS_KEYS, values, strict=True)}, x.numpy()


def _chunk_for(objective: Any, xla: bool) -> Any:
    """Compiled once per objective and XLA flag; a new run's Variables of the
    same shape do not retrace it."""
    import tensorflow as tf

    key = ("lbfgs_compact", xla)
    if key not in objective.compiled:
        objective.compiled[key] = tf.function(
            lambda *a: _run(objective, *a), jit_compile=xla, reduce_retracing=True
        )
    return objective.compiled[key]


def _run(objective: Any, x: Any, g: Any, values: Any, s: Any, y: Any, py: Any, syt: Any,
         ypy: Any, count: Any, k: Any, first_step: Any, kernel: Any,
         *targets: Any) -> tuple[Any, ...]:  # fmt: skip
    """k iterations; the history's Variables carry over to the next call."""
    import tensorflow as tf

    shape = tf.shape(x)
    history = History(s, y, py, syt, ypy, count)

    def precondition(q: Any) -> Any:
        return _blur(q, shape, kernel)

    def evaluate(flat: Any) -> tuple[tuple[Any, ...], Any]:
        losses, grad = objective.value_and_grad(tf.reshape(flat, shape), *targets)
        return tuple(tf.cast(losses[n], tf.float32) for n in LOSS_KEYS), tf.reshape(grad, [-1])

    def iteration(i: Any, xf: Any, gf: Any, pg: Any, vals: Any) -> Any:
        # No curvature yet (or forgotten): the largest pixel moves first_step,
        # low frequencies first.
        first = -pg * (first_step / tf.maximum(tf.reduce_max(tf.abs(pg)), 1e-12))
        d = tf.cond(history.count > 0, lambda: -_times(history, gf, pg), lambda: first)
        reset = tf.tensordot(gf, d, 1) >= 0  # not a descent direction: forget the history
        history.count.assign(tf.where(reset, 0, history.count))
        d = tf.where(reset, first, d)
        x_new, new_vals, g_new = _line_search(evaluate, xf, d, tf.tensordot(gf, d, 1),
                                              tf.reduce_sum(vals[3]))  # fmt: skip
        step, change, pg_new = x_new - xf, g_new - gf, precondition(g_new)

        def push() -> Any:  # P y = P g_new - P g: one blur an iteration, not two
            _push(history, step, change, pg_new - pg)
            return tf.constant(True)

        tf.cond(tf.tensordot(step, change, 1) > 1e-10, push, lambda: tf.constant(False))
        return i + 1, x_new, g_new, pg_new, new_vals

    flat = tf.reshape(g, [-1])
    loop = (tf.constant(0), tf.reshape(x, [-1]), flat, precondition(flat), tuple(values))
    _, xf, gf, _, vals = tf.while_loop(lambda i, *_: i < k, iteration, loop)
    return tf.reshape(xf, shape), tf.reshape(gf, shape), vals


def _blur(q: Any, shape: Any, kernel: Any) -> Any:
    """(I + BLUR G) q, q flat over a B x h x w x 3 batch (each image on its own)."""
    import tensorflow as tf

    taps = tf.shape(kernel)[0]
    kx = tf.tile(tf.reshape(kernel, [1, taps, 1, 1]), [1, 1, 3, 1])
    ky = tf.tile(tf.reshape(kernel, [taps, 1, 1, 1]), [1, 1, 3, 1])
    images = tf.reshape(q, shape)
    blurred = tf.nn.depthwise_conv2d(images, kx, [1, 1, 1, 1], "SAME")
    blurred = tf.nn.depthwise_conv2d(blurred, ky, [1, 1, 1, 1], "SAME")
    return q + BLUR * tf.reshape(blurred, [-1])


def _push(h: History, s: Any, y: Any, py: Any) -> None:
    """Pair s, y (and P y) into the next slot, with its row of S'Y and of Y'PY.
    Scatters, not slice assignments: XLA needs no compile-time slot."""
    import tensorflow as tf

    j = tf.reshape(h.count % h.s.shape[0], [1])
    for buffer, row in ((h.s, s), (h.y, y), (h.py, py)):
        buffer.scatter_update(tf.IndexedSlices(row[None], j))
    # R needs s_i . y_j for i older than j: the newest pair's column, kept as a row.
    h.syt.scatter_update(tf.IndexedSlices(tf.linalg.matvec(h.s, y)[None], j))
    cross = tf.linalg.matvec(h.y, py)
    rows = tf.tensor_scatter_nd_update(h.ypy, j[:, None], cross[None])
    h.ypy.assign(tf.tensor_scatter_nd_update(tf.transpose(rows), j[:, None], cross[None]))
    h.count.assign_add(1)


def _times(h: History, g: Any, pg: Any) -> Any:
    """H g for the history's inverse-Hessian estimate, H0 = gamma P with gamma
    from the newest pair (pg = P g). Slots are put oldest first by gathers (no
    compile-time index, for XLA); empty slots are masked out."""
    import tensorflow as tf

    m, c = int(h.s.shape[0]), h.count.read_value()
    held = tf.minimum(c, m)
    start = tf.where(c < m, 0, c % m)
    order = (start + tf.range(m)) % m  # slot of the i-th oldest pair
    back = (tf.range(m) - start) % m  # age rank of each slot
    valid = tf.cast(tf.range(m) < held, tf.float32)
    both = valid[:, None] * valid[None, :]
    a = tf.gather(tf.linalg.matvec(h.s, g), order) * valid
    b = tf.gather(tf.linalg.matvec(h.py, g), order) * valid
    sy = tf.gather(tf.gather(tf.transpose(h.syt), order), order, axis=1) * both
    ypy = tf.gather(tf.gather(h.ypy, order), order, axis=1) * both
    r = tf.linalg.band_part(sy, 0, -1) + tf.linalg.diag(1.0 - valid)
    newest = (c - 1) % m
    gamma = h.syt[newest, newest] / tf.maximum(h.ypy[newest, newest], 1e-30)
    p = tf.linalg.triangular_solve(r, a[:, None], lower=False)[:, 0]
    t = tf.linalg.diag_part(sy) * p + gamma * tf.linalg.matvec(ypy, p) - gamma * b
    u = tf.linalg.triangular_solve(r, t[:, None], lower=False, adjoint=True)[:, 0]
    u, p = tf.gather(u * valid, back), tf.gather(p * valid, back)
    return (gamma * pg + tf.linalg.matvec(h.s, u, transpose_a=True)
            - gamma * tf.linalg.matvec(h.py, p, transpose_a=True))  # fmt: skip
