"""Deterministic object keys: a hash of the input bytes and every parameter that
shaped the output. A redelivered task rewrites the same object; an identical
request finds its finished result."""

import hashlib
import json
from typing import Any

# Bump when the meaning of an output changes for the same inputs. 2: previews,
# intermediates and results are keyed on everything that shaped them (scheme 1
# left the preview's strength mix, the segmenter and the compositing out, so two
# jobs that differed only there shared one picture). 3: the segmenter's model,
# the VGG and its precision are named at their defaults too (scheme 2 left a
# default out to keep the keys it had, so an object stored before the field
# existed, made by whichever model its worker had, was read as the default's).
# A field added later is named whatever its value, with a bump.
KEY_SCHEME = 3


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(kind: str, parts: dict[str, Any]) -> str:
    text = json.dumps({"kind": kind, "scheme": KEY_SCHEME, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def working_photo_key(photo_sha: str, size: int) -> str:
    """The photo decoded, upright and at working size, once per job."""
    return f"photos/{_digest('photo', {'photo': photo_sha, 'size': size})}.png"


def mask_key(photo_sha: str, subjects: list[str], size: int, segmenter: str) -> str:
    parts = {"photo": photo_sha, "subjects": sorted(subjects), "size": size, "seg": segmenter}
    return f"masks/{_digest('mask', parts)}.png"


def edge_key(mask_key: str, composite: dict[str, Any]) -> str:
    """The refined edge (alpha and the colours under it) of one mask, per
    compositing recipe: made once, read by the preview, intermediates and result."""
    return f"edges/{_digest('edge', {'mask': mask_key, 'composite': composite})}.npz"


def features_key(photo_sha: str, size: int, net: str, params: dict[str, Any]) -> str:
    """The photo's content features: per network, layer and level sizes."""
    parts = {"photo": photo_sha, "size": size, "net": net, "params": params}
    return f"features/{_digest('features', parts)}.npz"


def stylized_key(photo_sha: str, style_sha: str, shaping: dict[str, Any]) -> str:
    """The optimized (or, for preview quality, feed-forward) image, uncomposited."""
    parts = {"photo": photo_sha, "style": style_sha, **shaping}
    return f"stylized/{_digest('stylized', parts)}.png"


def dial_key(photo_sha: str, style_sha: str, shaping: dict[str, Any]) -> str:
    """An output's strength dial calibrated on its photo and paintings (JSON)."""
    parts = {"photo": photo_sha, "style": style_sha, **shaping}
    return f"dials/{_digest('dial', parts)}.json"


def result_key(photo_sha: str, style_sha: str | None, shaping: dict[str, Any]) -> str:
    parts = {"photo": photo_sha, "style": style_sha, **shaping}
    return f"results/{_digest('result', parts)}.png"


def preview_key(photo_sha: str, style_sha: str, shaping: dict[str, Any]) -> str:
    """The instant preview, composited: its strength mix is part of `shaping`."""
    parts = {"photo": photo_sha, "style": style_sha, **shaping}
    return f"previews/{_digest('preview', parts)}.png"


def latest_key(photo_sha: str, style_sha: str, shaping: dict[str, Any]) -> str:
    parts = {"photo": photo_sha, "style": style_sha, **shaping}
    return f"latest/{_digest('latest', parts)}.png"


def upload_key(data: bytes) -> str:
    """Uploads are content-addressed: the same photo uploaded twice is one object."""
    return f"uploads/{content_hash(data)}"


def catalog_key(name: str) -> str:
    return f"catalog/{name}"
