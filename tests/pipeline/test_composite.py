"""Compositing: exact pixels away from the edge, and a portrait blur without halo."""

import cv2
import numpy as np
import pytest

from api_contracts.errors import BackdropError
from api_contracts.models import Mode
from tests.conftest import PHOTOS, read_rgb
from tests.pipeline.hair import bleed, gradient_error, hair_scene, sad
from worker.pipeline.composite import (
    EXACT_BLUR_RADIUS,
    blur_scale,
    disk_kernel,
    feather_width,
    near_subject,
    portrait_blur,
    refine_mask,
)
from worker.pipeline.matting import EPSILON, Edge, solve_alpha, trimap
from worker.pipeline.stages import (
    MODES,
    CompositeParams,
    composite_stage,
    edge_reach,
    mode_of,
    refined_edge,
)

RADIUS, EPS = 6, 0.01 * 255**2


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A red disc (the subject) on a busy blue-green texture, and a blocky mask of it."""
    rng = np.random.default_rng(3)
    h, w = 160, 200
    texture = rng.integers(0, 120, (h // 4, w // 4, 3), dtype=np.uint8)
    photo = cv2.resize(texture, (w, h), interpolation=cv2.INTER_NEAREST)
    photo[..., 0] = photo[..., 0] // 4  # background holds little red
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (100, 80), 45, 1, -1)
    photo[disc == 1] = (220, 30, 30)
    # DeepLab-like blockiness: the mask at 1/8 resolution, upsampled.
    coarse = cv2.resize(disc.astype(np.float32), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    return photo, mask


def _regions(mask: np.ndarray, width: int, out: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels farther than `width` from the mask's edge inside it, and than
    `out` (default the same) outside it."""
    hard = (mask >= 0.5).astype(np.uint8)
    inside = cv2.erode(hard, np.ones((2 * width + 1,) * 2, np.uint8)).astype(bool)
    reach = width if out is None else out
    outside = ~cv2.dilate(hard, np.ones((2 * reach + 1,) * 2, np.uint8)).astype(bool)
    return inside, outside


def test_refined_mask_stays_in_range() -> None:
    photo, mask = _scene()
    alpha = refine_mask(mask, photo, RADIUS, EPS)
    assert alpha.dtype == np.float32 and alpha.min() >= 0 and alpha.max() <= 1
    assert alpha.shape == mask.shape


@pytest.mark.parametrize("edge", ["guided", "matting"])
@pytest.mark.parametrize("mode", ["background", "subject"])
def test_pixels_away_from_the_edge_are_exactly_photo_or_stylized(mode: str, edge: str) -> None:
    photo, mask = _scene()
    stylized = np.full_like(photo, 128)
    params = CompositeParams(edge=edge, guided_eps=EPS)
    _, out = composite_stage(photo, mask, stylized, mode, params)
    # + 8: the mask itself is soft up to one DeepLab cell from its 0.5 edge.
    side = max(photo.shape[:2])
    inside, outside = _regions(mask, edge_reach(params, side, inward=True) + 8,
                               edge_reach(params, side) + 8)  # fmt: skip
    assert inside.sum() > 1000 and outside.sum() > 1000
    keep, paint = (inside, outside) if mode == "background" else (outside, inside)
    assert np.array_equal(out[keep], photo[keep])
    assert np.array_equal(out[paint], stylized[paint])


def test_full_mode_is_the_stylized_image() -> None:
    photo, mask = _scene()
    stylized = np.full_like(photo, 77)
    alpha, out = composite_stage(photo, mask, stylized, "full", CompositeParams())
    assert np.array_equal(out, stylized)
    assert np.array_equal(alpha, mask), "full mode uses no subject mask"


