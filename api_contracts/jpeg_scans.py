"""How many scans a JPEG holds, read from its markers without decoding it.

A progressive JPEG is drawn in scans, and the decoder walks every block of the
image once per scan. libjpeg sets no limit, so a 1.6 MB file of one 7000 x 7000
grey scan and 20,000 empty ones took 57 s to decode (2.8 ms a scan; a 25 MB
one about 17 minutes): a worker held by a file far under every size limit.
Encoders write 1 scan (baseline) or about 10 (progressive; mozjpeg's optimized
scripts stay under 20), so MAX_SCANS refuses no photo a camera or an app makes.
The gateway refuses such an upload, and the worker's intake any stored one.
"""

import re

MAX_SCANS = 100
_SOI, _SOS, _EOI = b"\xff\xd8", 0xDA, 0xD9
# In a scan's entropy-coded data 0xFF is a marker only when followed by a byte
# that is not 0x00 (a stuffed 0xFF) or a restart marker (0xD0-0xD7); 0xFF
# fill bytes may precede a marker.
_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")


def jpeg_scans(data: bytes, stop_after: int = MAX_SCANS) -> int:
    """The scans (SOS markers) a JPEG's segments hold, counting at most
    stop_after + 1; 0 for data that is not a JPEG. A malformed tail ends
    the count (the decoder judges it)."""
    if not data.startswith(_SOI):
        return 0
    scans, pos = 0, 2
    while pos + 4 <= len(data) and scans <= stop_after:
        if data[pos] != 0xFF:
            return scans
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == _EOI:
            return scans
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")  # the segment's, with itself
        pos += 2 + length
        if marker == _SOS:
            scans += 1
            found = _NEXT_MARKER.search(data, pos)  # the scan's data ends at the next marker
            if found is None:
                return scans
            pos = found.start(1) - 1
    return scans
