"""The checks of an image's container that run before any decoder sees it:
the gateway's upload and the worker's intake both ask, so a file that would
hold a worker (or the gateway's thread pool) is refused in words, and in
time linear in its bytes with a small cap on the steps.
"""

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.jpeg_scans import check_jpeg_structure
from api_contracts.png_chunks import check_png_chunks

# BMP's run-length compressions (BI_RLE8, BI_RLE4): Pillow decodes them in
# Python, a byte at a time at each line's end, so a 29 KB file of 7000 x
# 7000 one-pixel runs took 5.4 s. No camera or app writes them.
_BMP_RLE = {1: "RLE8", 2: "RLE4"}


def check_image_structure(data: bytes) -> None:
    """INVALID_IMAGE or UNSUPPORTED_FORMAT for a container no encoder would
    write, or one decoded only by a slow path; anything else passes (the
    decoder judges it)."""
    if data.startswith(b"\xff\xd8"):
        check_jpeg_structure(data)
    elif data.startswith(b"\x89PNG"):
        check_png_chunks(data)
    elif data.startswith(b"BM"):
        _check_bmp(data)


def _check_bmp(data: bytes) -> None:
    header = int.from_bytes(data[14:18], "little")  # the DIB header's size
    if header < 40 or len(data) < 34:  # the 12-byte core header has no compression
        return
    rle = _BMP_RLE.get(int.from_bytes(data[30:34], "little"))
    if rle:
        raise BackdropError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"{rle}-compressed BMP is not accepted; send it uncompressed, or as PNG or JPEG",
        )
