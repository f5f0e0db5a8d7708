"""The photo app's side of the trust boundary: the distribution installed as
the README says (no extras) into a fresh virtual environment brings pydantic
and nothing of the server (no TensorFlow, Redis, Celery or MinIO client), and
with only an API key the app uploads, submits, follows the events, downloads
and cancels through the real gateway and worker."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import PHOTOS, REPO, STYLES
from tests.services import tenant_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVER_ONLY = ("tensorflow", "cv2", "redis", "celery", "minio", "fastapi", "numpy", "jobstore")


@pytest.fixture(scope="module")
def app_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("photo-app") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The distribution as a photo app gets it, built from a copy of the tree
    # (a build in the checkout would leave build/ behind).
    source = venv.parent / "src"
    for package in ("api_contracts", "jobstore", "gateway", "worker"):
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)], check=True,
                   timeout=600)  # fmt: skip
    return python


def test_the_distribution_alone_installs_nothing_of_the_server(app_python: Path) -> None:
    for module in SERVER_ONLY[:-1]:
        found = subprocess.run([str(app_python), "-c", f"import {module}"], capture_output=True)
        assert found.returncode != 0, f"{module} is installed for a photo app"


def test_a_photo_app_with_only_an_api_key(
    app_python: Path, gateway_url: str, redis_client: Redis
) -> None:
    key = tenant_key(redis_client, "photo-app")
    script = Path(__file__).with_name("photo_app.py")
    run = subprocess.run(
        [str(app_python), str(script), gateway_url, key, str(PHOTOS / "grace_hopper.png"),
         str(STYLES / "waves.jpg")],
        capture_output=True, text=True, timeout=600, cwd=app_python.parent,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert seen["events"][0] == "progress" and "preview" in seen["events"]
    assert seen["events"][-1] == "final" and seen["state"] == "SUCCEEDED"
    assert seen["result_png"] and seen["cancelled"] == "CANCELLED"
    assert seen["missing"] == "BackdropError:NOT_FOUND"
    loaded = {m.split(".")[0] for m in seen["modules"]}
    assert not loaded & set(SERVER_ONLY), loaded & set(SERVER_ONLY)
