"""Tests that need a CUDA GPU: `make gpu-check` runs them. Elsewhere every one
of them skips, saying why (never silently)."""

import pytest

from tests.conftest import MODELS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    why = pytest.mark.skip(reason="NO GPU: TensorFlow sees no CUDA GPU here (make gpu-check)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(why)


@pytest.fixture(scope="module")
def models():
    return MODELS
