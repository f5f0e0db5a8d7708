"""Soft edges for hair and fur: closed-form matting (Levin, Lischinski & Weiss
2008) in a band around DeepLab's edge, and the subject's own colours there.

DeepLab's mask says where the subject roughly is; its edge is a band of
unknown pixels a few percent of the picture wide, reaching OUTER times as far
out of the mask as into it (strands fly out of a head; its inside is dense).
Alpha there is pulled gently towards 0 the farther it lies outside the mask,
so the wide band keeps the strands and loses the haze a closed-form matte
spreads over a plain background. The trimap makes the band;
the matting Laplacian is built only from the 3x3 windows that touch it and
the linear system has one unknown per band pixel, so time and memory follow
the band's area, not the picture's. Past MAX_SOLVE_SIDE the matte is solved on
a downscaled copy and brought back to size by a guided linear model of the
photo (He & Sun's fast guided filter), so a 12 MP photo costs about what a
1024 px one does.

Where alpha is fractional the photo mixes the subject with the old
background; compositing the photo there would carry that background into the
new picture (a halo). The foreground and background colours are estimated in
the band (pymatting's multi-level estimate_foreground_ml) and composited instead.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse

MAX_SOLVE_SIDE = 1024
# The upsampling model: a small eps so alpha follows the strands' luminance.
UPSAMPLE_RADIUS, UPSAMPLE_EPS = 1, 1e-4
# Levin's regularization. pymatting's 1e-7 fits alpha to every colour
# variation in a window, so where a strand is fainter than the background's
# texture (0.5 px hair, alpha at most ~0.5) the texture became false strands
# (gradient error 22% above the guided filter's) and a wrong mask's edge over
# a busy background (the flag beside Grace Hopper) became jagged patches.
# Measured over benchmarks.matting's 24 cases (gradient error / the guided
# filter's, median and worst): 1e-7 0.56 / 1.23, 1e-5 0.43 / 0.85, 1e-4
# 0.43 / 0.81, 3e-4 0.47 / 0.82, 1e-3 (thin cases only) worse again.
EPSILON = 1e-4
# The band reaches OUTER half-widths out of the mask (1 into it), and alpha
# outside the mask is pulled towards 0 with a weight of PRIOR per half-width
# of distance. A band of 1 half-width out cut every strand longer than it
# (over a plain background half of the worst case's error was strands past
# it); a wide band alone spread a haze of alpha over the background and
# turned a textured one (a parrot's feathers) into false fur. Gradient error
# / the guided filter's over benchmarks.matting's 24 cases, worst and median:
# OUTER 1 0.81 / 0.43; 2, no pull 1.25 / 0.49; 2, PRIOR 0.01 0.62 / 0.37;
# 2.5, PRIOR 0.01 0.58 / 0.38 (taken; on 36 cases of other strands and
# backgrounds 0.58 / 0.35, against 0.84 / 0.42 before); 2.5, PRIOR 0.02
# 0.62 / 0.37; 2.5, PRIOR 0.005 0.72 / 0.41; a pull growing with the
# distance's square 0.66 / 0.38.
OUTER, PRIOR = 2.5, 0.01
# In every edge's and picture's key: bump when the same mask gives another matte.
# 2: EPSILON 1e-4 (was 1e-7). 3: the band OUTER wide outward, the pull to 0.
MATTE_VERSION = 3
CG_TOLERANCE = 1e-6
CHUNK = 16384  # windows per block of the Laplacian (bounds the build's memory)
_SNAP = 1e-3  # as the guided filter's: alphas this close to 0 or 1 are exact


@dataclass(frozen=True)
class Edge:
    """The subject's alpha and the colours to composite under it: the
    subject's (`fg`) and the old background's (`bg`). Both are the photo's
    own pixels wherever alpha is exactly 1 (fg) or exactly 0 (bg)."""

    alpha: np.ndarray  # float32 0..1
    fg: np.ndarray  # uint8 RGB
    bg: np.ndarray  # uint8 RGB


def outer_width(half_width: int) -> int:
    """How far the band reaches out of the mask (px)."""
    return round(half_width * OUTER)


def trimap(mask: np.ndarray, half_width: int, outer: int | None = None) -> np.ndarray:
    """float64 trimap: 1 sure subject, 0 sure background, 0.5 the band from
    `half_width` px inside the mask's 0.5 edge to `outer` (default the
    same) px outside it."""
    hard = (mask >= 0.5).astype(np.uint8)
    sure_fg = cv2.erode(hard, _disc(half_width), borderType=cv2.BORDER_REPLICATE)
    reach = half_width if outer is None else outer
    maybe = cv2.dilate(hard, _disc(reach), borderType=cv2.BORDER_REPLICATE)
    tri = np.where(maybe > 0, 0.5, 0.0)
    tri[sure_fg > 0] = 1.0
    return tri


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def background_pull(mask: np.ndarray, half_width: int) -> np.ndarray:
    """Per pixel, the weight pulling alpha to 0: PRIOR per half-width of
    distance outside the mask's 0.5 edge, none inside it."""
    outside = (mask < 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (PRIOR / half_width) * distance.astype(np.float64)


def solve_alpha(image: np.ndarray, tri: np.ndarray, pull: np.ndarray | None = None) -> np.ndarray:
    """Closed-form alpha (float32) with the trimap's known pixels fixed; only
    the band's pixels are unknowns. `image` is float64 RGB in 0..1. `pull`
    (per pixel, default none) adds pull * alpha^2 to the matting energy: a
    prior of background, strong where the colours say little."""
    from pymatting.solver.cg import cg

    unknown = (tri > 0.0) & (tri < 1.0)
    alpha = tri.astype(np.float32).copy()
    if not unknown.any():
        return alpha
    lap = _band_laplacian(image, unknown)
    u = np.flatnonzero(unknown)
    k = np.flatnonzero(~unknown)
    rows = lap[u]
    lap_u, coupling = rows[:, u].tocsc(), rows[:, k]
    if pull is not None:
        lap_u = (lap_u + scipy.sparse.diags(pull.ravel()[u])).tocsc()
    rhs = -coupling @ (tri.ravel()[k] >= 1.0).astype(np.float64)
    x = cg(lap_u, rhs, M=_preconditioner(lap_u), rtol=CG_TOLERANCE)
    alpha.ravel()[u] = np.clip(x, 0.0, 1.0)
    return _snap(alpha)


def _preconditioner(lap_u: scipy.sparse.csc_matrix) -> object:
    """pymatting's thresholded incomplete Cholesky, with room for the factor
    sized to the band: by default it reserves 4 GB of address space. The
    conjugate gradient then takes 3-5 iterations at 512 and 1024 px; with the
    diagonal alone it took 200-330, and was slower on a loaded machine."""
    from pymatting.preconditioner.ichol import ichol

    try:
        return ichol(lap_u, max_nnz=10 * lap_u.nnz + 100_000)
    except ValueError:  # more fill-in than that: pymatting's own bound
        return ichol(lap_u)


def _band_laplacian(image: np.ndarray, unknown: np.ndarray) -> scipy.sparse.csr_matrix:
    """The matting Laplacian summed over the 3x3 windows that hold an unknown
    pixel (the only windows that reach the unknowns' rows), in blocks."""
    h, w = unknown.shape
    n = h * w
    touched = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    touched[[0, -1], :] = False  # windows must fit in the image (as pymatting's)
    touched[:, [0, -1]] = False
    centres = np.flatnonzero(touched)
    offsets = (np.arange(-1, 2)[:, None] * w + np.arange(-1, 2)[None, :]).ravel()
    flat = image.reshape(n, 3)
    total = scipy.sparse.csr_matrix((n, n))
    for start in range(0, len(centres), CHUNK):
        idx = centres[start : start + CHUNK, None] + offsets[None, :]  # windows x 9
        total = total + _window_block(flat[idx], idx, n)
    return total.tocsr()


def _window_block(colours: np.ndarray, idx: np.ndarray, n: int) -> scipy.sparse.csr_matrix:
    """Levin's eq. 12 for a block of windows: delta_ij - (1 + (I_i - mu)^T
    (Sigma + eps/9 E)^-1 (I_j - mu)) / 9, summed into an n x n matrix."""
    centred = colours - colours.mean(axis=1, keepdims=True)  # windows x 9 x 3
    cov = np.einsum("mic,mid->mcd", centred, centred) / 9.0 + (EPSILON / 9.0) * np.eye(3)
    inv = np.linalg.inv(cov)
    g = np.einsum("mic,mcd,mjd->mij", centred, inv, centred)
    values = np.eye(9)[None] - (1.0 + g) / 9.0
    rows = np.broadcast_to(idx[:, :, None], values.shape)
    cols = np.broadcast_to(idx[:, None, :], values.shape)
    return scipy.sparse.coo_matrix((values.ravel(), (rows.ravel(), cols.ravel())), (n, n)).tocsr()


def _snap(alpha: np.ndarray) -> np.ndarray:
    alpha[alpha < _SNAP] = 0.0
    alpha[alpha > 1.0 - _SNAP] = 1.0
    return alpha


def colours(photo: np.ndarray, alpha: np.ndarray, reach: int) -> Edge:
    """The subject's and the old background's colours where alpha is
    fractional, estimated on the band's bounding box (`reach` px around it)."""
    fg, bg = photo.copy(), photo.copy()
    soft = (alpha > 0.0) & (alpha < 1.0)
    if not soft.any():
        return Edge(alpha, fg, bg)
    from pymatting.foreground.estimate_foreground_ml import estimate_foreground_ml

    ys, xs = np.nonzero(soft)
    y0, y1 = max(0, ys.min() - reach), min(alpha.shape[0], ys.max() + reach + 1)
    x0, x1 = max(0, xs.min() - reach), min(alpha.shape[1], xs.max() + reach + 1)
    crop = photo[y0:y1, x0:x1].astype(np.float64) / 255.0
    f, b = estimate_foreground_ml(crop, alpha[y0:y1, x0:x1], return_background=True)
    box = soft[y0:y1, x0:x1]
    fg[y0:y1, x0:x1][box] = _to_uint8(f)[box]
    bg[y0:y1, x0:x1][box] = _to_uint8(b)[box]
    return Edge(alpha, fg, bg)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def matte(photo: np.ndarray, mask: np.ndarray, half_width: int) -> Edge:
    """The edge of `mask` (at the photo's size) as a matte of the photo:
    alpha solved in the band, the colours under it estimated."""
    outer = outer_width(half_width)
    tri = trimap(mask, half_width, outer)
    pull = background_pull(mask, half_width)
    alpha = solve_alpha(photo.astype(np.float64) / 255.0, tri, pull)
    return colours(photo, alpha, outer + 2)


def matte_any_size(photo: np.ndarray, mask: np.ndarray, half_width: int) -> Edge:
    """matte() for a picture of any size: above MAX_SOLVE_SIDE, solved small
    and brought to size (half_width is in the photo's own pixels)."""
    side = max(photo.shape[:2])
    if side <= MAX_SOLVE_SIDE:
        return matte(photo, mask, half_width)
    model = fit_upsampler(photo, mask, half_width)
    size = photo.shape[1::-1]
    resized = [cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) for m in model]
    return apply_upsampler(resized, photo)


