"""Finding 9 of issue 18: security headers on the page and the API, no CDN
scripts in production (/docs off), the tenant name `default` reserved, a
revoked key's open event streams ended, and a tenant's open streams bounded
(real gateway processes, Redis, S3 server)."""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from redis import Redis

from api_contracts.errors import BackdropError
from jobstore.tenants import Limits, Tenants
from tests.conftest import PHOTOS, REPO
from tests.gateway.raw_http import connect, own_gateway
from tests.services import production_env, service_env, tenant_key

pytestmark = pytest.mark.integration
AUTH_SECONDS = 0.5
STREAMS_PER_TENANT, STREAMS_IN_ALL = 2, 3


# Its own database: the event stream tests need jobs that stay queued, which
# a worker of the integration tests (on the session's database) would run.
QUIET_REDIS = "redis://127.0.0.1:6379/8"


@pytest.fixture(scope="module")
def quiet_redis() -> Iterator[Redis]:
    client = Redis.from_url(QUIET_REDIS)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="module")
def gateway_url(s3_endpoint: str, quiet_redis: Redis, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("hardening") / "gateway.log"
    env = {"BACKDROP_REDIS__URL": QUIET_REDIS,
           "BACKDROP_GATEWAY__EVENTS_AUTH_SECONDS": str(AUTH_SECONDS),
           "BACKDROP_GATEWAY__EVENTS_POLL_SECONDS": "0.1",
           "BACKDROP_GATEWAY__EVENTS_PER_TENANT": str(STREAMS_PER_TENANT),
           "BACKDROP_GATEWAY__EVENTS_TOTAL": str(STREAMS_IN_ALL)}  # fmt: skip
    with own_gateway(s3_endpoint, log, **env) as (url, _):
        yield url


@pytest.mark.parametrize("path", ["/", "/page/page.js", "/v1/limits", "/v1/styles", "/nowhere"])
def test_every_answer_has_the_security_headers(gateway_url: str, path: str) -> None:
    headers = httpx.get(gateway_url + path, timeout=30).headers
    policy = dict(p.strip().split(" ", 1) for p in headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'", "no inline script, no other origin"
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    if path.startswith("/v1/"):  # presigned URLs: no shared cache may keep them
        assert headers["cache-control"] == "no-store"


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._script = tag == "script"
        if tag == "script" and not dict(attrs).get("src"):
            self.found.append("a <script> without src")
        self.found += [f"{tag} {name}=" for name, _ in attrs if name.startswith("on")]
        self.found += [f"{tag} style=" for name, _ in attrs if name == "style"]

    def handle_data(self, data: str) -> None:
        if self._script and data.strip():
            self.found.append("inline script text")


def test_the_page_needs_nothing_the_policy_refuses(gateway_url: str) -> None:
    checker = _Inline()
    checker.feed(httpx.get(gateway_url + "/", timeout=30).text)
    assert checker.found == []


def test_production_serves_no_docs_from_a_cdn(s3_endpoint: str, tmp_path_factory) -> None:
    log = tmp_path_factory.mktemp("production") / "gateway.log"
    with own_gateway(s3_endpoint, log, **production_env()) as (url, _):
        for path in ("/docs", "/redoc"):
            answer = httpx.get(url + path, timeout=30)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
        assert httpx.get(url + "/openapi.json", timeout=30).json()["info"]["title"] == "Backdrop"


def test_the_tenant_name_default_is_reserved(redis_client: Redis, s3_endpoint: str) -> None:
    with pytest.raises(BackdropError, match="reserved"):
        Tenants(redis_client).add("default", Limits())
    command = [sys.executable, "-m", "worker.cli", "tenants", "add", "default"]
    done = subprocess.run(command, env=service_env(s3_endpoint), cwd=REPO, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "'default' is reserved" in done.stdout + done.stderr
    assert Tenants(redis_client).get("default") is None


def test_a_revoked_keys_event_stream_ends(gateway_url: str, quiet_redis: Redis) -> None:
    headers = {"Authorization": f"Bearer {tenant_key(quiet_redis, 'watcher')}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=30) as http:
        photo = http.post("/v1/photos", content=(PHOTOS / "grace_hopper.png").read_bytes())
        job = http.post("/v1/jobs", json={"photo_key": photo.json()["key"], "mode": "portrait"})
        assert job.status_code == 202, job.text  # no worker here: it stays queued
        kinds, last = [], ""
        with http.stream("GET", f"/v1/jobs/{job.json()['job_id']}/events") as events:
            lines = events.iter_lines()
            while not kinds:
                line = next(lines)
                kinds += [line[7:]] if line.startswith("event: ") else []
            Tenants(quiet_redis).revoke("watcher")
            revoked = time.monotonic()
            for line in lines:  # the read timeout (30 s) fails the test if it never ends
                kinds += [line[7:]] if line.startswith("event: ") else []
                last = line[6:] if line.startswith("data: ") else last
            seconds = time.monotonic() - revoked
    assert kinds[0] == "progress" and kinds[-1] == "error"
    assert json.loads(last)["error"]["code"] == "FORBIDDEN"
    assert seconds < AUTH_SECONDS + 2, f"{seconds:.1f} s"


def _queued_job(http: httpx.Client) -> str:
    photo = http.post("/v1/photos", content=(PHOTOS / "grace_hopper.png").read_bytes())
    job = http.post("/v1/jobs", json={"photo_key": photo.json()["key"], "mode": "portrait"})
    assert job.status_code == 202, job.text  # no worker here: it stays queued
    return str(job.json()["job_id"])


def _open_stream(url: str, job_id: str, key: str) -> tuple[int, socket.socket]:
    """A raw connection that asked for the job's events: the status, and the
    socket (kept open; closing it is a caller hanging up). A 200 has sent its
    first event before this returns."""
    lines = [
        f"GET /v1/jobs/{job_id}/events HTTP/1.1",
        "Host: gateway",
        f"Authorization: Bearer {key}",
    ]
    head = "\r\n".join(lines) + "\r\n\r\n"
    sock = connect(url, head)
    data = b""
    while b"\r\n\r\n" not in data or (data.startswith(b"HTTP/1.1 200") and b"event: " not in data):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return int(data.split(b" ", 2)[1]), sock


def test_one_tenants_open_event_streams_are_bounded(gateway_url: str, quiet_redis: Redis) -> None:
    """Each open stream reads its job twice a second: unbounded, one tenant's
    few hundred filled the gateway's core. Past the bound: 429, others unhurt,
    and a stream whose caller hangs up gives its place back."""
    keys = {t: tenant_key(quiet_redis, t) for t in ("streams-a", "streams-b")}
    jobs = {}
    for tenant, key in keys.items():
        with httpx.Client(base_url=gateway_url, timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
            jobs[tenant] = _queued_job(http)
    a = ("streams-a", jobs["streams-a"], keys["streams-a"])
    held = [_open_stream(gateway_url, a[1], a[2]) for _ in range(STREAMS_PER_TENANT)]
    assert [status for status, _ in held] == [200] * STREAMS_PER_TENANT
    status, refused = _open_stream(gateway_url, a[1], a[2])
    refused.close()
    assert status == 429
    other, sock = _open_stream(gateway_url, jobs["streams-b"], keys["streams-b"])
    sock.close()
    assert other == 200, "another tenant is not held back"
    held.pop()[1].close()  # a caller hangs up: its place comes back
    deadline = time.monotonic() + 10
    while (again := _open_stream(gateway_url, a[1], a[2]))[0] == 429:
        again[1].close()
        assert time.monotonic() < deadline, "the closed stream's place never came back"
        time.sleep(0.1)
    for _, sock in [*held, again]:
        sock.close()


def test_all_tenants_open_event_streams_are_bounded(gateway_url: str, quiet_redis: Redis) -> None:
    """Within each tenant's bound, many keys' streams together filled the
    gateway's core as one tenant's had: past the gateway's bound, 503."""
    names = ("all-a", "all-b", "all-c")
    keys = {t: tenant_key(quiet_redis, t) for t in names}
    jobs = {}
    for tenant, key in keys.items():
        with httpx.Client(base_url=gateway_url, timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as http:  # fmt: skip
            jobs[tenant] = _queued_job(http)
    held: list = []
    try:
        deadline = time.monotonic() + 10  # earlier tests' closed streams give their places back
        for tenant in ("all-a", "all-a", "all-b"):
            while (opened := _open_stream(gateway_url, jobs[tenant], keys[tenant]))[0] == 429:
                opened[1].close()
                assert time.monotonic() < deadline, "an earlier stream's place never came back"
                time.sleep(0.1)
            held.append(opened)
        status, refused = _open_stream(gateway_url, jobs["all-c"], keys["all-c"])
        refused.close()
        assert status == 503, "a third tenant's first stream went past the gateway's bound"
    finally:
        for _, sock in held:
            sock.close()
