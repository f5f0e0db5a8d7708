"""Results at the photo's own size (12, 48 megapixels) from a working-size
stylization, in bounded memory.

The stylized layer is upsampled edge-aware (guided upsampling, as in He & Sun's
fast guided filter: a local linear model of the stylized image in the photo's
luminance, fitted at working size and applied to the full-size photo; what the
model does not explain, the painting's own texture, is added back upsampled
bicubically, so strokes are never softer than a plain resize), the
mask is upsampled and refined by the guided filter at full size, and the
mode's result is built strip by strip: a 48 MP photo never has more than one
strip of float images alive. Outside the edge band the subject is the upload,
bit for bit.

The matting edge is solved once for the whole picture at no more than
MAX_SOLVE_SIDE px and brought to size the same way: alpha as a local linear
model of the photo's luminance (fitted on the small matte, applied to each
full-size strip), the colours under it upsampled.
"""

import cv2
import numpy as np

from worker.pipeline.composite import blur_scale
from worker.pipeline.matting import apply_upsampler, fit_upsampler, luma
from worker.pipeline.stages import (
    REFERENCE_SIDE,
    CompositeParams,
    band_half_width,
    composite_stage,
    edge_reach,
    mode_of,
)

STRIP_ROWS = 512
REMAP_MAX_SIDE = 16384
# The stylized texture is kept where the photo is flat: a large eps makes the
# local model mostly the stylized image's own mean, a small one follows the photo.
UPSAMPLE_RADIUS, UPSAMPLE_EPS = 2, 0.02


def composite_full(
    photo: np.ndarray, working: np.ndarray, mask: np.ndarray, stylized: np.ndarray | None,
    mode_name: str, params: CompositeParams, strip_rows: int = STRIP_ROWS,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(alpha as uint8, result) at the size of `photo`; `working`, `mask` and
    `stylized` are at working size."""
    mode = mode_of(mode_name)
    h, w = photo.shape[:2]
    side = max(h, w)
    scale = side / REFERENCE_SIDE
    coeffs = None if stylized is None else _upsampling_model(working, stylized)
    matte = None  # the matting is solved once for the whole picture, at <= 1024 px
    if mode.segments and params.edge == "matting":
        matte = fit_upsampler(photo, mask, band_half_width(params, side))
    # Rows of context a strip needs: the guided filter's reach; the matte is
    # applied pixel by pixel (its wide band would only cost rows for nothing).
    halo = 2 if matte is not None else edge_reach(params, side) + 2
    if mode.name == "portrait":
        blur = max(1, round(params.blur_radius * scale))
        halo += 2 * blur + 2
        # A wide blur runs on k x k blocks from row 0 (composite.blur_scale):
        # strips and their context start on a block, so they see the whole's.
        k = blur_scale(blur)
        halo, strip_rows = -(-halo // k) * k, -(-strip_rows // k) * k
    result = np.empty_like(photo)
    alpha8 = np.empty((h, w), np.uint8)
    for y0 in range(0, h, strip_rows):
        y1 = min(h, y0 + strip_rows)
        top, bottom = max(0, y0 - halo), min(h, y1 + halo)
        rows = photo[top:bottom]
        strip_mask = _resize_rows(mask, (h, w), top, bottom, cv2.INTER_LINEAR)
        strip_stylized = None if coeffs is None else _apply_model(coeffs, (h, w), top, bottom, rows)
        edge = None
        if matte is not None:
            strip = [_resize_rows(m, (h, w), top, bottom, cv2.INTER_LINEAR) for m in matte]
            edge = apply_upsampler(strip, rows)
        alpha, out = composite_stage(rows, strip_mask, strip_stylized, mode_name, params, side,
                                     edge)  # fmt: skip
        result[y0:y1] = out[y0 - top : y1 - top]
        alpha8[y0:y1] = np.rint(alpha[y0 - top : y1 - top] * 255).astype(np.uint8)
    return alpha8, result


Model = tuple[np.ndarray, np.ndarray, np.ndarray]


def upsample_stylized(working: np.ndarray, stylized: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """`stylized` (at the size of `working`) brought to the size of `photo`
    as composite_full brings it, in one piece (worker.pipeline.paint_full)."""
    h, w = photo.shape[:2]
    return _apply_model(_upsampling_model(working, stylized), (h, w), 0, h, photo)


def _upsampling_model(working: np.ndarray, stylized: np.ndarray) -> Model:
    """Per channel a and b at working size, with stylized ~ a * luma + b
    locally, and the residual the model leaves."""
    guide, target = luma(working), stylized.astype(np.float32) / 255.0
    size = (2 * UPSAMPLE_RADIUS + 1,) * 2

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.blur(x, size, borderType=cv2.BORDER_REFLECT)

    mean_i, var_i = box(guide), box(guide * guide) - box(guide) ** 2
    a = np.empty_like(target)
    b = np.empty_like(target)
    for c in range(3):
        mean_p = box(target[..., c])
        cov = box(guide * target[..., c]) - mean_i * mean_p
        a[..., c] = cov / (var_i + UPSAMPLE_EPS)
        b[..., c] = mean_p - a[..., c] * mean_i
    a, b = box(a), box(b)
    return a, b, target - (a * guide[..., None] + b)


def _resize_rows(
    image: np.ndarray, full: tuple[int, int], top: int, bottom: int, interpolation: int
) -> np.ndarray:
    """Rows top..bottom of `image` resized to the full size, without the rest."""
    h, w = full
    sy, sx = image.shape[0] / h, image.shape[1] / w
    ys = (np.arange(top, bottom, dtype=np.float32) + 0.5) * sy - 0.5
    xs = (np.arange(w, dtype=np.float32) + 0.5) * sx - 0.5
    # cv2.remap takes maps under 32767 px a side (SHRT_MAX): a 1:32 banner of
    # 50 MP is 40000 px wide. Pieces of columns, each with its own map.
    pieces = []
    for x0 in range(0, w, REMAP_MAX_SIDE):
        map_x, map_y = np.meshgrid(xs[x0 : x0 + REMAP_MAX_SIDE], ys)
        pieces.append(cv2.remap(image, map_x, map_y, interpolation,
                                borderMode=cv2.BORDER_REPLICATE))  # fmt: skip
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)


def _apply_model(
    model: Model, full: tuple[int, int], top: int, bottom: int, rows: np.ndarray
) -> np.ndarray:
    a, b = (_resize_rows(m, full, top, bottom, cv2.INTER_LINEAR) for m in model[:2])
    residual = _resize_rows(model[2], full, top, bottom, cv2.INTER_CUBIC)
    out = a * luma(rows)[..., None] + b + residual
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
