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
