"""Finding 7 of issue 18: every error answer is the JSON contract,
`{"error": {"code", "message"}}`, also the framework's own; an object store
that is down is 503 STORAGE_UNAVAILABLE within seconds; a client that aborts
an upload is one quiet log line (real gateway processes, Redis, S3 server)."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from tests.conftest import PHOTOS
from tests.gateway.raw_http import connect, own_gateway, post_head, push
from tests.services import free_port, tenant_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(s3_endpoint: str, redis_client: Redis, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("error-contract") / "gateway.log"
    with own_gateway(s3_endpoint, log) as (url, _):
        yield url, log


def _key(redis: Redis) -> dict[str, str]:
    return {"X-API-Key": tenant_key(redis, "errors")}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [("GET", "/v1/nothing-here", None, 404, "NOT_FOUND"),
     ("GET", "/favicon.ico", None, 404, "NOT_FOUND"),
     ("PUT", "/v1/jobs", b"{}", 405, "INVALID_REQUEST"),
     ("PATCH", "/v1/styles", None, 405, "INVALID_REQUEST"),
     ("POST", "/v1/jobs", b'{"photo_key": ', 422, "INVALID_REQUEST"),
     ("POST", "/v1/jobs", b"\xff\xfe not even text", 422, "INVALID_REQUEST")],
)  # fmt: skip
def test_the_frameworks_errors_are_the_contract(
    gateway, redis_client: Redis, method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    url, _ = gateway
    headers = {**_key(redis_client), "Content-Type": "application/json"}
    answer = httpx.request(method, url + path, content=body, headers=headers, timeout=30)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]
    if status == 405:
        assert answer.headers["allow"]


def test_an_aborted_upload_is_one_quiet_line(gateway, redis_client: Redis) -> None:
    url, log = gateway
    sock = connect(url, post_head("/v1/photos", 4 * 1024 * 1024, **_key(redis_client)))
    push(sock, 512 * 1024, seconds=2)
    sock.close()  # mid-body
    deadline = time.monotonic() + 10
    while "went away" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert "went away mid-request: POST /v1/photos" in text
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]


@pytest.fixture(scope="module")
def storage_down(redis_client: Redis, tmp_path_factory) -> Iterator[str]:
    """A gateway whose object store address has nothing listening."""
    log = tmp_path_factory.mktemp("storage-down") / "gateway.log"
    from tests.services import gateway_process, service_env

    with gateway_process(service_env(f"127.0.0.1:{free_port()}"), log) as (url, _):
        yield url


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/photos"), ("POST", "/v1/paintings"), ("GET", "/v1/styles")]
)
def test_storage_down_is_503_in_seconds(
    storage_down: str, redis_client: Redis, method: str, path: str
) -> None:
    photo = (PHOTOS / "grace_hopper.png").read_bytes() if method == "POST" else None
    start = time.monotonic()
    answer = httpx.request(method, storage_down + path, content=photo, headers=_key(redis_client),
                           timeout=30)  # fmt: skip
    seconds = time.monotonic() - start
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert seconds < 3, f"{seconds:.1f} s"
