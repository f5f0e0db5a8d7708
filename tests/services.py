"""Real services for the queue tests: Redis on 127.0.0.1:6379 (db 15), an S3
server (moto's server mode, standing in for MinIO) and a real Celery worker."""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis import Redis

from tests.conftest import MODELS, REPO

REDIS_URL = os.environ.get("BACKDROP_TEST_REDIS", "redis://127.0.0.1:6379/15")
ACCESS, SECRET = "backdrop-test", "backdrop-test-secret"
WEBHOOK_SECRET = "whsec-test-0123456789"
# The strength dial of the test and benchmark workers (see service_env).
WORKER_DIAL: Final = "fixed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


@pytest.fixture(scope="session")
def redis_client() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:  # the suite needs a real Redis, say so plainly
        raise RuntimeError(
            f"Redis at {REDIS_URL} does not answer ({exc}); .ci/run starts one"
        ) from exc
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with running_s3() as endpoint:
        yield endpoint


@contextlib.contextmanager
def running_s3() -> Iterator[str]:
    """moto in server mode, in its own process, over real HTTP."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# This test process's own (the ACL user lives on in the test Redis, which
# listens on loopback only; a later run sets its password anew).
_ACL_PASSWORD = secrets.token_urlsafe(16)


def production_env(**extra: str) -> dict[str, str]:
    """Variables for a gateway in production mode, which refuses a Redis URL
    without a password: the shared Redis through an ACL user that has one."""
    user = "backdrop-production-test"
    Redis.from_url(REDIS_URL).acl_setuser(user, enabled=True, reset_passwords=True,
                                          passwords=[f"+{_ACL_PASSWORD}"], categories=["+@all"],
                                          keys=["*"], channels=["*"])  # fmt: skip
    parts = urlsplit(REDIS_URL)
    netloc = f"{user}:{_ACL_PASSWORD}@{parts.hostname}:{parts.port or 6379}"
    url = urlunsplit(parts._replace(netloc=netloc))
    return {"BACKDROP_ENVIRONMENT": "production", "BACKDROP_REDIS__URL": url, **extra}


def service_env(s3_endpoint: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "BACKDROP_REDIS__URL": REDIS_URL,
        "BACKDROP_STORAGE__ENDPOINT": s3_endpoint,
        "BACKDROP_STORAGE__ACCESS_KEY": ACCESS,
        "BACKDROP_STORAGE__SECRET_KEY": SECRET,
        "BACKDROP_MODELS_DIR": str(MODELS),
        "BACKDROP_ALLOW_DOWNLOAD": "false",
        # Small and quick: 96 px, few iterations, one level.
        "BACKDROP_INTAKE__MAX_SIDE": "96",
        "BACKDROP_STYLE__ITERATIONS": "10",
        "BACKDROP_STYLE__LEVELS": "1",
        # The queue's tests: the one strength curve (the calibrated dial costs
        # 7 small optimizations an output; tests/worker/service/test_dial.py
        # runs it through the same steps in-process).
        "BACKDROP_COMPUTE__DIAL": WORKER_DIAL,
        "BACKDROP_QUEUE__RETRY_BACKOFF_SECONDS": "0.2",
        "BACKDROP_WEBHOOKS__SECRET": WEBHOOK_SECRET,
        "BACKDROP_WEBHOOKS__BACKOFF_SECONDS": "0.3",
        "BACKDROP_WEBHOOKS__TIMEOUT_SECONDS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Metrics only where a test asks (workers started together would share a port).
        "BACKDROP_METRICS__PORT": "0",
        "PYTHONPATH": str(REPO),
    }
    env.update(extra)
    return env


class WorkerProcess:
    """`backdrop worker` in a subprocess, with its log in a file."""

    def __init__(
        self, env: dict[str, str], log_path: Path, concurrency: int = 2, gpus: str = ""
    ) -> None:
        self.log_path = log_path
        self.metrics_url = ""
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker.cli",
                "worker",
                "--queues",
                "gpu,gpu-batch,cpu,notify",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                *(["--gpus", gpus] if gpus else []),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if " ready." in self.log_path.read_text():
                return
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self, grace: float = 5.0) -> None:
        """A test's teardown: SIGTERM, then SIGKILL after `grace` seconds. An
        idle worker is gone in about a second; one still optimizing a job the
        test is done with would hold its warm shutdown for the whole step
        (tests of graceful shutdown send SIGTERM themselves and wait)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def worker(redis_client: Redis, s3_endpoint: str, tmp_path_factory) -> Iterator[WorkerProcess]:
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    port = free_port()
    process = WorkerProcess(service_env(s3_endpoint, BACKDROP_METRICS__PORT=str(port)), log_path)
    process.metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def running_gateway(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`backdrop gateway` in a subprocess; yields its base URL."""
    with gateway_process(env, log_path) as (url, _):
        yield url


@contextlib.contextmanager
def gateway_process(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, int]]:
    """`backdrop gateway` in a subprocess; yields its base URL and process id."""
    port = free_port()
    with log_path.open("w") as log:
        command = [sys.executable, "-m", "worker.cli", "gateway", "--port", str(port)]
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout=60)
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture(scope="session")
def gateway_url(worker, s3_endpoint: str, tmp_path_factory) -> Iterator[str]:
    """The gateway beside the session's worker."""
    env = service_env(s3_endpoint, BACKDROP_GATEWAY__MAX_UPLOAD_BYTES=str(2 * 1024 * 1024),
                      BACKDROP_GATEWAY__EVENTS_POLL_SECONDS="0.1")  # fmt: skip
    with running_gateway(env, tmp_path_factory.mktemp("gateway") / "gateway.log") as url:
        yield url


_KEYS: dict[str, str] = {}  # keys are stored hashed: the tests keep the ones they made


def tenant_key(redis: Redis, name: str, **limits: int) -> str:
    """A tenant's API key on the session's Redis (made on first use)."""
    from jobstore.tenants import Limits, Tenants

    if name not in _KEYS:
        tenants = Tenants(redis)
        issued = (tenants.new_key(name) if tenants.get(name)
                  else tenants.add(name, Limits(**limits)).api_key)  # fmt: skip
        _KEYS[name] = issued.get_secret_value()
    return _KEYS[name]


@pytest.fixture(scope="session")
def client(worker: WorkerProcess, s3_endpoint: str):
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig

    return TrustedClient(
        TrustedClientConfig(
            redis_url=REDIS_URL, s3_endpoint=s3_endpoint, access_key=ACCESS, secret_key=SECRET
        )
    )


@contextlib.contextmanager
def service_stack(redis_url: str, log_path: Path, **env: str) -> Iterator[Any]:
    """For benchmarks: an S3 server and one worker on `redis_url` (flushed
    first); yields a client of that stack."""
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig

    Redis.from_url(redis_url).flushdb()
    with running_s3() as endpoint:
        worker = WorkerProcess(service_env(endpoint, BACKDROP_REDIS__URL=redis_url, **env),
                               log_path, concurrency=1)  # fmt: skip
        try:
            worker.wait_ready()
            yield TrustedClient(TrustedClientConfig(redis_url=redis_url, s3_endpoint=endpoint,
                                      access_key=ACCESS, secret_key=SECRET))  # fmt: skip
        finally:
            worker.stop()
