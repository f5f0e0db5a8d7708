"""A corpus of broken and hostile image files, made here rather than downloaded.

Each entry: name -> (bytes, expected outcome). The outcome is an error code, or
"ok" for inputs that must decode to a correct RGB image.
"""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def gradient(w: int = 96, h: int = 64) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.uint8)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2))


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    chunk = _chunk
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [gradient(), gradient().rotate(180)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], loop=0)


def exif_rotated_jpeg() -> bytes:
    """Stored 96 wide x 64 high with orientation 6: shown upright it is 64x96."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(gradient(), "JPEG", exif=exif.tobytes(), quality=95)


def jpeg_scan_bomb(side: int = 512, extra: int = 2000) -> bytes:
    """A grey progressive JPEG whose last scan is repeated `extra` times: 25 KB
    at 512 px, and the decoder walks every block once per scan (at 2000 px, 44
    KB took 4.6 s; at 7000 px a 1.6 MB file a minute)."""
    data = _encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=90)
    last_scan = data[data.rindex(b"\xff\xda") : -2]  # its header and data, before EOI
    return data[:-2] + last_scan * extra + b"\xff\xd9"


def png_pieces(image: Image.Image, extra: bytes, data_pieces: int = 1) -> bytes:
    """The PNG of `image` with `extra` chunks after its header and its image
    data cut into `data_pieces` IDAT chunks."""
    png = _encode(image, "PNG")
    idat_at = png.index(b"IDAT") - 4
    length = int.from_bytes(png[idat_at : idat_at + 4], "big")
    idat = png[idat_at + 8 : idat_at + 8 + length]
    cut = -(-len(idat) // data_pieces)
    pieces = b"".join(_chunk(b"IDAT", idat[k : k + cut]) for k in range(0, len(idat), cut))
    return png[:idat_at] + extra + pieces + _chunk(b"IEND", b"")


def png_chunk_flood(chunks: int = 30_000) -> bytes:
    """Empty private chunks (360 KB): Pillow reads and keeps each in Python
    (2.18 M in 25 MB: 4.2 s and 250 MB to open)."""
    return png_pieces(gradient(), _chunk(b"prVt", b"") * chunks)


def jpeg_header_flood(kind: str, count: int = 20_000) -> bytes:
    """A JPEG whose header Pillow's Python parser walks a step at a time:
    `comments` (empty COM segments), `after_eoi` (the same after an early
    EOI: libjpeg's walk stops there, Pillow's reads on), `jpg0` (FF F0 has
    no length for Pillow; read as one, FF FF jumps 64 KB of comments),
    `fill` (0xFF padding) and `restarts` (bare RST markers). The last two
    decode; all cost Pillow seconds at 25 MB."""
    jpeg = _encode(gradient(), "JPEG", quality=90)
    head, rest, comment = jpeg[:2], jpeg[2:], b"\xff\xfe\x00\x02"
    middle = {"comments": comment * count, "after_eoi": b"\xff\xd9" + comment * count,
              "jpg0": b"\xff\xf0\xff\xff" + comment * count, "fill": b"\xff" * count * 4,
              "restarts": b"\xff\xd0" * count}[kind]  # fmt: skip
    return head + middle + rest


def jpeg_comment_flood(comments: int = 20_000) -> bytes:
    """Empty COM segments after SOI (80 KB): Pillow's parser walks and keeps
    each (6.5 M in 25 MB: 4-8 s and 460 MB to open)."""
    return jpeg_header_flood("comments", comments)


def bmp_rle8(side: int = 2000) -> bytes:
    """An 8-bit RLE BMP of one pixel then end-of-line per row: Pillow's
    Python decoder fills each line a byte at a time (7000 px: 5.4 s)."""
    rows = b"\x01\x07\x00\x00" * side + b"\x00\x01"  # a pixel, end of line; end of bitmap
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset)
    return head + info + palette + rows


def corpus() -> dict[str, tuple[bytes, str]]:
    png = _encode(gradient(), "PNG")
    jpeg = _encode(gradient(), "JPEG", quality=90)
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[16:48, 16:48, 3] = 255  # opaque red square on a transparent field
    return {
        "empty": (b"", "INVALID_IMAGE"),
        "random_bytes": (rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "INVALID_IMAGE"),
        "text": (b"hello, this is not a picture\n" * 20, "UNSUPPORTED_FORMAT"),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], "INVALID_IMAGE"),
        "truncated_png": (png[: len(png) // 2], "INVALID_IMAGE"),
        "png_bomb": (png_bomb(), "IMAGE_TOO_LARGE"),
        "png_16bit_grey": (
            _encode(
                Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)), "PNG"
            ),
            "ok",
        ),
        "cmyk_jpeg": (_encode(gradient().convert("CMYK"), "JPEG"), "ok"),
        "palette_png": (_encode(gradient().convert("P"), "PNG"), "ok"),
        "grey_png": (_encode(gradient().convert("L"), "PNG"), "ok"),
        "rgba_png": (_encode(Image.fromarray(rgba, "RGBA"), "PNG"), "ok"),
        "webp": (_encode(gradient(), "WEBP"), "ok"),
        "bmp": (_encode(gradient(), "BMP"), "ok"),
        "animated_gif": (animated_gif(), "UNSUPPORTED_FORMAT"),
        "tiff": (_encode(gradient(), "TIFF"), "UNSUPPORTED_FORMAT"),
        "svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>',
            "UNSUPPORTED_FORMAT",
        ),
        "eps": (
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n",
            "UNSUPPORTED_FORMAT",
        ),
        "one_pixel": (_encode(Image.new("RGB", (1, 1)), "PNG"), "INVALID_IMAGE"),
        "sliver_10000x10": (_encode(Image.new("RGB", (10_000, 10)), "PNG"), "INVALID_IMAGE"),
        # Both sides pass the intake's minimum; at working size it is 512 x 1.
        "banner_16384x32": (_encode(gradient(16_384, 32), "PNG"), "INVALID_IMAGE"),
        "exif_rotated_jpeg": (exif_rotated_jpeg(), "ok"),
        "progressive_jpeg": (_encode(gradient(), "JPEG", progressive=True), "ok"),
        "jpeg_2000_scans": (jpeg_scan_bomb(), "INVALID_IMAGE"),
        "jpeg_20000_comments": (jpeg_comment_flood(), "INVALID_IMAGE"),
        "jpeg_comments_after_eoi": (jpeg_header_flood("after_eoi"), "INVALID_IMAGE"),
        "jpeg_jpg0_jump": (jpeg_header_flood("jpg0"), "INVALID_IMAGE"),
        "jpeg_80k_fill_bytes": (jpeg_header_flood("fill"), "INVALID_IMAGE"),
        "jpeg_20000_restarts": (jpeg_header_flood("restarts"), "INVALID_IMAGE"),
        "png_30000_chunks": (png_chunk_flood(), "INVALID_IMAGE"),
        # about 950 image data pieces of 12 bytes: unusual, not hostile
        "png_many_data_chunks": (png_pieces(noise, b"", 1000), "ok"),
        "bmp_rle8": (bmp_rle8(), "UNSUPPORTED_FORMAT"),
    }
