"""The gateway's app with settings of a test's own, called in-process (httpx's
ASGI transport: no server, no port) against the real Redis and S3 server: the
routes take their settings, client and caller from the app they belong to."""

import asyncio

import httpx
import pytest
from redis import Redis

from gateway.app import create_app
from gateway.settings import GatewayPart, GatewaySettings
from jobstore.connection import RedisConnection, StorageConnection
from tests.services import ACCESS, REDIS_URL, SECRET, tenant_key

pytestmark = pytest.mark.integration


def _settings(s3_endpoint: str) -> GatewaySettings:
    storage = StorageConnection(endpoint=s3_endpoint, access_key=ACCESS, secret_key=SECRET)
    return GatewaySettings(redis=RedisConnection(url=REDIS_URL), storage=storage,
                           gateway=GatewayPart(max_upload_bytes=12345))  # fmt: skip


async def _calls(settings: GatewaySettings, key: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        return [await http.get("/v1/limits"),
                await http.get("/v1/jobs/0123456789abcdef", headers={"X-API-Key": key}),
                await http.get("/v1/styles", headers={"X-API-Key": "bdk_nobody"})]  # fmt: skip


def test_an_app_of_its_own_settings_in_process(s3_endpoint: str, redis_client: Redis) -> None:
    limits, missing, stranger = asyncio.run(
        _calls(_settings(s3_endpoint), tenant_key(redis_client, "in-process"))
    )
    assert limits.json() == {"max_upload_bytes": 12345}
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert stranger.status_code == 401 and stranger.json()["error"]["code"] == "UNAUTHORIZED"


def test_a_full_job_store_is_503_with_a_time_to_come_back(s3_endpoint: str, tmp_path) -> None:
    """Redis at its maxmemory with noeviction (deploy/redis.conf) refuses
    writes: a submit is 503 STORAGE_UNAVAILABLE with Retry-After, not a 500;
    reading a job still works."""
    from minio import Minio

    from tests.conftest import PHOTOS
    from tests.faults.harness import OwnRedis

    s3 = Minio(endpoint=s3_endpoint, access_key=ACCESS, secret_key=SECRET, secure=False)
    if not s3.bucket_exists(bucket_name="backdrop-inputs"):  # workers make it; none here
        s3.make_bucket(bucket_name="backdrop-inputs")
    server = OwnRedis(tmp_path)
    try:
        redis = Redis.from_url(server.url)
        key = tenant_key(redis, "full-store")
        storage = StorageConnection(endpoint=s3_endpoint, access_key=ACCESS, secret_key=SECRET)
        settings = GatewaySettings(redis=RedisConnection(url=server.url), storage=storage)

        async def calls() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=create_app(settings))
            auth = {"X-API-Key": key}
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                photo = await http.post("/v1/photos", content=(PHOTOS / "parrot.jpg").read_bytes(),
                                        headers=auth)  # fmt: skip
                request = {"photo_key": photo.json()["key"], "mode": "portrait"}
                job = await http.post("/v1/jobs", json=request, headers=auth)
                # Past its ceiling (as a week of records would bring it): every
                # write is refused, nothing is evicted.
                used = int(redis.info("memory")["used_memory"])
                redis.config_set("maxmemory-policy", "noeviction")
                redis.config_set("maxmemory", used - 64 * 1024)
                return [
                    photo,
                    job,
                    await http.post("/v1/jobs", json=request, headers=auth),
                    await http.get(f"/v1/jobs/{job.json()['job_id']}", headers=auth),
                ]

        photo, job, refused, status = asyncio.run(calls())
    finally:
        server.stop()
    assert photo.status_code == 201 and job.status_code == 202, job.text
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert int(refused.headers["Retry-After"]) > 0
    assert status.status_code == 200, "reads still answer"
