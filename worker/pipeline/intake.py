"""Untrusted bytes -> a validated RGB uint8 array at working resolution.

Alpha is composited on white (a transparent PNG looks on a page as it does on
white); 16-bit images are scaled to 8 bits, not clipped. Every failure is a
BackdropError with a code; no decoder exception escapes.
"""

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.image_structure import check_image_structure

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
# VGG pools four times before its deepest style layer: 16 px is 1 px there.
MIN_WORKING_SIDE = 16

# Formats Pillow or a browser would recognise but we refuse: named so the user
# learns "unsupported" rather than "corrupt".
_REFUSED_SIGNATURES = {
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"%!PS": "EPS",
    b"\xc5\xd0\xd3\xc6": "EPS",
    b"%PDF": "PDF",
    b"\x00\x00\x01\x00": "ICO",
    b"8BPS": "PSD",
}


@dataclass(frozen=True)
class IntakeLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_side: int = 32
    max_side: int = 512


def decode_image(data: bytes, limits: IntakeLimits) -> np.ndarray:
    """Decode at full resolution: HxWx3 uint8 RGB, upright per EXIF."""
    if not data:
        raise BackdropError(ErrorCode.INVALID_IMAGE, "the file is empty")
    if len(data) > limits.max_bytes:
        raise BackdropError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"the file has {len(data)} bytes; the limit is {limits.max_bytes}",
        )
    check_image_structure(data)  # before Pillow's parser walks the segments
    image = _open_allowed(data)
    _check_dimensions(image.size, limits)
    try:
        # A truncated file must fail, not come back half grey.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
    except BackdropError:
        raise
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError...
        _reraise_time_limit(exc)
        raise BackdropError(
            ErrorCode.INVALID_IMAGE, f"the image cannot be decoded: {exc}"
        ) from None
    return rgb


def to_working_size(rgb: np.ndarray, max_side: int, min_side: int = MIN_WORKING_SIDE) -> np.ndarray:
    """Shrink so the longest side is at most max_side; never enlarge. A very
    thin image (its short side under min_side there) is INVALID_IMAGE."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if min(size) < min_side:
        # Each side passes the intake's minimum, but a 16384 x 32 banner is
        # 512 x 1 at working size and VGG's pooling fails on it deep in a step.
        raise BackdropError(
            ErrorCode.INVALID_IMAGE,
            f"the image is {w}x{h}: at the working size ({max_side} px long) its short side "
            f"would be {min(size)} px, under {min_side}; crop it to at most "
            f"{max_side // min_side}:1",
        )
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def load_photo(data: bytes, limits: IntakeLimits) -> np.ndarray:
    """decode_image, then the working resolution."""
    return to_working_size(decode_image(data, limits), limits.max_side)


def load_styles(
    styles: Sequence[tuple[bytes, float]], limits: IntakeLimits
) -> list[tuple[np.ndarray, float]]:
    """Decode paintings at working size; an error names which painting. The
    same painting named twice (a blend of one upload 16 times) is decoded once."""
    decoded, seen = [], dict[bytes, np.ndarray]()
    for number, (data, weight) in enumerate(styles, start=1):
        try:
            rgb = seen[data] if data in seen else load_photo(data, limits)
        except BackdropError as exc:
            raise BackdropError(exc.code, f"style {number}: {exc.message}") from None
        decoded.append((seen.setdefault(data, rgb), weight))
    return decoded


def _open_allowed(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns (then raises at 2x) over its bomb limit: make both errors.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BackdropError(ErrorCode.IMAGE_TOO_LARGE, str(exc)) from None
    except UnidentifiedImageError:
        refused = _refused_format(data)
        if refused:
            raise BackdropError(
                ErrorCode.UNSUPPORTED_FORMAT,
                f"{refused} is not accepted; send {', '.join(ALLOWED_FORMATS)}",
            ) from None
        raise BackdropError(
            ErrorCode.INVALID_IMAGE, "the file is not a readable JPEG, PNG, WebP or BMP image"
        ) from None
    except Exception as exc:
        _reraise_time_limit(exc)
        raise BackdropError(
            ErrorCode.INVALID_IMAGE, f"the image header is corrupt: {exc}"
        ) from None


def _reraise_time_limit(exc: Exception) -> None:
    """Celery's soft time limit, raised wherever the task is (here inside a
    decoder), is the task's TIMEOUT, not a bad image. Named, not imported:
    this module knows no Celery."""
    if type(exc).__name__ == "SoftTimeLimitExceeded":
        raise exc


def _refused_format(data: bytes) -> str | None:
    for signature, name in _REFUSED_SIGNATURES.items():
        if data.startswith(signature):
            return name
    head = data[:1024].lstrip()
    if b"<svg" in head.lower() or head.startswith(b"<?xml"):
        return "SVG/XML"
    if _looks_like_text(data[:4096]):
        return "text"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def _check_dimensions(size: tuple[int, int], limits: IntakeLimits) -> None:
    w, h = size
    if w * h > limits.max_pixels:
        raise BackdropError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"the image is {w}x{h} = {w * h} pixels; the limit is {limits.max_pixels}",
        )
    if min(w, h) < limits.min_side:
        raise BackdropError(
            ErrorCode.INVALID_IMAGE,
            f"the image is {w}x{h}; both sides must be at least {limits.min_side} px",
        )


def _to_rgb(image: Image.Image) -> np.ndarray:
    """RGB uint8 with at most one wide copy of the pixels at a time: a 95 KB
    PNG can be 49 MP, and float64 steps took 1.3 GB of a worker for it."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey scaled to 8 bits, 65535 to 255 (convert('L') would clip at 255).
        wide = np.asarray(image)
        if wide.dtype != np.uint16:  # mode I: 32-bit, a 16-bit PNG's values
            wide = np.clip(wide, 0, 65535)
        grey = (wide // 257).astype(np.uint8)
        del wide
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))  # over white, no RGBA copies
        del rgba
        image = flat
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
