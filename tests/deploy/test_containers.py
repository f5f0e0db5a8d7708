"""The container files, checked: hadolint on the Dockerfiles, the compose-spec
schema on docker-compose.yml, and the GPU image's TensorFlow, CUDA and cuDNN
held to the pins (and the pins to the package registry)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BIN = Path(sys.executable).parent
DOCKERFILES = sorted((REPO / "deploy").glob("Dockerfile.*"))
PYPROJECT = (REPO / "pyproject.toml").read_text()


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is a dev dependency: make install"
    return found


def _pin(package: str) -> str:
    found = re.search(rf'"{re.escape(package)}(?:\[[a-z-]+\])?==([0-9.]+)"', PYPROJECT)
    assert found, f"the gpu extra pins {package}"
    return found.group(1)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    done = subprocess.run([_tool("hadolint"), "--no-color", str(dockerfile)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_images_carry_every_package_and_the_server_extra(dockerfile: Path) -> None:
    packages = re.search(r"include = \[([^\]]*)\]", PYPROJECT)
    assert packages, "pyproject lists its packages"
    text = dockerfile.read_text()
    for package in re.findall(r'"([a-z_]+)\*"', packages.group(1)):
        assert f"COPY {package} ./{package}" in text, f"{dockerfile.name} lacks {package}/"
    assert '[server]"' in text, "the service's dependencies are the server extra"


def test_hadolint_does_fail_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM ubuntu:latest\nRUN apt-get install curl\nRUN cd /tmp\n")
    assert subprocess.run([_tool("hadolint"), str(careless)], capture_output=True).returncode


def test_docker_compose_passes_the_compose_spec_schema(tmp_path: Path) -> None:
    check = [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    done = subprocess.run([*check, str(REPO / "docker-compose.yml")], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "docker-compose.yml"
    text = (REPO / "docker-compose.yml").read_text()
    broken.write_text(text.replace("healthcheck:", "health_check:", 1))
    assert subprocess.run([*check, str(broken)], capture_output=True).returncode, "it can fail"


def test_the_gpu_image_matches_the_pinned_tensorflow_and_its_cuda() -> None:
    import tensorflow as tf

    gpu = (REPO / "deploy" / "Dockerfile.gpu").read_text()
    pinned = _pin("tensorflow")
    assert re.search(rf"^FROM tensorflow/tensorflow:{re.escape(pinned)}-gpu$", gpu, re.M)
    assert tf.__version__ == pinned, "CPU and GPU workers run the same TensorFlow"
    assert f"onnxruntime-gpu=={_pin('onnxruntime-gpu')}" in gpu
    build = tf.sysconfig.get_build_info()
    documented = (REPO / "deploy" / "README.md").read_text()
    assert f"CUDA {build['cuda_version']}" in documented, build
    assert f"cuDNN {build['cudnn_version']}" in documented, build


@pytest.mark.parametrize("package", ["tensorflow", "onnxruntime-gpu"])
def test_the_gpu_pins_exist_in_the_registry(package: str) -> None:
    """Asked of the index, without downloading CUDA onto this machine."""
    done = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if done.returncode != 0 and "versions" not in done.stdout:
        pytest.skip(f"NO REGISTRY: pip index could not reach it: {done.stderr.strip()[-200:]}")
    assert _pin(package) in re.split(r"[ ,()]+", done.stdout), done.stdout[:500]
