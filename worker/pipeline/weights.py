"""Weight files: their names, and a sha256 check cached per process. Pure file
reads (no registry, no download): the registry is worker.runtime.models."""

import hashlib
from functools import lru_cache
from pathlib import Path

VGG19_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(path: Path, expected: str | None) -> bool:
    """The file exists and matches its sha256 (None: presence is enough)."""
    return path.exists() and _verified(path, expected, path.stat().st_mtime)


@lru_cache(maxsize=32)
def _verified(path: Path, expected: str | None, mtime: float) -> bool:
    # Cached per process (keyed by mtime): hashing 50 MB on every task would be waste.
    return expected is None or sha256_of(path) == expected
