"""Counting a JPEG's scans from its markers (api_contracts.jpeg_scans): the
check that keeps a small file of thousands of scans from holding a worker."""

import io

import numpy as np
from PIL import Image

from api_contracts.jpeg_scans import MAX_SCANS, jpeg_scans
from tests.bad_inputs import jpeg_scan_bomb
from tests.conftest import PHOTOS


def _jpeg(**options: object) -> bytes:
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), np.uint8)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def test_baseline_and_progressive_jpegs_are_far_under_the_limit() -> None:
    assert jpeg_scans(_jpeg()) == 1
    assert jpeg_scans(_jpeg(progressive=True)) == 10  # libjpeg's default script
    assert jpeg_scans((PHOTOS / "parrot.jpg").read_bytes()) == 1


def test_a_scan_bomb_is_counted_and_the_count_stops_early() -> None:
    bomb = jpeg_scan_bomb(64, 300)
    assert jpeg_scans(bomb, stop_after=10**6) == 306
    assert jpeg_scans(bomb) == MAX_SCANS + 1, "it stops once past the limit"


def test_marker_bytes_inside_a_segment_or_a_scan_are_not_scans() -> None:
    """An APP segment (EXIF, a thumbnail) may hold any bytes: its length skips it."""
    app = b"\xff\xda" * 50
    data = _jpeg()
    with_app = data[:2] + b"\xff\xe5" + (len(app) + 2).to_bytes(2, "big") + app + data[2:]
    assert jpeg_scans(with_app) == 1
    assert Image.open(io.BytesIO(with_app)).size == (128, 96), "still a valid JPEG"


def test_anything_else_counts_none() -> None:
    assert jpeg_scans(b"") == 0 and jpeg_scans(b"\x89PNG\r\n\x1a\n") == 0
    assert jpeg_scans(b"\xff\xd8\xff") == 0  # truncated: the decoder says so
