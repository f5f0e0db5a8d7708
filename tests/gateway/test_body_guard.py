"""Finding 2 of issue 18: a body is read only for a caller with a key, under a
size cap and a deadline, and headers that trickle in are cut off (a real
gateway process, real Redis and S3 server; HTTP by hand over sockets)."""

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from tests.gateway.raw_http import (
    connect,
    own_gateway,
    post_head,
    push,
    push_raw,
    read_all,
    rss_kib,
)
from tests.services import tenant_key

pytestmark = pytest.mark.integration
BODY_SECONDS, HEADER_SECONDS = 2.0, 2.0


STALL_SECONDS, JSON_BODIES, BODY_MIB, UPLOAD_SECONDS = 2.0, 3, 60, 8.0


@pytest.fixture(scope="module")
def gateway_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("body-guard") / "gateway.log"


@pytest.fixture(scope="module")
def gateway(s3_endpoint: str, redis_client: Redis, gateway_log: Path) -> Iterator[tuple[str, int]]:
    with own_gateway(
        s3_endpoint,
        gateway_log,
        BACKDROP_GATEWAY__JSON_BODY_SECONDS=str(BODY_SECONDS),
        BACKDROP_GATEWAY__HEADER_SECONDS=str(HEADER_SECONDS),
        BACKDROP_GATEWAY__WRITE_STALL_SECONDS=str(STALL_SECONDS),
        BACKDROP_GATEWAY__JSON_BODIES_PER_TENANT=str(JSON_BODIES),
        BACKDROP_GATEWAY__BODY_BYTES_IN_FLIGHT=str(BODY_MIB << 20),
        BACKDROP_GATEWAY__UPLOAD_BODY_SECONDS=str(UPLOAD_SECONDS),
    ) as started:
        yield started


def _status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/photos", "/v1/paintings"])
def test_without_a_key_401_comes_before_the_body(gateway, path: str) -> None:
    url, _ = gateway
    sock = connect(url, post_head(path, 32 * 1024 * 1024))
    with sock:
        push(sock, 64 * 1024, seconds=1)  # 32 MiB announced, 64 KiB sent: the rest never comes
        answer, _ = read_all(sock, timeout=5)  # answered and closed without waiting for it
    assert _status_and_error(answer) == (401, "UNAUTHORIZED"), answer[:300]


def test_stalled_keyless_bodies_hold_no_memory(gateway) -> None:
    """Eight connections each push 31 MiB and stall before the last byte: the
    gateway read them whole (about 250 MiB) before it looked for a key."""
    url, pid = gateway
    before = rss_kib(pid)
    sockets = [connect(url, post_head("/v1/jobs", 31 * 1024 * 1024)) for _ in range(8)]
    try:
        for sock in sockets:
            push(sock, 31 * 1024 * 1024 - 1, seconds=1.5)
        time.sleep(0.5)
        grown = rss_kib(pid) - before
    finally:
        for sock in sockets:
            sock.close()
    print(f"\ngateway RSS grew {grown} KiB with 8 stalled keyless 31 MiB bodies")
    assert grown < 16 * 1024, f"the gateway grew by {grown} KiB"


def test_a_json_body_past_the_cap_is_413(gateway, redis_client: Redis) -> None:
    url, _ = gateway
    headers = {"X-API-Key": tenant_key(redis_client, "big-bodies")}
    big = json.dumps({"photo_key": "uploads/x", "mode": "portrait", "pad": "x" * 300_000})

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 16384):
            yield big[i : i + 16384].encode()

    for body in (big.encode(), streamed()):
        answer = httpx.post(f"{url}/v1/jobs", content=body, headers=headers, timeout=30)
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "INVALID_REQUEST"


def test_a_trickled_body_is_cut_off(gateway, redis_client: Redis) -> None:
    url, _ = gateway
    sock = connect(
        url, post_head("/v1/jobs", 1000, **{"X-API-Key": tenant_key(redis_client, "slow")})
    )

    def trickle() -> None:
        for _ in range(100):
            try:
                sock.send(b" ")
            except OSError:
                return
            time.sleep(0.2)

    threading.Thread(target=trickle, daemon=True).start()
    with sock:
        answer, seconds = read_all(sock, timeout=BODY_SECONDS + 8)
    assert seconds < BODY_SECONDS + 3, seconds
    assert _status_and_error(answer)[0] == 408, answer[:300]


