"""Synthetic hair and fur with a known alpha, for the edge tests and
benchmarks.matting: a head (an ellipse) with strands drawn at 4x and reduced,
so a strand narrower than a pixel has a fractional alpha, composited over a
photo; the mask is what DeepLab would give (the dense part, blocky)."""

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

SUPER = 4  # strands are drawn at 4x and area-averaged: sub-pixel widths


@dataclass(frozen=True)
class Scene:
    photo: np.ndarray  # uint8 RGB: alpha * fg + (1 - alpha) * bg
    alpha: np.ndarray  # float32 ground truth
    fg: np.ndarray  # float32 RGB 0..255, the hair's own colour
    mask: np.ndarray  # float32, DeepLab-like: blocky and without the strands


def hair_scene(
    background: np.ndarray, kind: str = "hair", width: float = 1.0, seed: int = 0
) -> Scene:
    """`kind` hair: long strands, fur: short dense ones; `width` in px."""
    rng = np.random.default_rng(seed)
    h, w = background.shape[:2]
    big = np.zeros((h * SUPER, w * SUPER), np.uint8)
    centre = (w * SUPER // 2, int(h * SUPER * 0.62))
    axes = (int(w * SUPER * 0.26), int(h * SUPER * 0.3))
    cv2.ellipse(big, centre, axes, 0, 0, 360, 255, -1)
    count, length = (250, 0.1) if kind == "hair" else (900, 0.05)
    thick = max(1, round(width * SUPER))
    for _ in range(count):
        _strand(big, rng, centre, axes, length * min(h, w) * SUPER, thick)
    alpha = cv2.resize(big.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    fg = _hair_colour(rng, (h, w), kind)
    a = alpha[..., None]
    photo = np.clip(np.rint(a * fg + (1 - a) * background), 0, 255).astype(np.uint8)
    return Scene(photo, alpha, fg, deeplab_like(alpha))


def _strand(
    big: np.ndarray, rng: np.random.Generator, centre: tuple[int, int],
    axes: tuple[int, int], length: float, thick: int,
) -> None:  # fmt: skip
    """A strand from the ellipse's rim outward, curving a little (upper half:
    hair grows on top and at the sides)."""
    t = rng.uniform(np.pi * 0.9, np.pi * 2.1)
    x = centre[0] + axes[0] * np.cos(t) * 0.97
    y = centre[1] + axes[1] * np.sin(t) * 0.97
    heading = t + rng.normal(0, 0.35)
    points = [(x, y)]
    steps = 12
    reach = length * rng.uniform(0.5, 1.0)
    for _ in range(steps):
        heading += rng.normal(0, 0.12)
        x += np.cos(heading) * reach / steps
        y += np.sin(heading) * reach / steps
        points.append((x, y))
    cv2.polylines(big, [np.array(points, np.int32)], False, 255, thick, cv2.LINE_AA)


def _hair_colour(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    """A smooth field around one hair colour (dark brown, or light fur)."""
    base = np.array([70, 45, 30] if kind == "hair" else [215, 190, 150], np.float32)
    noise = cv2.resize(rng.normal(0, 18, (8, 8, 3)).astype(np.float32), shape[::-1],
                       interpolation=cv2.INTER_CUBIC)  # fmt: skip
    return np.clip(base + noise, 0, 255)


def deeplab_like(alpha: np.ndarray) -> np.ndarray:
    """What a segmenter sees: the dense part (alpha smoothed, thresholded),
    at 1/8 of the size, upsampled bilinearly like subject_mask."""
    h, w = alpha.shape
    dense = (cv2.GaussianBlur(alpha, (0, 0), 2.0) >= 0.5).astype(np.float32)
    coarse = cv2.resize(dense, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


def sad(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Sum of absolute differences, in thousands (alphamatting.com's unit)."""
    return float(np.abs(alpha.astype(np.float64) - truth).sum() / 1000.0)


def gradient_error(alpha: np.ndarray, truth: np.ndarray, sigma: float = 1.4) -> float:
    """Rhemann et al.'s gradient error, in thousands: squared differences of
    the gradient magnitudes (first-order Gaussian derivatives, sigma 1.4)."""

    def magnitude(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        gx = ndimage.gaussian_filter(a, sigma, order=(0, 1))
        gy = ndimage.gaussian_filter(a, sigma, order=(1, 0))
        return np.hypot(gx, gy)

    return float(((magnitude(alpha) - magnitude(truth)) ** 2).sum() / 1000.0)


def bleed(
    scene: Scene, alpha: np.ndarray, fg: np.ndarray, over: np.ndarray, where: np.ndarray
) -> float:
    """Mean colour error (levels) of the subject composited over a new
    background, against the truth, on the pixels `where` (boolean): the old
    background carried into the new picture shows here."""
    a, t = alpha[..., None].astype(np.float32), scene.alpha[..., None]
    made = a * fg.astype(np.float32) + (1 - a) * over
    truth = t * scene.fg + (1 - t) * over
    return float(np.abs(made - truth)[where].mean())
