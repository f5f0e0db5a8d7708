"""Uploads belong to the tenant that made them (real gateway, worker, Redis and
S3 server): another tenant can neither use nor probe for them, uploads have an
hourly quota, and both the claim and the stored object expire."""

import httpx
import pytest
from minio import Minio
from redis import Redis

from jobstore.redis_keys import UPLOAD_OWNER_PREFIX
from tests.conftest import PHOTOS, STYLES
from tests.services import ACCESS, SECRET, tenant_key

pytestmark = pytest.mark.integration
PHOTO = (PHOTOS / "dog_segmentation.png").read_bytes()


def _http(gateway_url: str, redis: Redis, name: str, **limits: int) -> httpx.Client:
    key = tenant_key(redis, name, **limits)
    return httpx.Client(base_url=gateway_url, headers={"X-API-Key": key}, timeout=60)


def _portrait(http: httpx.Client, photo_key: str) -> httpx.Response:
    return http.post("/v1/jobs", json={"photo_key": photo_key, "mode": "portrait"})


def test_another_tenants_upload_is_not_found_like_one_that_never_was(
    gateway_url: str, redis_client: Redis
) -> None:
    with (_http(gateway_url, redis_client, "owner") as owner,
          _http(gateway_url, redis_client, "prober") as prober):  # fmt: skip
        key = owner.post("/v1/photos", content=PHOTO).json()["key"]
        jobs_before = set(redis_client.scan_iter("backdrop:job:*"))
        theirs = _portrait(prober, key)
        never = _portrait(prober, "uploads/" + "0" * 64)
        assert theirs.status_code == never.status_code == 404, theirs.text
        assert theirs.json()["error"]["code"] == never.json()["error"]["code"] == "INPUT_NOT_FOUND"
        assert theirs.json()["error"]["message"].replace(key, "K") == never.json()["error"][
            "message"
        ].replace("uploads/" + "0" * 64, "K"), "the answer tells nothing about the object"
        assert set(redis_client.scan_iter("backdrop:job:*")) == jobs_before, "nothing queued"
        # The same bytes uploaded by the prober itself: its own claim, one object.
        assert prober.post("/v1/photos", content=PHOTO).json()["key"] == key
        assert _portrait(prober, key).status_code == 202
        assert _portrait(owner, key).status_code == 202


def test_another_tenants_painting_is_not_found_in_either_style_field(
    gateway_url: str, redis_client: Redis
) -> None:
    """The paintings of a request are held to the caller's own uploads as the
    photo is: a background painting, and the subject's in dual mode."""
    with (_http(gateway_url, redis_client, "painter") as owner,
          _http(gateway_url, redis_client, "borrower") as borrower):  # fmt: skip
        theirs = owner.post("/v1/paintings", content=PHOTO).json()["key"]
        mine = borrower.post("/v1/photos", content=(PHOTOS / "grace_hopper.png").read_bytes())
        photo = mine.json()["key"]
        own = borrower.post("/v1/paintings", content=(STYLES / "starry.jpg").read_bytes())
        own_painting = own.json()["key"]
        jobs_before = set(redis_client.scan_iter("backdrop:job:*"))
        asks = [{"photo_key": photo, "styles": [{"key": theirs}]},
                {"photo_key": photo, "mode": "dual", "styles": [{"key": own_painting}],
                 "subject_style": {"key": theirs}}]  # fmt: skip
        for ask in asks:
            answer = borrower.post("/v1/jobs", json=ask)
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "INPUT_NOT_FOUND"
        assert set(redis_client.scan_iter("backdrop:job:*")) == jobs_before, "nothing queued"
        own_dual = {**asks[1], "subject_style": {"key": own_painting}}
        assert borrower.post("/v1/jobs", json=own_dual).status_code == 202, "its own: accepted"


def test_uploads_past_the_hourly_quota_are_429(gateway_url: str, redis_client: Redis) -> None:
    with _http(gateway_url, redis_client, "uploader", uploads_per_hour=2) as http:
        codes = [http.post("/v1/photos", content=PHOTO).status_code for _ in range(3)]
        refused = http.post("/v1/paintings", content=PHOTO)
    assert codes == [201, 201, 429]
    assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3601


def test_a_claim_and_its_object_expire(gateway_url: str, redis_client: Redis, s3_endpoint) -> None:
    with _http(gateway_url, redis_client, "expiring") as http:
        key = http.post("/v1/photos", content=PHOTO).json()["key"]
    ttl = redis_client.ttl(f"{UPLOAD_OWNER_PREFIX}expiring:{key}")
    assert 7 * 86400 - 60 < ttl <= 7 * 86400, "the default: a week"
    s3 = Minio(endpoint=s3_endpoint, access_key=ACCESS, secret_key=SECRET, secure=False)
    rules = s3.get_bucket_lifecycle(bucket_name="backdrop-inputs").rules  # set by the worker
    uploads = [r for r in rules if r.rule_filter and r.rule_filter.prefix == "uploads/"]
    assert uploads and uploads[0].expiration and uploads[0].expiration.days == 8
    # Results hold people's photographs too, and a new seed makes a new object.
    kept = s3.get_bucket_lifecycle(bucket_name="backdrop-results").rules
    assert [r.expiration.days for r in kept if r.expiration] == [30]
