"""A real browser (Debian's chromium, driven by Playwright; no browser is ever
downloaded) against the real gateway and a worker of their own.

The worker holds each job at the `stylized` point (a test hook, refused in
production) until the test lets it go: the preview is then on screen and the
final result is not, whatever the machine's speed. So these tests get their
own Redis database, worker and gateway, not the session's."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.conftest import REPO, STYLES
from tests.services import WorkerProcess, running_gateway, service_env, tenant_key

PAGE_REDIS = "redis://127.0.0.1:6379/4"
ARTIFACTS = Path(os.environ.get("BACKDROP_TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium_path() -> str:
    """Debian's chromium; a clear skip only where it could not be installed."""
    found = os.environ.get("BACKDROP_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    why = os.environ.get("BACKDROP_NO_BROWSER")
    if why or not os.environ.get("CI"):
        pytest.skip(f"NO BROWSER: chromium is not installed ({why or 'apt-get install chromium'})")
    pytest.fail("chromium is not installed and .ci/run did not say why (BACKDROP_NO_BROWSER)")


@pytest.fixture(scope="module")
def stack(s3_endpoint: str, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Redis db 4, a worker that pauses at `stylized`, a gateway, two catalog paintings."""
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig
    from tests.services import ACCESS, SECRET

    redis = Redis.from_url(PAGE_REDIS)
    redis.flushdb()
    logs = tmp_path_factory.mktemp("page")
    # 256 px and 30 iterations: pictures worth a screenshot (the README's), in seconds.
    env = service_env(s3_endpoint, BACKDROP_REDIS__URL=PAGE_REDIS, BACKDROP_INTAKE__MAX_SIDE="256",
                      BACKDROP_STYLE__ITERATIONS="30",
                      BACKDROP_QUEUE__PAUSE_AT='["stylized"]',
                      BACKDROP_GATEWAY__EVENTS_POLL_SECONDS="0.1")  # fmt: skip
    worker = WorkerProcess(env, logs / "worker.log")
    try:
        worker.wait_ready()
        client = TrustedClient(TrustedClientConfig(redis_url=PAGE_REDIS, s3_endpoint=s3_endpoint,
                                     access_key=ACCESS, secret_key=SECRET))  # fmt: skip
        for name in ("starry", "waves"):
            client.add_style(name, (STYLES / f"{name}.jpg").read_bytes())
        key = tenant_key(redis, "page-tests")
        with running_gateway(env, logs / "gateway.log") as url:
            yield {"url": url, "key": key, "redis": redis}
    finally:
        worker.stop()
        redis.flushdb()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        # As root in a container chromium needs --no-sandbox.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.goto(f"{stack['url']}/#key={stack['key']}")
    yield tab
    context.close()


def release(stack: dict[str, Any], job_id: str) -> None:
    """Let the held job go on past `stylized`."""
    from worker.service.fault_points import pause_key

    stack["redis"].set(pause_key("stylized", job_id), "go")


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
