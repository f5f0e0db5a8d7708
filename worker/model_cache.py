"""Per-process model caches: the only global state a worker keeps.

Loaded on first use in the process that runs the work (a Celery child, or the
`backdrop run` process), never in a parent that forks.
"""

from functools import lru_cache
from pathlib import Path

from worker.models import model_path
from worker.pipeline.features import FeatureNet, load_feature_net
from worker.pipeline.segmentation import FrozenGraphSegmenter, Segmenter, TFLiteSegmenter
from worker.pipeline.style_params import StyleParams
from worker.settings import Settings


def get_segmenter(settings: Settings) -> Segmenter:
    seg = settings.segmentation
    name = seg.tflite_model if seg.backend == "tflite" else seg.frozen_graph_model
    path = model_path(name, settings.models_dir, settings.allow_download)
    return _segmenter(seg.backend, path, seg.threads)


@lru_cache(maxsize=2)
def _segmenter(backend: str, path: Path, threads: int) -> Segmenter:
    if backend == "tflite":
        return TFLiteSegmenter(path, threads)
    return FrozenGraphSegmenter(path)


def get_feature_net(params: StyleParams, settings: Settings) -> FeatureNet:
    layers = (params.content_layer, *params.style_layers)
    return load_feature_net(layers, settings.models_dir)
