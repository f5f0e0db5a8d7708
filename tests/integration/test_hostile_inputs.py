"""The broken-and-hostile corpus through the real service: each file gets its
documented code or a correct result, and the worker keeps serving."""

import io

import pytest
from PIL import Image

from api_contracts.models import JobRequest, JobState, StyleRef
from tests.bad_inputs import corpus
from tests.conftest import PHOTOS, STYLES

pytestmark = pytest.mark.integration
CORPUS = corpus()


@pytest.fixture(scope="module")
def jobs(client) -> dict[str, str]:
    """Submit the whole corpus at once (full mode: these pictures hold no person)."""
    style = StyleRef(key=client.upload((STYLES / "strokes.jpg").read_bytes()))
    submitted = {}
    for name, (data, _) in CORPUS.items():
        key = client.upload(data)
        request = JobRequest(photo_key=key, styles=[style], mode="full", options={"iterations": 2})
        submitted[name] = client.submit(request).job_id
    return submitted


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_bad_input_ends_with_its_code(client, jobs, name: str) -> None:
    final = client.wait(jobs[name], timeout=180)
    expected = CORPUS[name][1]
    if expected == "ok":
        assert final.state == JobState.SUCCEEDED, final.error
    else:
        assert final.state == JobState.FAILED
        assert final.error is not None and final.error.code == expected, final.error


def test_exif_rotated_photo_comes_out_upright(client, jobs) -> None:
    final = client.wait(jobs["exif_rotated_jpeg"], timeout=180)
    with Image.open(io.BytesIO(client.download(final.styles[0].result_key))) as result:
        assert result.size == (64, 96), "stored 96x64 with orientation 6: shown 64 wide, 96 high"


def test_the_worker_still_serves_after_the_corpus(client, jobs) -> None:
    for job_id in jobs.values():
        client.wait(job_id, timeout=180)
    photo = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    final = client.wait(client.submit(JobRequest(photo_key=photo, mode="portrait")).job_id, 60)
    assert final.state == JobState.SUCCEEDED
