"""DeepLab on real photos: IoU against ground truth, and the frozen-graph path."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from api_contracts.errors import BackdropError
from tests.conftest import MODELS, PHOTOS, read_rgb
from worker.pipeline.composite import refine_mask
from worker.pipeline.segmentation import (
    FrozenGraphSegmenter,
    TFLiteSegmenter,
    require_subject,
    subject_class_ids,
    subject_mask,
)
from worker.runtime.model_cache import get_segmenter


@pytest.fixture(scope="module")
def deeplab() -> TFLiteSegmenter:
    return TFLiteSegmenter(MODELS / "deeplabv3_mnv2_pascal_quant.tflite")


def _iou(mask: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    pred = (mask >= 0.5) & valid
    true = truth & valid
    return float((pred & true).sum() / (pred | true).sum())


def test_bird_iou(deeplab: TFLiteSegmenter) -> None:
    photo = read_rgb(PHOTOS / "bird_segmentation.png")
    truth = np.asarray(Image.open(PHOTOS / "bird_segmentation_mask.png")) == 3
    mask = subject_mask(photo, deeplab, subject_class_ids(["bird"]))
    assert mask.shape == photo.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0 and mask.max() <= 1
    iou = _iou(mask, truth, np.ones_like(truth))
    assert iou >= 0.85, iou


def test_dog_iou_ignoring_the_boundary_band(deeplab: TFLiteSegmenter) -> None:
    photo = read_rgb(PHOTOS / "dog_segmentation.png")
    trimap = np.asarray(Image.open(PHOTOS / "dog_segmentation_mask.png"))
    mask = subject_mask(photo, deeplab, subject_class_ids(["dog"]))
    iou = _iou(mask, trimap == 0, trimap != 2)
    assert iou >= 0.80, iou


def test_guided_filter_brings_the_edge_closer_to_the_truth(deeplab: TFLiteSegmenter) -> None:
    photo = read_rgb(PHOTOS / "bird_segmentation.png")
    truth = np.asarray(Image.open(PHOTOS / "bird_segmentation_mask.png")) == 3
    mask = subject_mask(photo, deeplab, subject_class_ids(["bird"]))
    refined = refine_mask(mask, photo, radius=6, eps=0.01 * 255**2)
    everywhere = np.ones_like(truth)
    assert _iou(refined, truth, everywhere) > _iou(mask, truth, everywhere) + 0.005


def test_grace_hopper_face_is_subject_and_flag_is_not(deeplab: TFLiteSegmenter) -> None:
    photo = read_rgb(PHOTOS / "grace_hopper.png")  # 512 wide, 600 high
    mask = subject_mask(photo, deeplab, subject_class_ids(["person"]))
    face = mask[170:300, 200:330]
    flag = mask[30:230, 0:110]  # the stars; lower down DeepLab merges flag and shoulder
    assert face.mean() > 0.97, face.mean()
    assert flag.mean() < 0.03, flag.mean()


def test_photo_without_the_subject_is_reported(deeplab: TFLiteSegmenter) -> None:
    photo = read_rgb(PHOTOS / "bird_segmentation.png")
    mask = subject_mask(photo, deeplab, subject_class_ids(["person"]))
    with pytest.raises(BackdropError) as info:
        require_subject(mask, 0.002, ["person"])
    assert info.value.code == "NO_SUBJECT_FOUND"


@pytest.mark.parametrize("names", [["unicorn"], ["person", "Dragon"], [], ["background"]])
def test_unknown_subject_classes_are_refused(names: list[str]) -> None:
    with pytest.raises(BackdropError) as info:
        subject_class_ids(names)
    assert info.value.code == "INVALID_REQUEST"


def test_subject_names_are_case_and_space_tolerant() -> None:
    assert subject_class_ids([" Person ", "dog"]) == (12, 15)


def _write_tiny_frozen_graph(path: Path) -> None:
    """A stand-in for the model-zoo graph, with its tensor names: class 15
    (person) where the red channel is bright, 0 elsewhere."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name="ImageTensor")
        red = tf.cast(image[..., 0], tf.int64)
        labels = tf.where(red > 128, tf.constant(15, tf.int64), tf.constant(0, tf.int64))
        tf.identity(labels, name="SemanticPredictions")
    path.write_bytes(graph.as_graph_def().SerializeToString())


def test_frozen_graph_backend_runs_a_model_zoo_style_graph(tmp_path: Path, settings) -> None:
    _write_tiny_frozen_graph(tmp_path / "deeplabv3_mnv2_pascal_frozen_inference_graph.pb")
    settings.models_dir = tmp_path
    settings.segmentation.backend = "frozen_graph"
    segmenter = get_segmenter(settings)
    assert isinstance(segmenter, FrozenGraphSegmenter)
    photo = np.zeros((300, 200, 3), np.uint8)
    photo[100:200, 50:150, 0] = 255
    labels = segmenter.class_map(photo)
    assert labels.shape == (513, 342), "longest side resized to 513, aspect kept"
    mask = subject_mask(photo, segmenter, subject_class_ids(["person"]))
    assert mask.shape == (300, 200)
    assert mask[110:190, 60:140].min() > 0.999 and mask[:90].max() < 0.001
