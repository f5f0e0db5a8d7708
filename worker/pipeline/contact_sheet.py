"""A contact sheet: the pictures of one job side by side, labelled."""

from collections.abc import Sequence

import cv2
import numpy as np

LABEL_HEIGHT = 28


def contact_sheet(panels: Sequence[tuple[str, np.ndarray]], height: int = 256) -> np.ndarray:
    """(label, image) pairs -> one RGB uint8 strip; masks (2-D, 0..1 or uint8) shown grey."""
    tiles = [_tile(label, image, height) for label, image in panels]
    gap = np.full((height + LABEL_HEIGHT, 4, 3), 255, np.uint8)
    strip: list[np.ndarray] = []
    for tile in tiles:
        strip += [tile, gap]
    return np.concatenate(strip[:-1], axis=1)


def _tile(label: str, image: np.ndarray, height: int) -> np.ndarray:
    rgb = _as_rgb(image)
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    band = np.full((LABEL_HEIGHT, width, 3), 255, np.uint8)
    cv2.putText(band, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([band, resized], axis=0)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        grey = image if image.dtype == np.uint8 else np.clip(image * 255, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return image
