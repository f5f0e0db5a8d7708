"""The container checks that run before any decoder (api_contracts.
image_structure): what real encoders write passes, a flood of chunks or an
RLE bitmap is refused with its code, and the walks stop at their caps."""

import io

import numpy as np
import pytest
from PIL import Image

from api_contracts.errors import BackdropError
from api_contracts.image_structure import check_image_structure
from api_contracts.png_chunks import MAX_CHUNKS, png_chunks
from tests.bad_inputs import bmp_rle8, gradient, jpeg_comment_flood, png_chunk_flood, png_pieces
from tests.conftest import PHOTOS, STYLES


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_the_samples_and_every_encoders_default_pass() -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), np.uint8))
    files = [p.read_bytes() for p in [*PHOTOS.iterdir(), *STYLES.iterdir()]
             if p.suffix.lower() in (".jpg", ".jpeg", ".png")]  # fmt: skip
    files += [_encode(noise, fmt) for fmt in ("PNG", "JPEG", "BMP", "WEBP")]
    files += [_encode(noise, "JPEG", progressive=True), _encode(noise.convert("P"), "BMP")]
    for data in files:
        check_image_structure(data)
    assert len(files) > 10


def test_a_pngs_chunks_are_counted_up_to_iend() -> None:
    assert png_chunks(_encode(gradient(), "PNG")) == 3  # IHDR, IDAT, IEND
    pieces = png_pieces(gradient(), b"", 50)
    assert png_chunks(pieces) == pieces.count(b"IDAT") + 2 > 40
    assert png_chunks(b"GIF89a") == 0 and png_chunks(b"\x89PNG\r\n\x1a\n") == 0
    flood = png_chunk_flood()
    assert Image.open(io.BytesIO(flood)).size == (96, 64), "Pillow would open it"
    assert png_chunks(flood, stop_after=10**6) == 30_003
    assert png_chunks(flood) == MAX_CHUNKS + 1, "it stops once past the limit"


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [(png_chunk_flood, "INVALID_IMAGE", "chunks"),
     (jpeg_comment_flood, "INVALID_IMAGE", "segments"),
     (bmp_rle8, "UNSUPPORTED_FORMAT", "RLE8-compressed BMP")],
)  # fmt: skip
def test_a_flood_or_an_rle_bitmap_is_refused_in_words(make, code: str, words: str) -> None:
    with pytest.raises(BackdropError) as refused:
        check_image_structure(make())
    assert refused.value.code == code and words in refused.value.message
