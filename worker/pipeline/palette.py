"""The photo recoloured to the paintings' palette: a start for the optimization.

A linear colour transfer (the Monge-Kantorovich map between two Gaussians, as
in Gatys et al., "Controlling perceptual factors in neural style transfer"):
the photo's pixels are moved so that their mean and covariance in RGB are the
paintings'. The shapes are the photo's; only its colours change. Starting
there removes the colour part of the style loss before the first iteration,
which the L-BFGS otherwise spends its first iterations on
(benchmarks.quality_pairs, README "Four more roads").
"""

from collections.abc import Sequence

import numpy as np

RIDGE = 1e-3  # keeps a flat (one-colour) image's covariance invertible


def palette_start(photo: np.ndarray, paintings: Sequence[tuple[np.ndarray, float]]) -> np.ndarray:
    """photo (h x w x 3, 0..255) with the colour mean and covariance of the
    paintings' blend (each painting's pixels weighted by its blend weight);
    float32, clipped to 0..255."""
    mean, cov = _blend_stats(paintings)
    x = photo.reshape(-1, 3).astype(np.float64)
    mx = x.mean(axis=0)
    cx = np.cov(x.T) + RIDGE * np.eye(3)
    half = _sqrtm(cx)
    inv_half = np.linalg.inv(half)
    transfer = inv_half @ _sqrtm(half @ cov @ half) @ inv_half
    out = (x - mx) @ transfer.T + mean
    return np.clip(out, 0.0, 255.0).reshape(photo.shape).astype(np.float32)


def _blend_stats(paintings: Sequence[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the weighted mixture of the paintings' pixels."""
    weights = np.array([max(float(w), 0.0) for _, w in paintings])
    if weights.sum() <= 0:  # all weights 0: the paintings count alike
        weights = np.ones(len(paintings))
    weights = weights / weights.sum()
    means, seconds = [], []
    for painting, _ in paintings:
        y = painting.reshape(-1, 3).astype(np.float64)
        means.append(y.mean(axis=0))
        seconds.append(y.T @ y / len(y))  # E[y y^T]
    mean = sum(w * m for w, m in zip(weights, means, strict=True))
    second = sum(w * s for w, s in zip(weights, seconds, strict=True))
    return mean, second - np.outer(mean, mean) + RIDGE * np.eye(3)


def _sqrtm(c: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix."""
    values, vectors = np.linalg.eigh(c)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
