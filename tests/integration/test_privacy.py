"""What leaves Backdrop: no user metadata in results, unguessable job ids, honest 'not found'."""

import io
import re

import pytest
from PIL import Image

from api_contracts.errors import BackdropError
from api_contracts.models import JobRequest, JobState, StyleRef
from tests.conftest import PHOTOS, STYLES

pytestmark = pytest.mark.integration
GPS_IFD = 0x8825


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0x0131] = "SecretApp 1.0"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    buffer = io.BytesIO()
    with Image.open(PHOTOS / "grace_hopper.png") as photo:
        photo.convert("RGB").save(buffer, format="JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as check:
        assert check.getexif().get_ifd(GPS_IFD), "the test photo really carries GPS"
    return data


def test_results_carry_no_exif_or_gps_from_the_upload(client) -> None:
    photo_key = client.upload(_jpeg_with_gps())
    style = StyleRef(key=client.upload((STYLES / "hubble.jpg").read_bytes()))
    final = client.wait(client.submit(JobRequest(photo_key=photo_key, styles=[style])).job_id, 120)
    assert final.state == JobState.SUCCEEDED
    png = client.download(final.styles[0].result_key)
    with Image.open(io.BytesIO(png)) as result:
        assert result.format == "PNG"
        assert not result.getexif() and "exif" not in result.info
        text = " ".join(str(v) for v in result.info.values())
    assert "PhoneMaker" not in text and "SecretApp" not in text and b"PhoneMaker" not in png


def test_job_ids_are_random_uuid4(client) -> None:
    photo_key = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    ids = {client.submit(JobRequest(photo_key=photo_key, mode="portrait")).job_id for _ in range(3)}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", i) for i in ids)
    for job_id in ids:
        client.wait(job_id, timeout=60)


def test_unknown_job_id_is_not_found_not_pending(client) -> None:
    with pytest.raises(BackdropError) as info:
        client.status("0123456789abcdef0123456789abcdef")
    assert info.value.code == "NOT_FOUND"
    with pytest.raises(BackdropError) as info:
        client.cancel("0123456789abcdef0123456789abcdef")
    assert info.value.code == "NOT_FOUND"


def test_pictures_served_across_jobs_name_no_job(client) -> None:
    # Results and previews are keyed by content and reused by any tenant's
    # identical request: a job id in them would hand one user another's.
    photo_key = client.upload((PHOTOS / "grace_hopper.png").read_bytes())
    style = StyleRef(key=client.upload((STYLES / "waves.jpg").read_bytes()))
    request = JobRequest(photo_key=photo_key, styles=[style], options={"iterations": 2})
    first, second = (client.wait(client.submit(request).job_id, 120) for _ in range(2))
    assert first.state == second.state == JobState.SUCCEEDED
    assert second.styles[0].result_key == first.styles[0].result_key, "the second reused it"
    for key in (first.styles[0].result_key, first.styles[0].preview_key):
        assert key is not None
        png = client.download(key)
        with Image.open(io.BytesIO(png)) as picture:
            text = " ".join(str(v) for v in picture.info.values())
        for job in (first, second):
            assert job.job_id not in text and job.job_id.encode() not in png
        assert '"index"' not in text
