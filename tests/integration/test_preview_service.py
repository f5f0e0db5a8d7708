"""The instant preview in the job status, and the quality option."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from api_contracts.models import JobRequest, JobState, StyleRef
from tests.conftest import PHOTOS, STYLES

pytestmark = pytest.mark.integration


def test_preview_shows_in_the_status_long_before_the_result(client) -> None:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "strokes.jpg").read_bytes()))
    request = JobRequest(photo_key=photo, styles=[style], options={"iterations": 150, "seed": 9})
    job_id = client.submit(request).job_id
    deadline = time.monotonic() + 60
    while not (status := client.status(job_id)).styles[0].preview_url:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status.styles[0].state == JobState.RUNNING, "the preview came before the result"
    with Image.open(io.BytesIO(client.download(status.styles[0].preview_key))) as preview:
        assert preview.format == "PNG" and preview.size == (82, 96)
    final = client.wait(job_id, timeout=300)
    assert final.state == JobState.SUCCEEDED and final.counters["preview"] == 1


def test_quality_preview_skips_the_optimization(client) -> None:
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "waves.jpg").read_bytes()))
    request = JobRequest(photo_key=photo, styles=[style], options={"quality": "preview"})
    final = client.wait(client.submit(request).job_id, timeout=60)
    assert final.state == JobState.SUCCEEDED
    assert "stylize" not in final.counters and final.styles[0].result_key


@pytest.mark.parametrize("quality", ["preview", "standard"])
def test_two_strengths_get_two_pictures_under_two_keys(client, quality: str) -> None:
    """The same photo and painting at two strengths: each user gets their own
    picture (the preview's strength mix is part of every key)."""
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "sketch.jpg").read_bytes()))
    finals = []
    for strength in (0.3, 0.8):
        options = {"quality": quality, "strength": strength, "seed": 41}
        job_id = client.submit(JobRequest(photo_key=photo, styles=[style], options=options)).job_id
        finals.append(client.wait(job_id, timeout=120))
    assert all(f.state == JobState.SUCCEEDED for f in finals), finals
    for field in ("preview_key", "result_key"):
        weak, strong = (getattr(f.styles[0], field) for f in finals)
        assert weak and strong and weak != strong, field
        pictures = [np.asarray(Image.open(io.BytesIO(client.download(k)))) for k in (weak, strong)]
        assert pictures[0].shape == pictures[1].shape
        assert np.abs(pictures[0].astype(int) - pictures[1].astype(int)).mean() > 1.0, field
