"""On a CUDA GPU: the device is used, segmentation and style run on it, a 512 px
job runs through a real worker process per GPU, mixed precision gives the
float32 picture within tolerance, and the largest allowed job fits in memory."""

import numpy as np
import pytest

from tests.conftest import PHOTOS, STYLES, read_rgb
from worker.pipeline.intake import to_working_size
from worker.pipeline.style_params import StyleParams

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


def test_tensorflow_places_the_style_step_on_the_gpu(models) -> None:
    import tensorflow as tf

    from worker.pipeline.features import load_feature_net

    assert tf.config.list_physical_devices("GPU")
    p = StyleParams()
    net = load_feature_net((p.content_layer, *p.style_layers), models)
    out = net(tf.zeros([1, 64, 64, 3]))
    assert "GPU" in next(iter(out.values())).device


@pytest.mark.parametrize("backend", ["frozen_graph", "tflite"])
def test_segmentation_on_the_gpu_machine_finds_the_person(backend: str, models) -> None:
    from PIL import Image

    from worker.pipeline.segmentation import subject_class_ids, subject_mask
    from worker.runtime.model_cache import get_segmenter
    from worker.runtime.settings import Settings

    settings = Settings(models_dir=models, allow_download=False,
                        segmentation={"backend": backend})  # type: ignore[arg-type]  # fmt: skip
    photo = read_rgb(PHOTOS / "dog_segmentation.png")
    trimap = np.asarray(Image.open(PHOTOS / "dog_segmentation_mask.png"))
    mask = subject_mask(photo, get_segmenter(settings), subject_class_ids(["dog"])) >= 0.5
    valid, truth = trimap != 2, trimap == 0  # the trimap's boundary band does not count
    iou = ((mask & truth & valid).sum()) / ((mask | truth) & valid).sum()
    assert iou >= 0.8, iou


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_pictures_are_near_float32(precision: str, models) -> None:
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.style import stylize

    photo = to_working_size(read_rgb(PHOTOS / "grace_hopper.png"), 256)
    painting = to_working_size(read_rgb(STYLES / "starry.jpg"), 256)
    params = StyleParams(iterations=60)
    layers = (params.content_layer, *params.style_layers)
    pictures = {}
    for p in ("float32", precision):
        last = list(stylize(photo, [(painting, 1.0)], params, load_feature_net(layers, models, p),
                            lbfgs_every=10))[-1]  # fmt: skip
        pictures[p] = last.image.astype(float)
    difference = np.abs(pictures[precision] - pictures["float32"]).mean()
    assert difference < 12, f"{precision} differs from float32 by {difference:.1f} levels"


def test_the_largest_allowed_job_fits_in_gpu_memory(models) -> None:
    from worker.pipeline.features import load_feature_net
    from worker.pipeline.style import stylize_many
    from worker.runtime.settings import MAX_STYLE_BATCH, Settings

    settings = Settings()
    side, styles = settings.intake.max_side, MAX_STYLE_BATCH
    photo = to_working_size(read_rgb(PHOTOS / "kite_and_cold.jpg"), side)
    painting = to_working_size(read_rgb(STYLES / "waves.jpg"), side)
    params = StyleParams(iterations=2, levels=1)
    net = load_feature_net((params.content_layer, *params.style_layers), models)
    last = list(stylize_many(photo, [[(painting, 1.0)]] * styles, params, net, lbfgs_every=2))[-1]
    assert last.images is not None and len(last.images) == styles


def test_a_512px_job_through_a_worker_process_per_gpu(tmp_path, s3_endpoint) -> None:
    from redis import Redis

    from api_contracts.models import JobRequest, JobState, StyleRef
    from tests.faults.harness import make_client
    from tests.services import WorkerProcess, service_env

    url = "redis://127.0.0.1:6379/2"
    Redis.from_url(url).flushdb()
    env = service_env(s3_endpoint, BACKDROP_REDIS__URL=url, BACKDROP_INTAKE__MAX_SIDE="512",
                      BACKDROP_STYLE__ITERATIONS="100",
                      BACKDROP_SEGMENTATION__BACKEND="frozen_graph")  # fmt: skip
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=1, gpus="0")
    try:
        worker.wait_ready(timeout=300)
        client = make_client(url, s3_endpoint)
        photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
        style = StyleRef(key=client.upload((STYLES / "starry.jpg").read_bytes()))
        final = client.wait(client.submit(JobRequest(photo_key=photo, styles=[style])).job_id, 600)
    finally:
        worker.stop()
    assert final.state == JobState.SUCCEEDED, final
