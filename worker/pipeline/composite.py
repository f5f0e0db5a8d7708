"""Put the subject back: guided-filter edge, alpha compositing, portrait blur
(the matting edge is worker.pipeline.matting)."""

import cv2
import numpy as np

# Alphas this close to 0 or 1 are snapped, so that pixels far from the edge
# are exactly the photo's (or the painting's), not 99.9% of them.
_SNAP = 1e-3


def refine_mask(mask: np.ndarray, photo: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Make DeepLab's blocky edge follow the photo's edges.

    eps is in the units of the uint8 guide (0..255**2). Only pixels within
    feather_width(radius) of the mask's edge can change."""
    guided = cv2.ximgproc.guidedFilter(
        guide=np.ascontiguousarray(photo, dtype=np.uint8),
        src=mask.astype(np.float32),
        radius=radius,
        eps=eps,
    )
    alpha = np.clip(guided, 0.0, 1.0)
    alpha[alpha < _SNAP] = 0.0
    alpha[alpha > 1.0 - _SNAP] = 1.0
    return alpha


def feather_width(radius: int) -> int:
    """How far from the mask's edge the guided filter reaches: its box windows of
    side 2r+1 are averaged over a second window, so 2r, plus one for rounding."""
    return 2 * radius + 1


def blend(base: np.ndarray, over: np.ndarray, keep_base: np.ndarray) -> np.ndarray:
    """base where keep_base is 1, over where it is 0, mixed in between."""
    a = keep_base[:, :, None].astype(np.float32)
    blended = a * base.astype(np.float32) + (1.0 - a) * over.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def disk_kernel(radius: int) -> np.ndarray:
    """A flat disk, like a lens's out-of-focus highlight (unlike a Gaussian)."""
    side = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)).astype(np.float32)
    return kernel / kernel.sum()


# Past these the blur runs on a reduced copy, and the subject's margin is a
# distance transform: a disk of radius r costs r^2 per pixel, an elliptical
# dilation r per pixel, and at full size they grow with the photo's side (a
# 50 MP banner's 1094 px blur took about an hour). The blur is a low-pass
# filter, so its reduced copy loses nothing a person sees.
EXACT_BLUR_RADIUS = 24
EXACT_MARGIN = 16


def portrait_blur(
    photo: np.ndarray, alpha: np.ndarray, radius: int, margin: int = 6,
    front: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Blur the background with the subject cut out of the blur (normalized
    convolution), so no halo of subject colour spreads around it. `front`:
    the subject's own colours under a fractional alpha (default the photo's)."""
    # Exclude the whole soft edge and `margin` px beyond it: a segmentation
    # mask often stops short of the true edge, and those pixels are subject.
    weight = np.float32(1) - near_subject(alpha, margin).astype(np.float32)
    numerator, denominator = _normalized_blur(photo.astype(np.float32) * weight[:, :, None],
                                              weight, radius)  # fmt: skip
    blurred = np.where(
        denominator > 1e-3,
        numerator / np.maximum(denominator, 1e-3),
        photo.astype(np.float32),  # deep inside the subject: alpha is 1 there anyway
    )
    a = alpha[:, :, None].astype(np.float32)
    front = photo if front is None else front
    out = a * front.astype(np.float32) + (1.0 - a) * blurred
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def near_subject(alpha: np.ndarray, margin: int) -> np.ndarray:
    """uint8 1 within `margin` px of any pixel of the subject (alpha > 0)."""
    subject = (alpha > 0).astype(np.uint8)
    if margin <= EXACT_MARGIN:
        return cv2.dilate(
            subject, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
        )
    distance = cv2.distanceTransform(1 - subject, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (distance <= margin).astype(np.uint8)


def blur_scale(radius: int) -> int:
    """The reduction the blur of `radius` runs at: 1 (exact) up to EXACT_BLUR_RADIUS."""
    return 1 if radius <= EXACT_BLUR_RADIUS else -(-radius // (EXACT_BLUR_RADIUS // 2))


def _normalized_blur(image: np.ndarray, weight: np.ndarray,
                     radius: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The disk blur of image and weight, at full size: exact for small radii,
    else on the means of k x k blocks (k = blur_scale), enlarged back. The
    blocks start at row and column 0 and the edge is padded with weight 0 (no
    data), so strips whose first row is a multiple of k see the whole
    picture's blocks (worker.pipeline.full_resolution aligns them)."""
    k = blur_scale(radius)
    if k == 1:
        kernel = disk_kernel(radius)
        return cv2.filter2D(image, -1, kernel), cv2.filter2D(weight, -1, kernel)[:, :, None]
    h, w = weight.shape
    rows, cols = -(-h // k), -(-w // k)
    pad = ((0, rows * k - h), (0, cols * k - w))
    kernel = disk_kernel(max(1, round(radius / k)))
    out = []
    for x in (image, weight[:, :, None]):
        if pad != ((0, 0), (0, 0)):  # zeros: weight 0, so no data there (a copy: only then)
            x = np.pad(x, (*pad, (0, 0)))
        blocks = x.reshape(rows, k, cols, k, x.shape[2]).mean(axis=(1, 3), dtype=np.float32)
        blurred = cv2.filter2D(blocks.astype(np.float32), -1, kernel).reshape(rows, cols, -1)
        big = cv2.resize(blurred, (cols * k, rows * k), interpolation=cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(big.reshape(rows * k, cols * k, -1)[:h, :w]))
    return out[0], out[1]
