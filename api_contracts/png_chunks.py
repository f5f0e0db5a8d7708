"""How many chunks a PNG holds, read from their lengths without decoding it.

Pillow reads a PNG's chunks one at a time in Python and keeps every unknown
ancillary chunk: a 25 MB file of 2.18 M empty private chunks took 4.2 s and
250 MB to open, and 2 M empty IDAT chunks 1.3 s, before any pixel. Encoders
write image data in pieces of 8-64 KB (libpng 8 KB: a 25 MB PNG is about
3,200 chunks) and a few dozen others, so MAX_CHUNKS refuses no real file:
at most 1.3 KB a chunk on average in the largest upload.
"""

from api_contracts.errors import BackdropError, ErrorCode

MAX_CHUNKS = 20_000
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = b"IEND"


def png_chunks(data: bytes, stop_after: int = MAX_CHUNKS) -> int:
    """The chunks up to IEND, counting at most stop_after + 1; 0 for data
    that is not a PNG. A truncated tail ends the count (the decoder judges
    it). Each step moves at least 12 bytes: linear in the file."""
    if not data.startswith(_SIGNATURE):
        return 0
    chunks, pos = 0, len(_SIGNATURE)
    while chunks <= stop_after and pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks += 1
        if data[pos + 4 : pos + 8] == _IEND:
            break
        pos += 12 + length  # length, type, data, CRC
    return chunks


def check_png_chunks(data: bytes) -> None:
    """INVALID_IMAGE for a PNG of more chunks than any encoder writes."""
    if png_chunks(data) > MAX_CHUNKS:
        raise BackdropError(
            ErrorCode.INVALID_IMAGE,
            f"the PNG has more than {MAX_CHUNKS} chunks (an encoder writes image data in "
            "pieces of 8-64 KB); save it again",
        )
