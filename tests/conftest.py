"""Shared fixtures: the real photos, paintings and models in ../shared."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Real Redis, S3 server and Celery worker fixtures, for any test that asks.
pytest_plugins = ["tests.services"]

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BACKDROP_SHARED", REPO.parent / "shared")).resolve()
PHOTOS = SHARED / "images" / "photos"
STYLES = SHARED / "images" / "styles"
MODELS = SHARED / "models"

if not (PHOTOS.is_dir() and MODELS.is_dir()):
    raise RuntimeError(
        f"the test photos and models are expected in {SHARED} (set BACKDROP_SHARED); "
        "the tests run on real models and photos only"
    )


@pytest.fixture
def settings(tmp_path: Path):
    """Settings pointing at the shared models, with downloads off (no network)."""
    from worker.runtime.settings import Settings

    return Settings(models_dir=MODELS, samples_dir=SHARED / "images", allow_download=False)


def read_rgb(path: Path) -> np.ndarray:
    from worker.pipeline.intake import IntakeLimits, decode_image

    return decode_image(path.read_bytes(), IntakeLimits(max_side=4096))