def test_headers_that_trickle_in_are_cut_off(gateway) -> None:
    url, _ = gateway
    sock = connect(url, "GET /v1/limits HTTP/1.1\r\nHost: gateway\r\n")

    def trickle() -> None:
        for i in range(100):
            try:
                sock.send(f"X-Slow-{i}: 1\r\n".encode())
            except OSError:
                return
            time.sleep(0.2)

    threading.Thread(target=trickle, daemon=True).start()
    with sock:
        answer, seconds = read_all(sock, timeout=HEADER_SECONDS + 8)
    assert answer == b"" and seconds < HEADER_SECONDS + 3, (seconds, answer[:200])


PNG_HEAD = b"\x89PNG\r\n\x1a\n"  # the gateway checks the signature; workers decode


def _png(n: int) -> bytes:
    """A PNG's signature and one chunk of n bytes: past the gateway's checks
    (n zeros alone read as n / 12 empty chunks, past its cap)."""
    return PNG_HEAD + n.to_bytes(4, "big") + b"prVt" + bytes(n)


def _head_status(sock: socket.socket, timeout: float = 5.0) -> int:
    """The status of the answer's head, waiting at most `timeout` for it."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return int(data.split()[1])


def _upload(url: str, key: str, size: int) -> httpx.Response:
    """A small PNG of `size` bytes uploaded whole."""
    return httpx.post(url + "/v1/photos", content=_png(size), timeout=30,
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip


def _upload_head(url: str, key: str, length: int = 10_000_000) -> socket.socket:
    return connect(url, post_head("/v1/photos", length, Authorization=f"Bearer {key}"))


def test_an_upload_past_the_hours_quota_is_429_before_its_body(gateway, redis_client) -> None:
    """The hour's quota was taken only when the upload was stored: a tenant
    past it made the gateway read 25 MB after 25 MB, only to refuse each."""
    url, _ = gateway
    key = tenant_key(redis_client, "hour-full", uploads_per_hour=1)
    for _ in range(2):  # a second go only if the first straddled an hour's turn
        hour = int(time.time()) // 3600
        first = _upload(url, key, 64)
        with _upload_head(url, key) as sock:  # 10 MB announced, not a byte of it sent
            status = _head_status(sock)
        if int(time.time()) // 3600 == hour:
            break
    assert first.status_code == 201, first.text
    assert status == 429


def test_an_hours_upload_bytes_are_bounded_per_tenant(gateway, redis_client) -> None:
    """The hour's count alone let a tenant store 600 x 25 MB of noise an hour
    in the object store every tenant shares: its bytes are bounded too, a
    body announced past them refused before it is read."""
    url, _ = gateway
    key = tenant_key(redis_client, "mb-full", upload_mb_per_hour=1)
    auth = {"Authorization": f"Bearer {key}"}
    for _ in range(2):  # a second go only if the first straddled an hour's turn
        hour = int(time.time()) // 3600
        codes = [httpx.post(url + "/v1/photos", content=_png(n), timeout=30,
                            headers=auth).status_code for n in (600_000, 600_001)]  # fmt: skip
        with _upload_head(url, key, length=500_000) as sock:  # announced, not a byte sent
            announced = _head_status(sock)
        small = httpx.post(url + "/v1/photos", content=_png(64), timeout=30,
                           headers=auth)  # fmt: skip
        if int(time.time()) // 3600 == hour:
            break
    assert codes == [201, 429], "the second 600 KB would pass 1 MB"
    assert announced == 429
    assert small.status_code == 201, "a refused upload's bytes are not counted"
    other = tenant_key(redis_client, "mb-other", upload_mb_per_hour=1)
    theirs = _upload(url, other, 600_002)
    assert theirs.status_code == 201, "another tenant's hour is its own"


def test_one_tenants_uploads_at_once_are_bounded(gateway, redis_client) -> None:
    """Each upload is held whole until stored: one tenant's many parallel 25 MB
    bodies were gigabytes of gateway. Past the bound 429 before the body;
    another tenant is not held back, and a finished upload frees its place."""
    url, _ = gateway
    key, other = tenant_key(redis_client, "many-uploads"), tenant_key(redis_client, "one-upload")
    held = [_upload_head(url, key) for _ in range(4)]  # the default bound
    try:
        for sock in held:
            push(sock, 64 * 1024, seconds=1)  # being read: each holds its place
        time.sleep(0.5)
        with _upload_head(url, key) as sock:
            assert _head_status(sock) == 429
        small = _upload(url, other, 64)
        assert small.status_code == 201, small.text
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the closed uploads' places come back
        again = _upload(url, key, 65)
        if again.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert again.status_code == 201, again.text


def _trickle(sock: socket.socket, pause: float = 0.3) -> None:
    """One byte every `pause` s in the background, until the connection closes."""

    def send() -> None:
        for _ in range(200):
            try:
                sock.send(b" ")
            except OSError:
                return
            time.sleep(pause)

    threading.Thread(target=send, daemon=True).start()


def test_a_body_trickled_after_its_answer_does_not_hold_the_connection(gateway) -> None:
    """A request answered without its body being read (a route that takes
    none), the client sending a byte now and then: each byte cancelled
    uvicorn's keep-alive timer and nothing re-armed it, so one keyless client
    held a connection for ever. It has as long as an upload's body now."""
    url, _ = gateway
    head = "GET /v1/limits HTTP/1.1\r\nHost: gateway\r\nContent-Length: 1000000000\r\n\r\n"
    sock = connect(url, head)
    _trickle(sock)
    with sock:
        answer, seconds = read_all(sock, timeout=UPLOAD_SECONDS + 10)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]  # answered first
    assert seconds < UPLOAD_SECONDS + 3, f"open {seconds:.1f} s"


