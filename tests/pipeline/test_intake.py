"""Intake: every bad file gets its code; every odd-but-valid one becomes correct RGB."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from api_contracts.errors import BackdropError
from tests.bad_inputs import corpus, exif_rotated_jpeg, gradient
from tests.conftest import PHOTOS
from worker.pipeline import intake
from worker.pipeline.intake import (
    IntakeLimits,
    decode_image,
    load_photo,
    load_styles,
    to_working_size,
)
from worker.pipeline.segmentation import segmentation_input

LIMITS = IntakeLimits(max_bytes=5_000_000, max_pixels=20_000_000, min_side=32, max_side=512)
CORPUS = corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_entry_gets_its_documented_outcome(name: str) -> None:
    data, expected = CORPUS[name]
    if expected == "ok":
        rgb = load_photo(data, LIMITS)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    else:
        with pytest.raises(BackdropError) as info:
            load_photo(data, LIMITS)
        assert info.value.code == expected, info.value.message


def test_an_image_too_thin_at_working_size_is_refused_with_the_crop_to_make() -> None:
    banner = np.zeros((32, 16_384, 3), np.uint8)  # each side passes min_side
    with pytest.raises(BackdropError) as info:
        to_working_size(banner, 512)
    assert info.value.code == "INVALID_IMAGE" and "32:1" in info.value.message
    assert to_working_size(np.zeros((32, 512, 3), np.uint8), 512).shape == (32, 512, 3)
    assert to_working_size(np.zeros((16, 512, 3), np.uint8), 512).shape == (16, 512, 3)
    with pytest.raises(BackdropError):  # the job's own size decides: 96 x 32 is 32 x 11
        to_working_size(np.zeros((32, 96, 3), np.uint8), 32)
    # DeepLab squeezes any shape to its square: a photo thin at 513 px but wide
    # enough at a larger working size (max_side 1024) is still segmented.
    assert segmentation_input(np.zeros((48, 2048, 3), np.uint8)).shape == (12, 513, 3)
    data = CORPUS["banner_16384x32"][0]
    with pytest.raises(BackdropError) as info:
        load_styles([(CORPUS["png_16bit_grey"][0], 1.0), (data, 1.0)], LIMITS)
    assert info.value.message.startswith("style 2: "), "the error names the painting"


def test_exif_orientation_is_applied_before_anything_else() -> None:
    rgb = decode_image(exif_rotated_jpeg(), LIMITS)
    stored = np.asarray(gradient())  # 96 wide, 64 high, red rises left to right
    assert rgb.shape[:2] == (96, 64)
    # Orientation 6 means "rotate 90° clockwise to display": the stored left
    # column (red 0) ends up on top.
    assert rgb[0, :, 0].mean() < 40 and rgb[-1, :, 0].mean() > 215
    assert stored.shape[:2] == (64, 96)


def test_transparency_is_composited_on_white() -> None:
    rgb = decode_image(CORPUS["rgba_png"][0], LIMITS)
    assert (rgb[0, 0] == 255).all(), "a transparent pixel must come out white"
    assert tuple(rgb[32, 32]) == (200, 0, 0), "an opaque pixel keeps its colour"


def test_16bit_grey_is_scaled_not_clipped() -> None:
    rgb = decode_image(CORPUS["png_16bit_grey"][0], LIMITS)
    assert rgb.max() > 200 and len(np.unique(rgb[:, :, 0])) > 50


def test_byte_limit_is_checked_before_decoding() -> None:
    data = CORPUS["png_16bit_grey"][0]
    with pytest.raises(BackdropError) as info:
        decode_image(data, IntakeLimits(max_bytes=len(data) - 1))
    assert info.value.code == "IMAGE_TOO_LARGE"


def test_pixel_limit_comes_from_the_header() -> None:
    with pytest.raises(BackdropError) as info:
        decode_image(CORPUS["bmp"][0], IntakeLimits(max_pixels=96 * 64 - 1))
    assert info.value.code == "IMAGE_TOO_LARGE"


def test_working_size_caps_the_longest_side_and_keeps_the_aspect() -> None:
    photo = load_photo((PHOTOS / "kite_and_cold.jpg").read_bytes(), LIMITS)
    assert photo.shape == (341, 512, 3)  # 1352x900 scaled by 512/1352
    small = np.zeros((100, 50, 3), np.uint8)
    assert to_working_size(small, 512) is small, "small photos are never enlarged"


def test_real_photo_decodes_to_its_size() -> None:
    rgb = decode_image((PHOTOS / "grace_hopper.png").read_bytes(), LIMITS)
    assert rgb.shape == (600, 512, 3)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_an_unhandled_exception(data: bytes) -> None:
    try:
        rgb = decode_image(data, LIMITS)
    except BackdropError as exc:
        assert exc.code in {"INVALID_IMAGE", "UNSUPPORTED_FORMAT", "IMAGE_TOO_LARGE"}
    else:
        assert rgb.ndim == 3


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mutated_real_jpeg_never_escapes(data: st.DataObject) -> None:
    original = bytearray(_small_jpeg())
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, len(original) - 1))
        original[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(original)))
    try:
        decode_image(bytes(original[:cut]), LIMITS)
    except BackdropError as exc:
        assert exc.code in {"INVALID_IMAGE", "UNSUPPORTED_FORMAT", "IMAGE_TOO_LARGE"}


def _small_jpeg() -> bytes:
    with Image.open(PHOTOS / "grace_hopper.png") as image:
        buffer = io.BytesIO()
        image.convert("RGB").resize((64, 75)).save(buffer, format="JPEG")
    return buffer.getvalue()


# A few hundred KB of PNG can be 16 MP of pixels: decoding it must not take
# many times the RGB result's own 3 bytes a pixel (a float64 16-bit path and
# three RGBA copies took 19-25 bytes a pixel, now 6-8; at the
# 50 MP limit, 1.3 GB of a worker per photo or painting).
BYTES_PER_PIXEL_BOUND = 14.0
_MEASURE = """
import resource, sys
from pathlib import Path
from worker.pipeline.intake import IntakeLimits, decode_image
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rgb = decode_image(data, IntakeLimits(max_pixels=50_000_000, max_bytes=50_000_000))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / rgb[..., 0].size)
"""


@pytest.mark.parametrize("mode", ["I;16", "RGBA"])
def test_a_small_file_of_many_pixels_decodes_in_bounded_memory(mode: str, tmp_path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    side = 4000
    image = (Image.fromarray(np.zeros((side, side), np.uint16)) if mode == "I;16"
             else Image.new("RGBA", (side, side), (0, 0, 0, 0)))  # fmt: skip
    path = tmp_path / "many_pixels.png"
    image.save(path, "PNG")
    assert path.stat().st_size < 200_000  # what the attacker uploads
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], cwd=REPO, timeout=120,
                          capture_output=True, text=True, check=True)  # fmt: skip
    per_pixel = float(done.stdout.split()[-1])
    assert per_pixel < BYTES_PER_PIXEL_BOUND, f"{per_pixel:.1f} bytes a pixel"


def test_16bit_grey_maps_exactly_as_v_over_257() -> None:
    """65535 to 255 and every value to floor(v / 257): the 8-bit picture of a
    16-bit photo does not depend on how memory-lean the conversion is."""
    values = np.array([[0, 256, 257, 512, 514, 25_900, 65_278, 65_279, 65_535]], np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(values, 40, axis=0).repeat(4, axis=1)).save(buffer, "PNG")
    rgb = decode_image(buffer.getvalue(), LIMITS)
    assert (rgb[0, ::4, 0] == values[0] // 257).all(), rgb[0, ::4, 0]
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_a_painting_named_twice_is_decoded_once() -> None:
    """A blend of one upload 16 times was 16 decodes of it in one step."""
    data = CORPUS["bmp"][0]
    (first, _), (second, weight), (other, _) = load_styles(
        [(data, 1.0), (data, 2.0), (CORPUS["png_16bit_grey"][0], 1.0)], LIMITS
    )
    assert second is first and weight == 2.0
    assert other is not first


def test_a_time_limit_during_a_decode_is_the_tasks_not_a_bad_image(monkeypatch) -> None:
    """Celery's soft limit raised inside the decoder must reach the guard
    (TIMEOUT), not become INVALID_IMAGE."""
    from celery.exceptions import SoftTimeLimitExceeded

    def late(*_: object, **__: object) -> None:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(intake.ImageOps, "exif_transpose", late)
    with pytest.raises(SoftTimeLimitExceeded):
        decode_image(CORPUS["bmp"][0], LIMITS)
    monkeypatch.setattr(intake.Image, "open", late)  # while the header is read
    with pytest.raises(SoftTimeLimitExceeded):
        decode_image(CORPUS["bmp"][0], LIMITS)
