"""`backdrop styles | submit --wait | status` against the running service."""

import re
import subprocess
import sys

import pytest

from tests.conftest import PHOTOS, STYLES
from tests.services import service_env

pytestmark = pytest.mark.integration


def _backdrop(s3_endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=service_env(s3_endpoint), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_submit_wait_and_status_from_the_shell(worker, s3_endpoint: str) -> None:
    added = _backdrop(s3_endpoint, "styles", "add", "waves", str(STYLES / "waves.jpg"))
    assert added.returncode == 0, added.stderr
    assert "waves" in _backdrop(s3_endpoint, "styles", "list").stdout.split()
    photo, starry = str(PHOTOS / "grace_hopper.png"), str(STYLES / "starry.jpg")
    done = _backdrop(s3_endpoint, "submit", photo, "--style", "@waves", "--style", starry, "--wait")
    assert done.returncode == 0, done.stderr
    assert "style 0" in done.stderr and "100%" in done.stderr, "per-style progress bars"
    job_id = re.search(r"job ([0-9a-f]{32})", done.stdout).group(1)
    status = _backdrop(s3_endpoint, "status", job_id)
    assert f"job {job_id}: SUCCEEDED" in status.stdout
    assert status.stdout.count("X-Amz-Signature") == 2, "a presigned URL per result"


def test_submit_of_a_missing_file_is_one_line(worker, s3_endpoint: str) -> None:
    done = _backdrop(s3_endpoint, "submit", "/nonexistent.jpg", "--style", "@waves")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("backdrop: error INPUT_NOT_FOUND")
