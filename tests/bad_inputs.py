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


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

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


def corpus() -> dict[str, tuple[bytes, str]]:
    png = _encode(gradient(), "PNG")
    jpeg = _encode(gradient(), "JPEG", quality=90)
    rng = np.random.default_rng(7)
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
    }
