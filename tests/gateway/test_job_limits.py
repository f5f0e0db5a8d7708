"""Finding 6 of issue 18: the gateway refuses what the workers would fail. With
BACKDROP_QUEUE__MAX_STYLES=4 and __MAX_ITERATIONS=100, the same variables the
workers read, 5 styles or 150 iterations are 422 at submit: nothing queued,
no quota spent (a real gateway process, real Redis and S3 server)."""

from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from tests.conftest import PHOTOS, STYLES
from tests.gateway.raw_http import own_gateway
from tests.services import production_env, tenant_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(s3_endpoint: str, redis_client: Redis, tmp_path_factory) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("job-limits") / "gateway.log"
    key = tenant_key(redis_client, "limited", outputs_per_minute=10)
    limits = {"BACKDROP_QUEUE__MAX_STYLES": "4", "BACKDROP_QUEUE__MAX_ITERATIONS": "100"}
    with (own_gateway(s3_endpoint, log, **limits) as (url, _),
          httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http):  # fmt: skip
        yield http


def _everything(redis: Redis, tenant: str) -> tuple[set[bytes], dict[bytes, bytes | None]]:
    """What a refused submit could have left: a new job record, or any change
    to the tenant's own keys (counters, fair queue). Other tests' jobs may
    still be running on the session's workers and writing their records."""
    jobs = set(redis.scan_iter("backdrop:job:*"))
    mine = {key: redis.dump(key) for key in redis.scan_iter(f"*{tenant}*")}
    return jobs, mine


def test_past_the_services_limits_422_and_nothing_changes(api, redis_client: Redis) -> None:
    photo = api.post("/v1/photos", content=(PHOTOS / "grace_hopper.png").read_bytes())
    painting = api.post("/v1/paintings", content=(STYLES / "starry.jpg").read_bytes())
    styles = [{"key": painting.json()["key"]}] * 5
    request = {"photo_key": photo.json()["key"], "styles": styles}
    before = _everything(redis_client, "limited")
    too_many = api.post("/v1/jobs", json=request)
    too_long = api.post("/v1/jobs", json={**request, "styles": styles[:1],
                                          "options": {"iterations": 150}})  # fmt: skip
    for answer, words in ((too_many, "5 styles; the limit is 4"),
                          (too_long, "150 iterations; the limit is 100")):  # fmt: skip
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == {"code": "INVALID_REQUEST", "message": words}
    assert _everything(redis_client, "limited") == before, "nothing queued, recorded or counted"
    within = api.post("/v1/jobs", json={**request, "styles": styles[:4],
                                        "options": {"iterations": 100}})  # fmt: skip
    assert within.status_code == 202, within.text


def test_production_refuses_a_callback_no_attempt_would_call(
    s3_endpoint: str, redis_client: Redis, tmp_path_factory
) -> None:
    """In production (and with BACKDROP_WEBHOOKS__ALLOW_PORTS, the workers'
    variable) a plain-http, off-list-port or private callback_url is 422 at
    submit with nothing changed; a public https one on a listed port is queued."""
    log = tmp_path_factory.mktemp("callbacks") / "gateway.log"
    key = tenant_key(redis_client, "called-back", outputs_per_minute=10)
    env = production_env(BACKDROP_WEBHOOKS__ALLOW_PORTS="[443, 9443]")
    with (own_gateway(s3_endpoint, log, **env) as (url, _),
          httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http):  # fmt: skip
        photo = http.post("/v1/photos", content=(PHOTOS / "grace_hopper.png").read_bytes())
        request = {"photo_key": photo.json()["key"], "mode": "portrait"}
        before = _everything(redis_client, "called-back")
        for callback, words in (("http://93.184.216.34/hook", "scheme 'http'"),
                                ("https://93.184.216.34:8443/hook", "port 8443"),
                                ("https://[::ffff:169.254.169.254]/", "not public")):  # fmt: skip
            answer = http.post("/v1/jobs", json={**request, "callback_url": callback})
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["code"] == "INVALID_REQUEST"
            assert words in answer.json()["error"]["message"]
        assert _everything(redis_client, "called-back") == before, "nothing queued or counted"
        good = http.post(
            "/v1/jobs", json={**request, "callback_url": "https://hooks.example.com:9443/x"}
        )
        assert good.status_code == 202, good.text
