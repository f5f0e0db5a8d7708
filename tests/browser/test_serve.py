"""`backdrop serve`: one command brings up the page, the API and a worker."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from redis import Redis

from tests.conftest import REPO, SHARED
from tests.services import free_port, running_s3, service_env

pytestmark = pytest.mark.integration
SERVE_REDIS = "redis://127.0.0.1:6379/3"


def test_serve_prints_a_link_with_a_working_key_and_a_filled_catalog() -> None:
    with running_s3() as s3:  # its own: serve fills only an empty catalog
        _serve_and_check(s3)


def _serve_and_check(s3_endpoint: str) -> None:
    Redis.from_url(SERVE_REDIS).flushdb()
    port = free_port()
    env = service_env(s3_endpoint, BACKDROP_REDIS__URL=SERVE_REDIS,
                      BACKDROP_SAMPLES_DIR=str(SHARED / "images"))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "serve", "--port", str(port)],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        link = None
        deadline = time.monotonic() + 120
        while link is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"(http://\S+)/#key=(\S+)", proc.stdout.readline())  # type: ignore[union-attr]
            link = found.groups() if found else None
        assert link, "serve printed no link"
        base, key = link
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "Paint it" in page.text
        styles = httpx.get(f"{base}/v1/styles", headers={"Authorization": f"Bearer {key}"})
        assert {"starry", "waves"} <= {s["name"] for s in styles.json()}, styles.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=90) is not None
    Redis.from_url(SERVE_REDIS).flushdb()
