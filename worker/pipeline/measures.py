"""Numbers a person would check on a stylized picture: how close its texture
is to a painting, how much of the photo's shapes it kept, how big its strokes
are. Used by the tests and the benchmarks."""

from typing import Any

import cv2
import numpy as np

from worker.pipeline.features import FeatureNet


def _features(net: FeatureNet, image: np.ndarray) -> dict[str, Any]:
    import tensorflow as tf

    return net(tf.constant(image[None].astype(np.float32)))


def _gram(feature: Any, mask: np.ndarray | None = None) -> np.ndarray:
    """The Gram matrix (of the region where `mask` is 1, as the optimization's)."""
    import tensorflow as tf

    from worker.pipeline.objective import gram, masked_gram

    if mask is None:
        return np.asarray(gram(feature)[0], np.float64)
    regions = tf.constant(mask[None].astype(np.float32))
    return np.asarray(masked_gram(feature, regions)[0, 0], np.float64)


def style_distance(
    net: FeatureNet, image: np.ndarray, painting: np.ndarray, layers: tuple[str, ...],
    mask: np.ndarray | None = None,
) -> float:  # fmt: skip
    """Mean squared Gram difference over `layers` (the Gatys style statistic);
    with a mask, the image's statistics are taken inside it only."""
    mine, theirs = _features(net, image), _features(net, painting)
    return float(np.mean([np.mean((_gram(mine[n], mask) - _gram(theirs[n])) ** 2)
                          for n in layers]))  # fmt: skip


def content_distance(net: FeatureNet, image: np.ndarray, photo: np.ndarray, layer: str) -> float:
    """Mean squared difference of the content layer: 0 for the photo itself."""
    a, b = _features(net, image)[layer], _features(net, photo)[layer]
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def stroke_frequency(image: np.ndarray) -> float:
    """The power-weighted mean spatial frequency (cycles per pixel) of the
    picture's texture: larger strokes give a lower number."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    grey -= grey.mean()
    window = np.outer(np.hanning(grey.shape[0]), np.hanning(grey.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(grey.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(grey.shape[1]))[None, :]
    radius = np.hypot(fy, fx)
    keep = radius > 1.5 / max(grey.shape)  # leave out the picture's overall shading
    return float((radius[keep] * power[keep]).sum() / power[keep].sum())
