"""The service end to end: client -> Redis -> Celery worker -> S3 -> presigned URLs."""

import io
import urllib.request

import cv2
import numpy as np
import pytest
from PIL import Image

from api_contracts.models import JobRequest, JobState, StyleRef
from tests.conftest import MODELS, PHOTOS, STYLES
from worker.pipeline.composite import feather_width
from worker.pipeline.intake import IntakeLimits, decode_image, to_working_size
from worker.pipeline.segmentation import TFLiteSegmenter, subject_class_ids, subject_mask

pytestmark = pytest.mark.integration
# The guided filter's radius at 96 px (6 px at 512 px, scaled), plus a margin.
FEATHER = feather_width(2) + 2


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_three_styles_end_to_end(client) -> None:
    photo_bytes = (PHOTOS / "grace_hopper.png").read_bytes()
    photo_key = client.upload(photo_bytes)
    styles = [StyleRef(key=client.upload((STYLES / n).read_bytes())) for n in
              ("starry.jpg", "waves.jpg", "sketch.jpg")]  # fmt: skip
    accepted = client.submit(JobRequest(photo_key=photo_key, styles=styles))
    assert accepted.outputs == 3
    seen: list[int] = []
    final = client.wait(accepted.job_id, timeout=300, on_status=lambda s: seen.append(s.progress))
    assert final.state == JobState.SUCCEEDED, final
    assert any(0 < p < 100 for p in seen), f"progress never seen between 0 and 100: {seen}"
    assert seen == sorted(seen), "progress never goes backwards"
    masks = final.counters.get("segment", 0) + final.counters.get("mask_reused", 0)
    assert masks == 1, "one segmentation (or one reuse of it) for three styles"
    # The photo's VGG content pass: at most once (none if an earlier job on this
    # photo stored it), and read by each of the three optimizations.
    features = final.counters.get("content_features", 0)
    assert features <= 1, final.counters
    assert features + final.counters.get("content_features_reused", 0) == 3, final.counters

    full = decode_image(photo_bytes, IntakeLimits())
    photo = to_working_size(full, 96)
    for style in final.styles:
        assert style.state == JobState.SUCCEEDED and style.progress == 100
        png = _fetch(style.result_url)
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.size == (photo.shape[1], photo.shape[0])
            result = np.asarray(image.convert("RGB"))
        _assert_subject_untouched(full, photo, result)


def _assert_subject_untouched(full: np.ndarray, photo: np.ndarray, result: np.ndarray) -> None:
    """Well inside the person (the mask eroded past the guided filter's reach) the
    result is the photo, pixel for pixel; well outside it is not."""
    deeplab = TFLiteSegmenter(MODELS / "deeplabv3_mnv2_pascal_quant.tflite")
    mask = subject_mask(full, deeplab, subject_class_ids(["person"]), photo.shape[:2])
    hard = (mask >= 0.5).astype(np.uint8)
    band = np.ones((2 * FEATHER + 1, 2 * FEATHER + 1), np.uint8)
    inside = cv2.erode(hard, band).astype(bool)
    outside = ~cv2.dilate(hard, band).astype(bool)
    assert inside.sum() > 500 and outside.sum() > 200
    assert np.array_equal(result[inside], photo[inside])
    assert np.abs(result[outside].astype(int) - photo[outside]).mean() > 5


def test_identical_request_reuses_the_finished_result(client) -> None:
    photo_key = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))
    request = JobRequest(photo_key=photo_key, styles=[style], options={"seed": 5})
    first = client.wait(client.submit(request).job_id, timeout=300)
    second = client.wait(client.submit(request).job_id, timeout=300)
    assert first.state == second.state == JobState.SUCCEEDED
    assert second.styles[0].result_key == first.styles[0].result_key
    assert second.counters.get("result_reused") == 1
    assert "stylize" not in second.counters and "segment" not in second.counters


def test_portrait_job(client) -> None:
    photo_key = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    final = client.wait(client.submit(JobRequest(photo_key=photo_key, mode="portrait")).job_id, 120)
    assert final.state == JobState.SUCCEEDED
    png = client.download(final.styles[0].result_key)
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (96, 82, 3)
