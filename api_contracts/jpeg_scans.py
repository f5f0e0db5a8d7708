"""How many scans and segments a JPEG holds, read from its markers without
decoding it.

A progressive JPEG is drawn in scans, and the decoder walks every block of the
image once per scan. libjpeg sets no limit, so a 1.6 MB file of one 7000 x 7000
grey scan and 20,000 empty ones took 57 s to decode (2.8 ms a scan; a 25 MB
one about 17 minutes): a worker held by a file far under every size limit.
Encoders write 1 scan (baseline) or about 10 (progressive; mozjpeg's optimized
scripts stay under 20), so MAX_SCANS refuses no photo a camera or an app makes.
The gateway refuses such an upload, and the worker's intake any stored one.

The walk finds markers as libjpeg does (its next_marker): bytes that are not
0xFF, and 0xFF fill bytes, are skipped between segments, so junk before a
scan cannot hide it. Each step moves forward at least two bytes and every
search is a fixed two-byte pattern, so the walk is linear in the file.

Before libjpeg, Pillow opens the file with its own parser, in Python, up to
the first scan: one step per segment, per marker and per junk or fill byte,
and each segment kept (25 MB of empty comments took 4-8 s and 460 MB; of
0xFF fill bytes or restart markers 7-9 s, and that file then decoded).
pillow_header_steps counts those steps as that parser takes them (it reads
on past an early EOI, and JPGn, SOI and RSTn have no length for it).
"""

import re
from typing import NamedTuple

from api_contracts.errors import BackdropError, ErrorCode

MAX_SCANS = 100
# Segments and markers libjpeg reads in the first image: a camera's JPEG
# has 10-30 (an ICC profile or extended XMP split in 64 KB APPn pieces adds
# a few dozen), a progressive one a table or two per scan.
MAX_SEGMENTS = 1000
# Pillow's parser's steps before the first scan: the segments above plus
# any padding; 10,000 is a few ms of its time.
MAX_HEADER_STEPS = 10_000
# Markers Pillow's parser reads without a length (its MARKER table's entries
# with no handler); one it does not know at all ends its parse (an error).
_PILLOW_BARE = frozenset([0xC8, *range(0xD0, 0xDA), *range(0xF0, 0xFE)])
_PILLOW_KNOWN = frozenset([*range(0xC0, 0xE0), *range(0xE0, 0xF0), 0xFE]) | _PILLOW_BARE
_SOI, _SOS, _EOI = b"\xff\xd8", 0xDA, 0xD9
# Markers read as having no length field: TEM, the reserved 0x02-0xBF and
# the restarts RST0-RST7. In a scan with a restart interval libjpeg's
# resync steps over a reserved marker's two bytes and reads on: taken as a
# length, 0xFF 0x02 0xFF 0xFF jumped 64 KB of scans it decodes (a helper's
# 197 KB file counted 1 scan and decoded about 6000). Between segments
# libjpeg refuses them, so reading them so can only over-count a bad file.
_STANDALONE = frozenset([*range(0x01, 0xC0), *range(0xD0, 0xD8)])
# Between segments: 0xFF then anything but 0x00 (not a marker) or 0xFF (fill).
_MARKER = re.compile(rb"\xff[^\x00\xff]")
# A scan's entropy-coded data ends at a marker from 0xC0 up that is not a
# restart: a stuffed 0xFF 0x00, RSTn and the reserved ones belong to it.
_SCAN_END = re.compile(rb"\xff[\xc0-\xcf\xd8-\xfe]")


class JpegCounts(NamedTuple):
    scans: int  # SOS markers
    segments: int  # markers between segments: APPn, COM, tables, frames, scans, bare ones


def jpeg_counts(data: bytes, max_scans: int = MAX_SCANS,
                max_segments: int = MAX_SEGMENTS) -> JpegCounts:  # fmt: skip
    """The scans and segments of a JPEG's first image, counting until one is
    past its max; (0, 0) for data that is not a JPEG. A truncated or
    malformed tail ends the count (the decoder judges it)."""
    if not data.startswith(_SOI):
        return JpegCounts(0, 0)
    scans, segments, pos = 0, 0, 2
    while scans <= max_scans and segments <= max_segments:
        found = _MARKER.search(data, pos)
        if found is None:
            break
        marker, pos = data[found.start() + 1], found.start() + 2
        if marker == _EOI:
            break
        segments += 1  # a flood of bare markers costs steps too
        if marker in _STANDALONE:
            continue
        pos += int.from_bytes(data[pos : pos + 2], "big")  # the segment's length, with itself
        if marker == _SOS:
            scans += 1
            end = _SCAN_END.search(data, pos)  # the scan's data ends at the next marker
            if end is None:
                break
            pos = end.start()
    return JpegCounts(scans, segments)


def pillow_header_steps(data: bytes, stop_after: int = MAX_HEADER_STEPS) -> int:
    """The steps Pillow's JPEG parser takes from SOI to the first scan (an
    upper bound: a junk or fill byte counts one), counting at most
    stop_after + 1; 0 for data that is not a JPEG."""
    if not data.startswith(_SOI):
        return 0
    steps, pos = 0, 2
    while steps <= stop_after:
        found = _MARKER.search(data, pos)
        if found is None:
            break
        steps += found.start() - pos + 1  # the bytes skipped, then the marker
        marker, pos = data[found.start() + 1], found.start() + 2
        if marker == _SOS or marker not in _PILLOW_KNOWN:
            break  # its parse ends: at the scan, or with an error
        if marker not in _PILLOW_BARE:
            pos += int.from_bytes(data[pos : pos + 2], "big")
    return min(steps, stop_after + 1)  # a run of padding is counted at once


def jpeg_scans(data: bytes, stop_after: int = MAX_SCANS) -> int:
    """The scans (SOS markers) a JPEG's segments hold, counting at most
    stop_after + 1."""
    return jpeg_counts(data, stop_after, 10**12).scans


def check_jpeg_structure(data: bytes) -> None:
    """INVALID_IMAGE for a JPEG of more scans or segments than any encoder
    writes: each scan costs a pass over the whole image, each segment a step
    of Pillow's Python parser and a kept copy (6.5 M empty comments in 25 MB
    took 4-8 s and 460 MB to open, before any pixel)."""
    counts = jpeg_counts(data)
    if pillow_header_steps(data) > MAX_HEADER_STEPS:
        raise BackdropError(
            ErrorCode.INVALID_IMAGE,
            f"the JPEG's header has more than {MAX_HEADER_STEPS} segments, markers or "
            "padding bytes (a photo's has about 10-30 segments); save it again",
        )
    if counts.scans > MAX_SCANS:
        raise BackdropError(
            ErrorCode.INVALID_IMAGE,
            f"the JPEG has more than {MAX_SCANS} scans (a progressive JPEG has about 10); "
            "save it again as a baseline or progressive JPEG",
        )
    if counts.segments > MAX_SEGMENTS:
        raise BackdropError(
            ErrorCode.INVALID_IMAGE,
            f"the JPEG has more than {MAX_SEGMENTS} segments (a photo has about 10-30); "
            "save it again without its extra metadata",
        )
