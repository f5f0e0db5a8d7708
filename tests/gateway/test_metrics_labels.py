"""Finding 3 of issue 18: nobody can grow the gateway's /metrics. Every label
comes from a closed set, so made-up methods and paths add no series (a real
gateway process; keyless requests, as anyone could send)."""

import random
import string
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.raw_http import own_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway_url(s3_endpoint: str, redis_client, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("metrics-labels") / "gateway.log"
    with own_gateway(s3_endpoint, log) as (url, _):
        yield url


def _junk(rng: random.Random) -> tuple[str, str]:
    method = "X" + "".join(rng.choices(string.ascii_uppercase, k=12))
    path = "/" + "/".join("".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(3))
    return rng.choice([method, "GET", "POST"]), rng.choice([path, f"/v1/jobs/{path[1:9]}"])


def test_made_up_methods_and_paths_add_no_series(gateway_url: str) -> None:
    rng = random.Random(18)
    with httpx.Client(base_url=gateway_url, timeout=30) as http:
        for method in ("XJUNK", "GET", "POST"):  # each kind of junk once: its series exist
            for path in ("/junk/path", "/v1/jobs/junk"):
                http.request(method, path)
        http.get("/metrics")  # and its own series
        before = len(http.get("/metrics").content)
        for _ in range(150):
            http.request(*_junk(rng))
        text = http.get("/metrics").text
    grown = len(text) - before
    print(f"\n/metrics grew {grown} bytes over 150 junk requests")
    assert grown < 400, f"/metrics grew by {grown} bytes"
    assert 'method="other"' in text and 'route="unmatched"' in text


def test_with_a_token_metrics_answers_only_its_bearer(s3_endpoint: str, tmp_path_factory) -> None:
    """docker-compose publishes the API's port whole: with the token set,
    anyone else gets a 404, and Prometheus (its bearer) the metrics."""
    log = tmp_path_factory.mktemp("metrics-token") / "gateway.log"
    token = "metrics-token-0123456789"
    with own_gateway(s3_endpoint, log, BACKDROP_GATEWAY__METRICS_TOKEN=token) as (url, _):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token},
                        {"X-API-Key": token}):  # fmt: skip
            answer = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
            assert answer.status_code == 404, headers
            assert "backdrop_" not in answer.text
        scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scraped.status_code == 200 and "backdrop_http_requests_total" in scraped.text
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