def test_the_mode_table_is_the_contract_and_unknown_modes_are_refused() -> None:
    import typing

    assert set(MODES) == set(typing.get_args(Mode)), "a mode is one row, named in the contract"
    photo, mask = _scene()
    with pytest.raises(BackdropError) as refused:
        composite_stage(photo, mask, photo, "sepia", CompositeParams())
    assert refused.value.code == "INVALID_REQUEST"
    with pytest.raises(BackdropError):
        mode_of("Subject")


def _high_frequency(image: np.ndarray, where: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[where].mean())


def test_portrait_blurs_the_background_and_keeps_the_subject() -> None:
    photo = read_rgb(PHOTOS / "grace_hopper.png")
    hard = np.zeros(photo.shape[:2], np.float32)
    hard[150:, 120:400] = 1.0  # a rough person box is enough for this check
    alpha = refine_mask(hard, photo, RADIUS, EPS)
    out = portrait_blur(photo, alpha, radius=9)
    inside, outside = _regions(hard, feather_width(RADIUS) + 2)
    assert _high_frequency(out, outside) < 0.5 * _high_frequency(photo, outside)
    assert np.array_equal(out[inside], photo[inside])


def test_portrait_leaves_no_halo_of_subject_colour() -> None:
    photo, mask = _scene()
    alpha = refine_mask(mask, photo, RADIUS, EPS)
    out = portrait_blur(photo, alpha, radius=12).astype(np.float32)
    hard = (photo[..., 0] == 220).astype(np.uint8)  # the true subject
    near = cv2.dilate(hard, np.ones((2 * 4 + 1,) * 2, np.uint8))
    ring_outer = cv2.dilate(hard, np.ones((2 * 10 + 1,) * 2, np.uint8))
    ring = (ring_outer - near).astype(bool)  # 4..10 px outside the subject
    photo_f = photo.astype(np.float32)
    redness = out[..., 0] - out[..., 1:].mean(axis=2)
    plain = photo_f[..., 0] - photo_f[..., 1:].mean(axis=2)  # the ring as photographed
    assert redness[ring].mean() <= plain[ring].mean() + 2.0
    # A plain (not normalized) disk blur does bleed red there: the test can fail.
    naive = cv2.filter2D(photo_f, -1, disk_kernel(12))
    naive_red = naive[..., 0] - naive[..., 1:].mean(axis=2)
    assert naive_red[ring].mean() > plain[ring].mean() + 10.0


def test_a_full_size_portrait_blur_runs_reduced_and_looks_the_same() -> None:
    """Radius and margin grow with the photo's side at full size: a 50 MP
    banner's 1094 px disk took about an hour. Past EXACT_BLUR_RADIUS the blur
    runs on a reduced copy and the margin is a distance transform; the
    background is what the exact blur gives, to a few levels, the subject
    untouched, and no halo of its colour."""
    photo, mask = _scene()
    photo = cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    mask = cv2.resize(mask, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    alpha = refine_mask(mask, photo, RADIUS, EPS)
    radius, margin = 60, 30
    assert blur_scale(radius) > 1 and blur_scale(EXACT_BLUR_RADIUS) == 1
    out = portrait_blur(photo, alpha, radius=radius, margin=margin).astype(np.float32)
    subject = (alpha > 0).astype(np.uint8)
    exact_near = cv2.dilate(subject, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (61, 61)))
    near = near_subject(alpha, margin)
    assert (near & exact_near).sum() / (near | exact_near).sum() > 0.99
    weight = (1.0 - exact_near).astype(np.float32)
    kernel = disk_kernel(radius)
    num = cv2.filter2D(photo.astype(np.float32) * weight[:, :, None], -1, kernel)
    den = cv2.filter2D(weight, -1, kernel)[:, :, None]
    exact = num / np.maximum(den, 1e-3)
    background = (alpha == 0) & (den[..., 0] > 0.05)
    assert np.abs(out - exact)[background].mean() < 3.0
    assert np.array_equal(out[alpha == 1], photo[alpha == 1].astype(np.float32))
    hard = (photo[..., 0] == 220).astype(np.uint8)
    ring = (cv2.dilate(hard, np.ones((2 * 40 + 1,) * 2, np.uint8))
            - cv2.dilate(hard, np.ones((2 * 32 + 1,) * 2, np.uint8))).astype(bool)  # fmt: skip
    redness = out[..., 0] - out[..., 1:].mean(axis=2)
    exact_red = exact[..., 0] - exact[..., 1:].mean(axis=2)  # no subject in its average
    assert redness[ring].mean() <= exact_red[ring].mean() + 2.0, "a halo of the subject"


