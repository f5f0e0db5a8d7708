"""PNG encoding with Backdrop's metadata in a text chunk (feature net, params, losses)."""

import io
import json
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

METADATA_KEY = "backdrop"


def encode_png(image: np.ndarray, metadata: dict[str, Any] | None = None) -> bytes:
    """RGB uint8 (or a 0..1 float mask) -> PNG bytes."""
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    info = PngInfo()
    if metadata:
        info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_metadata(png: bytes) -> dict[str, Any]:
    with Image.open(io.BytesIO(png)) as image:
        text = image.info.get(METADATA_KEY)
    return json.loads(text) if text else {}


def decode_png(png: bytes) -> np.ndarray:
    """Our own PNGs back to arrays (RGB, or L for masks)."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)
