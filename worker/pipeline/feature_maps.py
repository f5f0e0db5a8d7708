"""A photo's content features per level as one .npz object in the work bucket,
so that every output of a job (on whichever worker) reads them instead of
running VGG on the photo again."""

import io
from typing import Any

import numpy as np

LevelFeatures = dict[tuple[int, int], np.ndarray]


def encode_features(features: LevelFeatures) -> bytes:
    buffer = io.BytesIO()
    # Uncompressed: ReLU maps compress ~2x but zlib costs more time than the
    # bytes cost on a LAN.
    arrays: dict[str, Any] = {f"{h}x{w}": array for (h, w), array in features.items()}
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def decode_features(data: bytes) -> LevelFeatures:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {_size(name): archive[name].astype(np.float32) for name in archive.files}


def _size(name: str) -> tuple[int, int]:
    h, w = name.split("x")
    return int(h), int(w)
