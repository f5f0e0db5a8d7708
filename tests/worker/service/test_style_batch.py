"""Outputs of one job optimized as one batch (queue.style_batch), in-process
on the real Redis: each keeps its own result, progress and failure."""

import numpy as np
import pytest

from api_contracts.models import JobState
from tests.conftest import STYLES
from tests.worker.service.conftest import new_job, upload
from worker.pipeline.png import decode_png
from worker.service import steps
from worker.service.guard import record_failure
from worker.service.stylize_steps import stylize_batch_step

pytestmark = pytest.mark.integration


def test_a_batch_of_four_outputs_one_optimization_one_missing_painting(svc) -> None:
    keys = [upload(svc, STYLES / f"{n}.jpg") for n in ("starry", "waves", "strokes")]
    styles = [{"key": k} for k in keys] + [{"key": "uploads/no-such-painting"}]
    record = new_job(svc, "batch", styles=styles, options={"seed": 9})
    open_outputs = steps.segment_step(svc, "batch")
    ready, failed = stylize_batch_step(svc, "batch", open_outputs)
    assert ready == [0, 1, 2] and [(i, code) for i, code, _ in failed] == [(3, "STYLE_NOT_FOUND")]
    record_failure(record, 3, failed[0][1], failed[0][2], lambda _: None)
    for i in ready:
        if steps.composite_step(svc, "batch", i):
            steps.finalize_step(svc, "batch")
    status = record.status()
    assert status.state == JobState.PARTIAL, status
    assert [s.state for s in status.styles] == ["SUCCEEDED"] * 3 + ["FAILED"]
    c = status.counters
    assert c["stylize"] == 3 and c["stylize_batches"] == 1, c
    assert c["content_features"] + c.get("content_features_reused", 0) == 3, c
    assert c["preview"] == 3 and all(s.progress == 100 for s in status.styles[:3])
    results = [decode_png(svc.store.get(svc.settings.storage.results_bucket, s.result_key))
               for s in status.styles[:3]]  # fmt: skip
    assert all(r.shape == results[0].shape for r in results)
    assert np.abs(results[0].astype(int) - results[1].astype(int)).mean() > 1, "own paintings"


def test_a_batch_of_one_is_the_single_output_step(svc) -> None:
    record = new_job(svc, "single", options={"seed": 10})
    steps.segment_step(svc, "single")
    assert stylize_batch_step(svc, "single", [0]) == ([0], [])
    assert steps.composite_step(svc, "single", 0)
    assert record.status().counters.get("stylize_batches") is None


def test_init_preview_starts_each_output_from_the_preview_it_published(svc, monkeypatch) -> None:
    """The warm start takes the very preview each output published (one
    feed-forward pass per output, none recomputed for the optimization)."""
    from worker.service import stylize_steps

    published, started = [], []

    def publish(*args, **kwargs):
        published.append(real_publish(*args, **kwargs))
        return published[-1]

    def optimize(*args, **kwargs):
        started.append(kwargs["init_images"])
        return real_many(*args, **kwargs)

    real_publish, real_many = stylize_steps.publish_preview, stylize_steps.stylize_many
    monkeypatch.setattr(stylize_steps, "publish_preview", publish)
    monkeypatch.setattr(stylize_steps, "stylize_many", optimize)
    keys = [upload(svc, STYLES / f"{n}.jpg") for n in ("starry", "waves")]
    new_job(svc, "warm", styles=[{"key": k} for k in keys],
            options={"init": "preview", "iterations": 2})  # fmt: skip
    assert stylize_batch_step(svc, "warm", steps.segment_step(svc, "warm")) == ([0, 1], [])
    assert len(published) == 2 and len(started) == 1
    assert all(a is b for a, b in zip(started[0], published, strict=True))
