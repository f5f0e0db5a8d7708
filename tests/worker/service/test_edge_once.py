"""The refined edge is made once per job and read by every picture of it:
the preview, the intermediates and the result composite the stored one."""

import numpy as np
import pytest

from tests.worker.service.conftest import new_job
from worker.pipeline.matting import Edge
from worker.pipeline.png import decode_png
from worker.service import artifacts, steps
from worker.service.plan import load_plan

pytestmark = pytest.mark.integration


def test_the_result_is_composited_with_the_stored_edge_not_a_new_one(svc) -> None:
    record = new_job(svc, "edge", options={"iterations": 4})
    [index] = steps.segment_step(svc, "edge")
    steps.stylize_step(svc, "edge", index)
    plan = load_plan(record)
    key = plan.edge_key()
    work = svc.settings.storage.work_bucket
    assert key is not None and svc.store.exists(work, key), "the preview stored the edge"
    photo = artifacts.working_photo(svc, plan)
    # Replace it with an edge no method would make: the subject everywhere.
    everywhere = Edge(np.ones(photo.shape[:2], np.float32), photo, photo)
    svc.store.put(work, key, artifacts.encode_edge(everywhere), "application/octet-stream")
    steps.composite_step(svc, "edge", index)
    result_key = record.status().styles[index].result_key
    result = decode_png(svc.store.get(svc.settings.storage.results_bucket, result_key))
    assert np.array_equal(result, photo), "the background mode kept the stored edge's subject"


def test_an_edge_survives_its_encoding() -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    alpha = np.zeros((20, 30), np.float32)
    alpha[5:15, 5:25] = 1.0
    alpha[4, 5:25] = 0.4
    fg, bg = photo.copy(), photo.copy()
    fg[4, 5:25], bg[4, 5:25] = 200, 10
    back = artifacts.decode_edge(artifacts.encode_edge(Edge(alpha, fg, bg)), photo)
    assert np.abs(back.alpha - alpha).max() <= 0.5 / 255
    assert np.array_equal(back.fg, fg) and np.array_equal(back.bg, bg)