def test_a_connection_whose_answered_body_ends_serves_on(gateway) -> None:
    """The same early answer, then the body's end and more requests on the
    connection, past the drain's deadline: served, as keep-alive promises
    (the deadline's timer once aborted whatever the connection did next)."""
    url, _ = gateway
    head = "GET /v1/limits HTTP/1.1\r\nHost: gateway\r\nContent-Length: 10\r\n\r\n"
    again = b"GET /v1/limits HTTP/1.1\r\nHost: gateway\r\n\r\n"
    with connect(url, head) as sock:
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"x" * 10)  # the body, after its answer
        started = time.monotonic()
        while time.monotonic() - started < UPLOAD_SECONDS + 2:
            time.sleep(1.0)
            sock.sendall(again)
            assert _answer(sock).startswith(b"HTTP/1.1 200"), time.monotonic() - started


def _answer(sock: socket.socket) -> bytes:
    """One whole answer (head and its Content-Length of body)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_client_that_reads_no_answers_is_closed(gateway, gateway_log: Path) -> None:
    """Pipelined requests whose answers are never read leave the connection
    paused on write, where no timer ran: held for ever at no cost."""
    url, _ = gateway
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.connect((parts.hostname, parts.port))
    request = b"GET /page/page.js HTTP/1.1\r\nHost: gateway\r\n\r\n"
    answer = len(httpx.get(url + "/page/page.js", timeout=30).content)
    with sock:
        push_raw(sock, request * 3000, seconds=STALL_SECONDS)  # about 40 MB of answers
        time.sleep(STALL_SECONDS + 2)
        read, _ = read_all(sock, timeout=10)  # whatever the gateway had sent, then closed
    assert len(read) < 1000 * answer, "the gateway waited and sent every answer"
    assert "stopped reading its answers" in gateway_log.read_text()


def test_one_tenants_json_bodies_being_read_are_bounded(gateway, redis_client) -> None:
    """Job requests whose bodies stall one byte short: each was held whole for
    the body's deadline, from as many connections as a key liked."""
    url, _ = gateway
    key = tenant_key(redis_client, "json-bodies")
    other = tenant_key(redis_client, "json-other")
    held = [connect(url, post_head("/v1/jobs", 200_000, **{"X-API-Key": key}))
            for _ in range(JSON_BODIES)]  # fmt: skip
    try:
        for sock in held:
            push(sock, 1000, seconds=0.5)
        time.sleep(0.2)
        with connect(url, post_head("/v1/jobs", 200_000, **{"X-API-Key": key})) as sock:
            assert _head_status(sock) == 429
        theirs = httpx.post(url + "/v1/jobs", json={"photo_key": "nope"}, timeout=30,
                            headers={"X-API-Key": other})  # fmt: skip
        assert theirs.status_code != 429, "another tenant is not held back"
    finally:
        for sock in held:
            sock.close()


