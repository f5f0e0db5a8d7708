"""The HTTP API over real HTTP: a uvicorn process, httpx, the real worker."""

import json
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from jobstore.tenants import Tenants
from tests.bad_inputs import bmp_rle8, jpeg_scan_bomb, png_chunk_flood
from tests.conftest import PHOTOS, STYLES
from tests.services import tenant_key

pytestmark = pytest.mark.integration


def _bearer(redis: Redis, name: str, **limits: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant_key(redis, name, **limits)}"}


@pytest.fixture(scope="module")
def api(gateway_url: str, redis_client: Redis) -> Iterator[httpx.Client]:
    """The HTTP API as the tenant `app` calls it."""
    with httpx.Client(
        base_url=gateway_url, timeout=60, headers=_bearer(redis_client, "app")
    ) as http:
        yield http


def _upload(api: httpx.Client, path: str, what: str = "photos") -> str:
    answer = api.post(f"/v1/{what}", content=(PHOTOS.parent / path).read_bytes())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["key"])


def test_upload_submit_watch_and_download_over_http(api: httpx.Client) -> None:
    photo = _upload(api, "photos/grace_hopper.png")
    painting = _upload(api, "styles/starry.jpg", "paintings")
    # Its own seed: a result cached here must not answer another test's request.
    request = {"photo_key": photo, "styles": [{"key": painting}], "options": {"seed": 4242}}
    accepted = api.post("/v1/jobs", json=request)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    kinds, final = [], None
    with api.stream("GET", f"/v1/jobs/{job_id}/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        for line in events.iter_lines():
            if line.startswith("event: "):
                kinds.append(line[7:])
            elif line.startswith("data: ") and kinds[-1] == "final":
                final = json.loads(line[6:])
    assert kinds[0] == "progress" and "preview" in kinds and kinds[-1] == "final"
    assert final is not None and final["state"] == "SUCCEEDED"
    status = api.get(f"/v1/jobs/{job_id}").json()
    result = httpx.get(status["styles"][0]["result_url"], timeout=30)
    assert result.status_code == 200 and result.content.startswith(b"\x89PNG")


def test_an_upload_past_the_limit_is_413_while_streaming(api: httpx.Client) -> None:
    def body() -> Iterator[bytes]:  # no Content-Length: the limit is checked as it streams
        for _ in range(64):
            yield b"\xff" * 65536

    answer = api.post("/v1/photos", content=body())
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [("GET", "/v1/jobs/0123456789abcdef", None, 404, "NOT_FOUND"),
     ("GET", "/v1/jobs/x:sweep", None, 404, "NOT_FOUND"),
     ("DELETE", "/v1/jobs/0123456789abcdef", None, 404, "NOT_FOUND"),
     ("POST", "/v1/jobs", {"photo_key": "uploads/x", "styles": []}, 422, "INVALID_REQUEST"),
     ("POST", "/v1/jobs", {"photo_key": "../etc/passwd", "styles": [{"name": "starry"}]}, 422,
      "INVALID_REQUEST"),
     ("POST", "/v1/photos", b"", 400, "INVALID_IMAGE"),
     ("POST", "/v1/photos", b"plain text, named .jpg", 400, "UNSUPPORTED_FORMAT"),
     # 25 KB: a decoder would walk the image 2006 times (api_contracts.jpeg_scans)
     ("POST", "/v1/paintings", jpeg_scan_bomb(), 400, "INVALID_IMAGE"),
     # api_contracts.image_structure: Pillow would parse each chunk in Python
     ("POST", "/v1/photos", png_chunk_flood(), 400, "INVALID_IMAGE"),
     ("POST", "/v1/photos", bmp_rle8(), 400, "UNSUPPORTED_FORMAT")],
)  # fmt: skip
def test_errors_are_json_with_codes(api, method, path, body, status, code) -> None:
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
    answer = api.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_cancel_over_http(api: httpx.Client) -> None:
    photo = _upload(api, "photos/grace_hopper.png")
    painting = _upload(api, "styles/waves.jpg", "paintings")
    request = {"photo_key": photo, "styles": [{"key": painting}], "options": {"iterations": 500}}
    job_id = api.post("/v1/jobs", json=request).json()["job_id"]
    cancelled = api.delete(f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED", cancelled.text


def test_the_catalog_lists_styles_with_thumbnails(api: httpx.Client, client) -> None:
    client.add_style("gateway-starry", (STYLES / "starry.jpg").read_bytes())
    styles = {s["name"]: s for s in api.get("/v1/styles").json()}
    assert httpx.get(styles["gateway-starry"]["thumbnail_url"], timeout=30).status_code == 200


def test_the_committed_openapi_matches_the_code() -> None:
    from gateway.openapi import OPENAPI_FILE, render

    assert OPENAPI_FILE.read_text() == render(), "run `python -m gateway.openapi` and commit"
    spec = json.loads(OPENAPI_FILE.read_text())
    assert {"/v1/photos", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events"} <= set(
        spec["paths"]
    )


def test_without_a_key_401_with_a_revoked_one_403(gateway_url: str, redis_client: Redis) -> None:
    for headers in ({}, {"Authorization": "Bearer bdk_nobody"}, {"X-API-Key": "x"}):
        answer = httpx.get(f"{gateway_url}/v1/styles", headers=headers, timeout=30)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHORIZED"
    headers = _bearer(redis_client, "leaver")
    assert httpx.get(f"{gateway_url}/v1/styles", headers=headers, timeout=30).status_code == 200
    Tenants(redis_client).revoke("leaver")
    answer = httpx.get(f"{gateway_url}/v1/styles", headers=headers, timeout=30)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "FORBIDDEN"


def test_another_tenants_job_is_404(api: httpx.Client, gateway_url: str, redis_client) -> None:
    photo = _upload(api, "photos/grace_hopper.png")
    job_id = api.post("/v1/jobs", json={"photo_key": photo, "mode": "portrait"}).json()["job_id"]
    other = _bearer(redis_client, "other")
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/events")):
        answer = httpx.request(method, f"{gateway_url}/v1/jobs/{job_id}{path}", headers=other)
        assert answer.status_code == 404, (path, answer.text)
        assert "text/event-stream" not in answer.headers.get("content-type", ""), "no stream"
    assert api.get(f"/v1/jobs/{job_id}").status_code == 200


def test_past_a_tenants_rate_429_with_retry_after(gateway_url: str, redis_client) -> None:
    headers = _bearer(redis_client, "tight", outputs_per_minute=2)
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=60) as http:
        photo = _upload(http, "photos/grace_hopper.png")
        request = {"photo_key": photo, "mode": "portrait"}
        assert [http.post("/v1/jobs", json=request).status_code for _ in range(2)] == [202, 202]
        refused = http.post("/v1/jobs", json=request)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_metrics_count_requests_by_route_and_show_queue_depths(api: httpx.Client) -> None:
    from tests.integration.test_metrics import scrape, value

    api.get("/v1/jobs/0123456789abcdef")  # a 404, under the route's template
    samples = scrape(f"{api.base_url}/metrics")
    route = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    assert value(samples, "backdrop_http_requests_total", **route) >= 1
    assert not any("0123456789abcdef" in str(labels) for _, labels in samples), "no id labels"
    queues = {dict(labels)["queue"] for name, labels in samples if name == "backdrop_queue_depth"}
    assert queues == {"gpu", "gpu-batch", "cpu", "notify"}
    assert ("backdrop_held_jobs", (("priority", "batch"),)) in samples
