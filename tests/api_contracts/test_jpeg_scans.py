"""Counting a JPEG's scans from its markers (api_contracts.jpeg_scans): the
check that keeps a small file of thousands of scans from holding a worker."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from api_contracts.errors import BackdropError
from api_contracts.jpeg_scans import (
    MAX_HEADER_STEPS,
    MAX_SCANS,
    MAX_SEGMENTS,
    check_jpeg_structure,
    jpeg_counts,
    jpeg_scans,
    pillow_header_steps,
)
from tests.bad_inputs import jpeg_comment_flood, jpeg_header_flood, jpeg_scan_bomb
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


@pytest.mark.parametrize("junk", [b"\x00", b"\xff\x01", b"\xff\xd0", b"\xff\xff"],
                         ids=["a junk byte", "TEM", "RST0", "fill bytes"])  # fmt: skip
def test_what_libjpeg_skips_before_a_scan_does_not_hide_the_scans(junk: bytes) -> None:
    """libjpeg skips junk between segments (with a warning Pillow ignores)
    and takes TEM and RSTn as markers with no length: each still decodes all
    306 scans, so each must be counted (a walk that stopped there said 1)."""
    bomb = jpeg_scan_bomb(64, 300)
    second = bomb.index(b"\xff\xda", bomb.index(b"\xff\xda") + 2)
    hidden = bomb[:second] + junk + bomb[second:]
    Image.open(io.BytesIO(hidden)).load()  # a JPEG the decoder takes
    assert jpeg_scans(hidden, stop_after=10**6) == 306


def test_a_reserved_marker_in_a_scan_does_not_hide_the_scans_after_it() -> None:
    """With a restart interval, libjpeg steps over a reserved marker (0x02-
    0xBF) in scan data and decodes every scan after it (a helper's 197 KB
    file of this shape decoded about 6000 scans in 5 s). Read as a segment
    with a length, 0xFF 0x02 0xFF 0xFF jumped 64 KB of them: 1 counted."""
    dri = bytes.fromhex("ffdd00040001")
    sos = bytes.fromhex("ffda0008010100003f00")  # a scan header, no data
    data = b"\xff\xd8" + dri + sos + b"\x00" + b"\xff\x02\xff\xff" + sos * 500 + b"\xff\xd9"
    assert jpeg_scans(data, stop_after=10**6) == 501


def test_a_long_run_of_ff_bytes_is_walked_at_once() -> None:
    """A scan of 4 MB of 0xFF: a pattern with a repeat in it backtracked over
    the run (7 s at 40 KB, quadratic), in the gateway's event loop. In its own
    process, since a regex search holds the GIL: a hang guard, not a timing."""
    code = ("from api_contracts.jpeg_scans import jpeg_scans; "
            "head = bytes.fromhex('ffd8ffda0008010100003f00'); "
            "print(jpeg_scans(head + b'\\xff' * 4_000_000 + b'\\x00'))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[2], check=True)  # fmt: skip
    assert done.stdout.strip() == "1"


def test_anything_else_counts_none() -> None:
    assert jpeg_scans(b"") == 0 and jpeg_scans(b"\x89PNG\r\n\x1a\n") == 0
    assert jpeg_scans(b"\xff\xd8\xff") == 0  # truncated: the decoder says so


def test_a_comment_flood_is_counted_and_the_count_stops_early() -> None:
    """20,000 empty comments: a JPEG Pillow opens (after walking each in
    Python), far past any encoder's segments; the walk stops past the cap."""
    flood = jpeg_comment_flood()
    assert Image.open(io.BytesIO(flood)).size == (96, 64), "still a valid JPEG"
    assert jpeg_counts(flood, max_segments=10**6).segments > 20_000
    assert jpeg_counts(flood).segments == MAX_SEGMENTS + 1, "it stops once past the limit"
    for real in (_jpeg(), _jpeg(progressive=True), (PHOTOS / "parrot.jpg").read_bytes()):
        assert jpeg_counts(real).segments < 30


@pytest.mark.parametrize("kind", ["comments", "after_eoi", "jpg0", "fill", "restarts"])
def test_what_pillows_parser_walks_before_the_scan_is_counted(kind: str) -> None:
    """Pillow parses the header in Python, a step per segment, bare marker
    or padding byte, reading on past an early EOI and taking FF F0 as bare:
    the libjpeg walk saw 0 segments after the EOI and jumped the comments
    after FF F0; fill bytes and restarts it skipped uncounted."""
    flood = jpeg_header_flood(kind)
    Image.open(io.BytesIO(flood))  # Pillow's parser takes each
    assert pillow_header_steps(flood, stop_after=10**6) >= 20_000
    assert pillow_header_steps(flood) == MAX_HEADER_STEPS + 1, "it stops once past the limit"
    with pytest.raises(BackdropError) as refused:
        check_jpeg_structure(flood)
    assert refused.value.code == "INVALID_IMAGE"


def test_a_real_jpegs_header_is_a_few_steps() -> None:
    for real in (_jpeg(), _jpeg(progressive=True), (PHOTOS / "parrot.jpg").read_bytes()):
        assert 3 <= pillow_header_steps(real) < 30
        check_jpeg_structure(real)
