"""Deterministic object keys: a hash of the input bytes and every parameter that
shaped the output. A redelivered task rewrites the same object; an identical
request finds its finished result."""

import hashlib
import json
from typing import Any

KEY_SCHEME = 1  # bump when the meaning of an output changes for the same inputs


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


def features_key(photo_sha: str, size: int, net: str, params: dict[str, Any]) -> str:
    """The photo's content features: per network, layer and level sizes."""
    parts = {"photo": photo_sha, "size": size, "net": net, "params": params}
    return f"features/{_digest('features', parts)}.npz"


def stylized_key(photo_sha: str, style_sha: str, size: int, params: dict[str, Any]) -> str:
    parts = {"photo": photo_sha, "style": style_sha, "size": size, "params": params}
    return f"stylized/{_digest('stylized', parts)}.png"


def result_key(
    photo_sha: str, style_sha: str | None, size: int, mode: str, subjects: list[str],
    params: dict[str, Any], composite: dict[str, Any],
) -> str:  # fmt: skip
    parts = {"photo": photo_sha, "style": style_sha, "size": size, "mode": mode,
             "subjects": sorted(subjects), "params": params, "composite": composite}  # fmt: skip
    return f"results/{_digest('result', parts)}.png"


def preview_key(photo_sha: str, style_sha: str, size: int, mode: str, subjects: list[str]) -> str:
    parts = {"photo": photo_sha, "style": style_sha, "size": size, "mode": mode,
             "subjects": sorted(subjects)}  # fmt: skip
    return f"previews/{_digest('preview', parts)}.png"


def latest_key(
    photo_sha: str, style_sha: str, size: int, mode: str, subjects: list[str],
    params: dict[str, Any],
) -> str:  # fmt: skip
    parts = {"photo": photo_sha, "style": style_sha, "size": size, "mode": mode,
             "subjects": sorted(subjects), "params": params}  # fmt: skip
    return f"latest/{_digest('latest', parts)}.png"


def upload_key(data: bytes) -> str:
    """Uploads are content-addressed: the same photo uploaded twice is one object."""
    return f"uploads/{content_hash(data)}"


def catalog_key(name: str) -> str:
    return f"catalog/{name}"
