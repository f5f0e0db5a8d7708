"""lbfgs_adam's L-BFGS (worker.pipeline.lbfgs_compact) computes the same
direction as the two-loop recursion with the same first matrix H0 = gamma P:
with the history part full, wrapped around its ring buffer, and empty; and
the host's preconditioner is the device's."""

import numpy as np
import pytest
import tensorflow as tf

from worker.pipeline import lbfgs_compact as compact

H, W, M = 7, 6, 4
SHAPE = (1, H, W, 3)
N = H * W * 3


def _blur(q):
    return compact._blur(q, tf.constant(SHAPE), tf.constant(compact.gaussian_kernel(compact.SIGMA)))


def _dense() -> np.ndarray:
    return np.stack([_blur(tf.constant(e, tf.float32)).numpy() for e in np.eye(N)])


def _two_loop(g: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]], p) -> np.ndarray:
    """Nocedal and Wright's algorithm 7.4, in float64, H0 = gamma P."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        a = (s @ q) / (s @ y)
        alphas.append(a)
        q -= a * y
    s, y = pairs[-1]
    gamma = (s @ y) / (y @ p(y))
    r = gamma * p(q)
    for (s, y), a in zip(pairs, reversed(alphas), strict=True):
        r += (a - (y @ r) / (s @ y)) * s
    return r


def test_the_preconditioner_is_symmetric_positive_definite_and_the_hosts() -> None:
    dense = _dense()
    assert np.allclose(dense, dense.T, atol=1e-6), "P must be symmetric"
    assert np.linalg.eigvalsh((dense + dense.T) / 2).min() > 0.5
    host = compact.host_preconditioner(SHAPE)
    q = np.random.default_rng(1).normal(size=N)
    assert np.allclose(host(q), dense @ q, atol=1e-4)
    assert not np.allclose(dense, np.eye(N)), "a blur, not the identity"


@pytest.mark.parametrize("pushed", [2, M, M + 3])
def test_the_compact_form_is_the_two_loop_recursion(pushed: int) -> None:
    rng = np.random.default_rng(pushed)
    dense = _dense()
    history = compact.new_history(N, M)
    a = rng.normal(size=(N, N))
    hessian = a @ a.T / N + np.eye(N)  # curvature pairs of a convex quadratic
    pairs = []
    for _ in range(pushed):
        s = rng.normal(size=N)
        y = hessian @ s
        pairs.append((s, y))
        y32 = tf.constant(y, tf.float32)
        compact._push(history, tf.constant(s, tf.float32), y32, _blur(y32))
    g = tf.constant(rng.normal(size=N), tf.float32)
    got = compact._times(history, g, _blur(g)).numpy()
    want = _two_loop(g.numpy().astype(np.float64), pairs[-M:], lambda v: dense @ v)
    assert np.allclose(got, want, rtol=2e-3, atol=2e-3 * np.abs(want).max()), (got[:5], want[:5])


def test_a_forgotten_history_is_the_preconditioner() -> None:
    """count 0 (the start, or a reset after an ascent direction): H0 = P."""
    history = compact.new_history(N, M)
    g = tf.constant(np.random.default_rng(0).normal(size=N), tf.float32)
    compact._push(history, g, g, _blur(g))
    history.count.assign(0)
    compact._push(history, 2 * g, g, _blur(g))  # one pair: gamma P g plus its correction
    one = compact._times(history, g, _blur(g)).numpy()
    want = _two_loop(g.numpy().astype(np.float64), [(2 * g.numpy(), g.numpy())],
                     lambda v: _dense() @ v)  # fmt: skip
    assert np.allclose(one, want, rtol=2e-3, atol=2e-3 * np.abs(want).max())
