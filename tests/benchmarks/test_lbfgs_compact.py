"""The compact-form L-BFGS probe (benchmarks.lbfgs_compact) computes the same
direction as the two-loop recursion with the same first matrix H0 = gamma P:
with the history part full, wrapped around its ring buffer, and empty."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks.lbfgs_compact import CompactHistory, blur_preconditioner

H, W, M = 7, 6, 4
N = H * W * 3


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


@pytest.mark.parametrize("pushed", [2, M, M + 3])
def test_the_compact_form_is_the_two_loop_recursion(pushed: int) -> None:
    rng = np.random.default_rng(pushed)
    blur = blur_preconditioner(H, W, 4.0, 1.5)
    dense = np.stack([blur(tf.constant(e, tf.float32)).numpy() for e in np.eye(N)])
    assert np.allclose(dense, dense.T, atol=1e-6), "P must be symmetric"
    history = CompactHistory(N, M, blur)
    a = rng.normal(size=(N, N))
    hessian = a @ a.T / N + np.eye(N)  # curvature pairs of a convex quadratic
    pairs = []
    for _ in range(pushed):
        s = rng.normal(size=N)
        y = hessian @ s
        pairs.append((s, y))
        history.push(tf.constant(s, tf.float32), tf.constant(y, tf.float32))
    g = rng.normal(size=N)
    got = history.times(tf.constant(g, tf.float32)).numpy()
    want = _two_loop(g, pairs[-M:], lambda v: dense @ v)
    assert np.allclose(got, want, rtol=2e-3, atol=2e-3 * np.abs(want).max()), (got[:5], want[:5])


def test_an_empty_history_is_the_preconditioner() -> None:
    blur = blur_preconditioner(H, W, 4.0, 1.5)
    history = CompactHistory(N, M, blur)
    g = tf.constant(np.random.default_rng(0).normal(size=N), tf.float32)
    assert np.allclose(history.times(g).numpy(), blur(g).numpy(), atol=1e-5)
    history.push(g, g)
    history.reset()
    assert np.allclose(history.times(g).numpy(), blur(g).numpy(), atol=1e-5)


def test_the_perturbed_photo_is_the_photo_plus_noise_far_below_a_level() -> None:
    from benchmarks.lbfgs_compact import perturbed

    photo = np.full((8, 8, 3), 100.0, np.float32)
    assert perturbed(photo, 0.0, 1) is photo
    one, again, other = (perturbed(photo, 0.01, s) for s in (1, 1, 2))
    assert np.array_equal(one, again) and not np.array_equal(one, other), "seeded"
    assert 0.002 < np.abs(one - photo).mean() < 0.02


def test_the_service_road_is_timed_after_its_trace_and_lowers_the_loss() -> None:
    """benchmarks.reach_reference runs the optimizer as the service does: one
    loss per iteration, falling."""
    from benchmarks.reach_reference import service_road
    from tests.conftest import MODELS, PHOTOS, STYLES, read_rgb
    from worker.pipeline.intake import to_working_size
    from worker.pipeline.style_params import StyleParams
    from worker.runtime.model_cache import get_feature_net
    from worker.runtime.settings import Settings

    net = get_feature_net(
        StyleParams(),
        Settings(models_dir=MODELS, allow_download=False),
        "float32",
        "vgg16-hed-bsds500",
    )
    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 64)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), 96)
    losses = list(service_road("lbfgs_adam", 4)(photo, painting, net))
    assert len(losses) == 4 and losses == sorted(losses, reverse=True)
