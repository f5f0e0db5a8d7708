"""DeepLab v3 (PASCAL VOC) -> a soft subject mask in [0, 1] at the photo's size."""

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from api_contracts.errors import BackdropError, ErrorCode
from worker.pipeline.intake import to_working_size

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
DEEPLAB_SIZE = 513


class Segmenter(Protocol):
    name: str

    def class_map(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB -> 2-D integer class ids (any size, same aspect or 513x513)."""
        ...


def subject_class_ids(names: Iterable[str]) -> tuple[int, ...]:
    """PASCAL VOC names -> ids; an unknown or empty set is a request error."""
    wanted = [n.strip().lower() for n in names if n.strip()]
    unknown = sorted({n for n in wanted if n not in VOC_CLASSES or n == "background"})
    if unknown or not wanted:
        raise BackdropError(
            ErrorCode.INVALID_REQUEST,
            f"unknown subject class(es) {unknown or '(none given)'}; "
            f"choose from {', '.join(VOC_CLASSES[1:])}",
        )
    return tuple(sorted({VOC_CLASSES.index(n) for n in wanted}))


def subject_mask(
    rgb: np.ndarray,
    segmenter: Segmenter,
    class_ids: tuple[int, ...],
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Float32 mask, 1 on the subject, at `size` (h, w; default the photo's).

    Give DeepLab the photo at its best resolution (see segmentation_input) even
    when the working size is small: at 96 px it finds almost no person. The
    class map is resized bilinearly, so the edge is soft but still blocky;
    composite.refine_mask then makes it follow the photo."""
    labels = segmenter.class_map(rgb)
    hard = np.isin(labels, class_ids).astype(np.float32)
    h, w = size or rgb.shape[:2]
    interpolation = cv2.INTER_AREA if h < labels.shape[0] else cv2.INTER_LINEAR
    return np.clip(cv2.resize(hard, (w, h), interpolation=interpolation), 0.0, 1.0)


def segmentation_input(full: np.ndarray) -> np.ndarray:
    """The photo as DeepLab wants it: longest side at most 513 px, never enlarged."""
    # DeepLab takes any shape (squeezed to its square): only VGG needs the width.
    return to_working_size(full, DEEPLAB_SIZE, min_side=1)


def require_subject(mask: np.ndarray, min_fraction: float, names: Iterable[str]) -> None:
    share = float((mask >= 0.5).mean())
    if share < min_fraction:
        raise BackdropError(
            ErrorCode.NO_SUBJECT_FOUND,
            f"no {'/'.join(names)} found in the photo ({share:.2%} of pixels); "
            "use mode 'full' to stylize the whole image",
        )


class TFLiteSegmenter:
    """The official 8-bit DeepLab: the whole photo squeezed to 513x513 (no padding)."""

    def __init__(self, model_path: Path, threads: int = 0) -> None:
        import tensorflow as tf  # lazily: the Celery parent never imports TensorFlow

        self.name = f"tflite:{model_path.name}"
        self._interpreter = tf.lite.Interpreter(
            model_path=str(model_path), num_threads=threads or None
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def class_map(self, rgb: np.ndarray) -> np.ndarray:
        square = cv2.resize(rgb, (DEEPLAB_SIZE, DEEPLAB_SIZE), interpolation=cv2.INTER_AREA)
        self._interpreter.set_tensor(self._input, square[None].astype(np.uint8))
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._output)[0])


class FrozenGraphSegmenter:
    """A model-zoo frozen graph: ImageTensor:0 (uint8 1xHxWx3, longest side 513)
    -> SemanticPredictions:0 (1xHxW class ids). Runs on the GPU where there is one."""

    def __init__(self, graph_path: Path) -> None:
        import tensorflow as tf

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(graph_path.read_bytes())

        def _import() -> None:
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(_import, [])
        self._run = wrapped.prune("ImageTensor:0", "SemanticPredictions:0")
        self._tf = tf
        self.name = f"frozen_graph:{graph_path.name}"

    def class_map(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = DEEPLAB_SIZE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        labels = self._run(self._tf.constant(resized[None], dtype=self._tf.uint8))
        return np.asarray(labels)[0]
