"""For the gateway's trust-boundary tests: a gateway of their own (no worker:
nothing here needs a job to run) and HTTP spoken by hand over a socket, to
send what no well-behaved client sends (a body that stalls, headers that trickle)."""

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from minio import Minio

from tests.services import ACCESS, SECRET, gateway_process, service_env

BUCKETS = ("backdrop-inputs", "backdrop-styles", "backdrop-results")


@contextlib.contextmanager
def own_gateway(s3_endpoint: str, log_path: Path, **env: str) -> Iterator[tuple[str, int]]:
    """A `backdrop gateway` process; yields its URL and pid. The buckets a
    worker would make at its start are made here."""
    store = Minio(s3_endpoint, access_key=ACCESS, secret_key=SECRET, secure=False)
    for bucket in BUCKETS:
        if not store.bucket_exists(bucket):
            store.make_bucket(bucket)
    with gateway_process(service_env(s3_endpoint, **env), log_path) as started:
        yield started


def connect(url: str, head: str) -> socket.socket:
    """A connection that has sent `head` (request line and headers, no body yet)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(head.encode())
    return sock


def post_head(path: str, length: int, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: gateway", f"Content-Length: {length}"]
    lines += ["Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def push(sock: socket.socket, total: int, seconds: float) -> int:
    """Send up to `total` body bytes for at most `seconds` (the server may stop
    reading, or answer and close); returns how many went out."""
    return push_raw(sock, b"{" * total, seconds)


def push_raw(sock: socket.socket, data: bytes, seconds: float) -> int:
    """Send as much of `data` as goes out within `seconds`; returns how much."""
    sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + seconds
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += sock.send(data[sent : sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:  # answered and closed
            break
    sock.setblocking(True)
    return sent


def read_all(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything until the server closes, and how long that took; raises
    TimeoutError when it has not closed after `timeout`."""
    start, data = time.monotonic(), b""
    sock.settimeout(timeout)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return data, time.monotonic() - start
        data += chunk
        sock.settimeout(max(0.01, timeout - (time.monotonic() - start)))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