def _hair(kind: str) -> tuple["np.ndarray", object]:
    background = cv2.resize(read_rgb(PHOTOS / "kite_and_cold.jpg"), (160, 120),
                            interpolation=cv2.INTER_AREA).astype(np.float32)  # fmt: skip
    return background, hair_scene(background, kind, width=1.0, seed=2)


@pytest.mark.parametrize("kind", ["hair", "fur"])
def test_matting_follows_strands_the_guided_filter_cuts(kind: str) -> None:
    """The issue's goal on a small synthetic case: at least 30% lower gradient
    error (and lower SAD) than the guided filter against the true alpha."""
    _, scene = _hair(kind)
    guided = refined_edge(scene.photo, scene.mask, CompositeParams(edge="guided")).alpha
    matted = refined_edge(scene.photo, scene.mask, CompositeParams(edge="matting")).alpha
    g_guided, g_matted = gradient_error(guided, scene.alpha), gradient_error(matted, scene.alpha)
    assert g_matted <= 0.7 * g_guided, (g_matted, g_guided)
    assert sad(matted, scene.alpha) < sad(guided, scene.alpha)


@pytest.mark.parametrize("seed", [1, 7])  # 1: the cases PRIOR was chosen on; 7: others
@pytest.mark.parametrize(
    ("photo", "kind"),
    [
        # 0.5 px strands (alpha at most ~0.5) over a textured photo: with
        # pymatting's own regularization (1e-7) the texture became false
        # strands (22% above the guided filter's gradient error).
        ("parrot.jpg", "hair"),
        # Short fur over feathers: a wide band without the pull to 0 turned
        # the feathers into false fur (25% above); the benchmark's worst now.
        ("parrot.jpg", "fur"),
        # Long strands over a plain sky: a band reaching 12 px out of the
        # mask cut them (19% below, the benchmark's worst until then).
        ("bird_segmentation.png", "hair"),
    ],
)
def test_the_thinnest_strands_stay_30_percent_below_guided(photo: str, kind: str,
                                                           seed: int) -> None:  # fmt: skip
    """benchmarks.matting's hardest cases, at its size (512 px): the goal of at
    least 30% lower gradient error holds on each."""
    from benchmarks.common import load_scaled

    background = load_scaled(f"photos/{photo}", 512).astype(np.float32)
    scene = hair_scene(background, kind, width=0.5, seed=seed)
    guided = refined_edge(scene.photo, scene.mask, CompositeParams(edge="guided")).alpha
    matted = refined_edge(scene.photo, scene.mask, CompositeParams(edge="matting")).alpha
    g_guided, g_matted = gradient_error(guided, scene.alpha), gradient_error(matted, scene.alpha)
    assert g_matted <= 0.7 * g_guided, (g_matted, g_guided)


def test_no_old_background_bleeds_into_the_new_one() -> None:
    """Composited over a new background, the matting's colours are closer to
    the truth than the photo's own (which carry the old background)."""
    _, scene = _hair("hair")
    over = np.zeros_like(scene.fg)
    over[..., 1] = 200  # a green the old background does not hold
    edge = refined_edge(scene.photo, scene.mask, CompositeParams())
    mixed = (edge.alpha > 0) & (edge.alpha < 1) & (scene.alpha > 0.02) & (scene.alpha < 0.98)
    assert mixed.sum() > 200
    with_photo = bleed(scene, edge.alpha, scene.photo, over, mixed)
    with_estimate = bleed(scene, edge.alpha, edge.fg, over, mixed)
    assert with_estimate <= 0.7 * with_photo, (with_estimate, with_photo)