Upsampler = list[np.ndarray]  # a, b, fg, bg at the solve size (float32)


def upsampled_spread(side: int) -> int:
    """How far (px, at a picture of longest side `side`) a matte solved small
    reaches past its band once brought to size: the upsampler's two boxes
    (UPSAMPLE_RADIUS each) and the bilinear resize's one pixel, at the solve
    size. 0 where the matte is solved at full size."""
    if side <= MAX_SOLVE_SIDE:
        return 0
    return math.ceil((2 * UPSAMPLE_RADIUS + 1) * side / MAX_SOLVE_SIDE)


def fit_upsampler(photo: np.ndarray, mask: np.ndarray, half_width: int) -> Upsampler:
    """The matte solved on the photo at most MAX_SOLVE_SIDE px, as a model to
    apply at full size: alpha ~ a * luminance + b locally (a guided filter's
    coefficients), and the colours under it. `mask` may be at any size."""
    f = min(1.0, MAX_SOLVE_SIDE / max(photo.shape[:2]))
    small = cv2.resize(photo, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else photo
    small_mask = cv2.resize(mask, small.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    edge = matte(small, small_mask, max(2, round(half_width * f)))
    guide, alpha = luma(small), edge.alpha
    size = (2 * UPSAMPLE_RADIUS + 1,) * 2

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.blur(x, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_a = box(guide), box(alpha)
    a = (box(guide * alpha) - mean_i * mean_a) / (box(guide * guide) - mean_i**2 + UPSAMPLE_EPS)
    b = mean_a - a * mean_i
    return [box(a), box(b), edge.fg.astype(np.float32), edge.bg.astype(np.float32)]


def apply_upsampler(resized: Upsampler, photo: np.ndarray) -> Edge:
    """The matte at the photo's size from the model resized to it (or to a
    strip of it). Where the small matte is sure (a = 0, b = 0 or 1) alpha is
    exact, so the subject stays the photo's own pixels there."""
    a, b, fg, bg = resized
    alpha = _snap(np.clip(a * luma(photo) + b, 0.0, 1.0).astype(np.float32))
    sure_fg, sure_bg = (alpha >= 1.0)[..., None], (alpha <= 0.0)[..., None]
    return Edge(alpha, np.where(sure_fg, photo, _to_uint8(fg / 255.0)),
                np.where(sure_bg, photo, _to_uint8(bg / 255.0)))  # fmt: skip


def luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def warm_up() -> None:
    """Compile (or load from numba's cache) the solver and the colour
    estimate on a tiny picture, so a worker's first job does not pay for it."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    mask = np.zeros((24, 24), np.float32)
    mask[6:18, 6:18] = 1.0
    matte(photo, mask, 2)