def test_the_bodies_one_gateway_holds_are_bounded_for_all_tenants(gateway, redis_client) -> None:
    """Each tenant's uploads at once are bounded, but many keys' stalled 25 MB
    bodies together were not: past the process's budget 503 before the body;
    a small upload still fits, and closed uploads give their room back."""
    url, _ = gateway
    keys = [tenant_key(redis_client, f"budget-{i}") for i in range(3)]
    held = [_upload_head(url, keys[i], length=25 << 20) for i in (0, 1)]  # 50 of 60 MiB
    try:
        for sock in held:
            push(sock, 64 * 1024, seconds=1)
        time.sleep(0.3)
        with _upload_head(url, keys[2], length=20 << 20) as sock:
            assert _head_status(sock) == 503
        chunked = post_head("/v1/photos", 1, **{"Transfer-Encoding": "chunked",
                                                "Authorization": f"Bearer {keys[2]}"})  # fmt: skip
        with connect(url, chunked) as sock:  # 1 byte claimed, any number sent chunked
            assert _head_status(sock) == 503
        small = _upload(url, keys[2], 64)
        assert small.status_code == 201, small.text
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    with _upload_head(url, keys[2], length=20 << 20) as sock:
        push(sock, 1024, seconds=0.5)
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):  # being read: no answer before its body
            sock.recv(1)


def test_connections_past_the_cap_are_answered_503(s3_endpoint: str, tmp_path) -> None:
    """Every bound above holds a connection for seconds; many clients together
    are bounded by max_connections (the file descriptors ran out first: EMFILE,
    and every request timed out). A connection past it is answered and closed
    as it opens, in the API's error shape."""
    with own_gateway(s3_endpoint, tmp_path / "gateway.log",
                     BACKDROP_GATEWAY__MAX_CONNECTIONS="3") as (url, _):  # fmt: skip
        opened = [connect(url, "") for _ in range(5)]  # none sends a request
        try:
            time.sleep(0.5)
            answers = []
            for sock in opened:
                sock.settimeout(0.5)
                with contextlib.suppress(TimeoutError):  # held: within the cap
                    answers.append(sock.recv(65536))
            # At least the 2 past the cap (a probe of the port may still count).
            assert len(answers) >= 2 and len(opened) - len(answers) <= 3, len(answers)
            for answer in answers:
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 5" in head.lower()
                assert json.loads(body)["error"]["code"] == "SERVICE_BUSY"
        finally:
            for sock in opened:
                sock.close()
        time.sleep(0.3)
        assert httpx.get(url + "/v1/limits", timeout=30).status_code == 200, "room again"


def test_a_gateway_at_its_cap_still_answers_its_liveness_probe(s3_endpoint: str, tmp_path) -> None:
    """Held at max_connections, the gateway is busy, not dead: the kubelet's
    probe listener answers /healthz beside it (a liveness probe through the
    public port failed, and two minutes of it restarted the pod, dropping
    every client). That listener serves nothing else and has its own cap."""
    from tests.services import free_port

    port = free_port()
    with own_gateway(s3_endpoint, tmp_path / "gateway.log", BACKDROP_GATEWAY__MAX_CONNECTIONS="2",
                     BACKDROP_GATEWAY__PROBE_PORT=str(port),
                     BACKDROP_GATEWAY__PROBE_CONNECTIONS="2") as (url, _):  # fmt: skip
        probe = f"http://127.0.0.1:{port}"
        time.sleep(0.5)  # the start's own probe of the port has gone (it counted)
        held = [connect(url, "") for _ in range(2)] + [connect(probe, "") for _ in range(2)]
        try:
            time.sleep(0.5)
            for listener in (url, probe):  # each full: the next connection is told so
                answer, _ = read_all(connect(listener, ""), timeout=5)
                assert answer.startswith(b"HTTP/1.1 503"), listener
            held.pop().close()
            time.sleep(0.3)
            assert httpx.get(probe + "/healthz", timeout=10).json() == {"status": "ok"}
            refused = httpx.get(probe + "/v1/limits", timeout=10)
            assert refused.status_code == 404 and refused.json()["error"]["code"] == "NOT_FOUND"
        finally:
            for sock in held:
                sock.close()


def test_a_probe_port_that_is_the_apis_is_refused_at_start(s3_endpoint: str) -> None:
    """Both listeners would bind (SO_REUSEADDR) and the second listen fail
    after the app started: said at once instead, as a setting's error."""
    import subprocess
    import sys

    from tests.services import REPO, free_port, service_env

    port = str(free_port())
    env = service_env(s3_endpoint, BACKDROP_GATEWAY__PROBE_PORT=port)
    command = [sys.executable, "-m", "worker.cli", "gateway", "--port", port]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "INVALID_REQUEST" in done.stderr, done.stderr[-1000:]
    assert "PROBE_PORT must not be the API's port" in done.stderr