def test_the_band_solve_is_closed_form_matting() -> None:
    """The band-only system is Levin's: the same alpha as pymatting's whole-
    picture solve, which builds the Laplacian everywhere."""
    from pymatting import estimate_alpha_cf

    _, scene = _hair("hair")
    tri = trimap(scene.mask, 4)
    image = scene.photo.astype(np.float64) / 255.0
    ours = solve_alpha(image, tri)
    theirs = estimate_alpha_cf(image, tri, laplacian_kwargs={"epsilon": EPSILON})
    assert np.abs(ours - theirs).max() <= 2e-3  # ours snaps within 1e-3 of 0 and 1


def test_the_pull_is_a_background_prior_in_the_same_system() -> None:
    """The service's solve (a wider band outward, the pull to 0 outside the
    mask) is Levin's energy plus pull * alpha^2: the same alpha as a direct
    sparse solve of (L_uu + diag(pull)) alpha_u = -L_uk alpha_k, with L built
    by pymatting over the whole picture."""
    import scipy.sparse
    import scipy.sparse.linalg
    from pymatting import cf_laplacian

    from worker.pipeline.matting import background_pull, outer_width

    _, scene = _hair("hair")
    tri = trimap(scene.mask, 4, outer_width(4))
    pull = background_pull(scene.mask, 4)
    image = scene.photo.astype(np.float64) / 255.0
    ours = solve_alpha(image, tri, pull)
    lap = cf_laplacian(image, epsilon=EPSILON).tocsr()
    u, k = np.flatnonzero((tri > 0) & (tri < 1)), np.flatnonzero((tri == 0) | (tri == 1))
    system = lap[u][:, u] + scipy.sparse.diags(pull.ravel()[u])
    direct = scipy.sparse.linalg.spsolve(system.tocsc(), -lap[u][:, k] @ tri.ravel()[k])
    theirs = tri.copy()
    theirs.ravel()[u] = np.clip(direct, 0, 1)
    assert np.abs(ours - theirs).max() <= 2e-3
    assert pull.max() > 0 and np.abs(ours - solve_alpha(image, tri)).max() > 0.05, "it pulls"


def test_the_subject_keeps_its_own_pixels_where_alpha_is_sure() -> None:
    _, scene = _hair("fur")
    edge = refined_edge(scene.photo, scene.mask, CompositeParams())
    assert isinstance(edge, Edge)
    sure_fg, sure_bg = edge.alpha == 1.0, edge.alpha == 0.0
    assert sure_fg.sum() > 1000 and sure_bg.sum() > 1000
    assert np.array_equal(edge.fg[sure_fg], scene.photo[sure_fg])
    assert np.array_equal(edge.bg[sure_bg], scene.photo[sure_bg])
    assert not np.array_equal(edge.fg, scene.photo), "the band's colours were estimated"


def test_a_matte_that_cannot_be_solved_falls_back_to_the_guided_edge(settings) -> None:
    """kite_and_cold at 64 px: the person is a few pixels and the band's system
    does not converge; the picture gets the guided filter's edge, not a failure."""
    from worker.pipeline.segmentation import subject_mask
    from worker.runtime.model_cache import get_segmenter

    photo = read_rgb(PHOTOS / "kite_and_cold.jpg")
    scale = 64 / max(photo.shape[:2])
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mask = subject_mask(photo, get_segmenter(settings), (15,), size=small.shape[:2])
    edge = refined_edge(small, mask, CompositeParams(edge="matting"))
    guided = refined_edge(small, mask, CompositeParams(edge="guided"))
    assert np.isfinite(edge.alpha).all() and 0 <= edge.alpha.min() <= edge.alpha.max() <= 1
    assert np.array_equal(edge.alpha, guided.alpha), "the guided edge serves"
