"""The model registry: which files, their sha256, where they come from, where we look.

Weights are never in git. A worker finds them in Settings.models_dir (CI points
it at ../shared/models), verifies the sha256, and, where a network exists and
downloads are allowed, pulls a missing file from its upstream address.
"""

import hashlib
import io
import logging
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from api_contracts.errors import BackdropError, ErrorCode
from worker.pipeline.weights import VGG19_FILENAME, sha256_of, verified_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    url: str
    # None where the upstream publishes no hash we could pin offline: the file
    # is then checked for presence only, and `backdrop models list` says so.
    sha256: str | None
    description: str
    # For tarballs: the member to extract as `filename`.
    tar_member: str | None = None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="deeplab-mnv2-tflite",
            filename="deeplabv3_mnv2_pascal_quant.tflite",
            url="https://github.com/google-coral/test_data/raw/master/deeplabv3_mnv2_pascal_quant.tflite",
            sha256="350af47fd346ea6d74b58833a351f583ba860e9806ec5bd292ff8d8f1f249398",
            description="DeepLab v3 MobileNetV2, PASCAL VOC, 8-bit TFLite (513x513)",
        ),
        ModelSpec(
            name="deeplab-mnv2-dm05-tflite",
            filename="deeplabv3_mnv2_dm05_pascal_quant.tflite",
            url="https://github.com/google-coral/test_data/raw/master/deeplabv3_mnv2_dm05_pascal_quant.tflite",
            sha256="0470d2a782aa54eeeb99d32e7b6b3fb7722905c7c4f5d26bd957ec861366d48b",
            description="DeepLab v3 MobileNetV2 depth 0.5, PASCAL VOC, 8-bit TFLite",
        ),
        ModelSpec(
            name="deeplab-mnv2-frozen",
            filename="deeplabv3_mnv2_pascal_frozen_inference_graph.pb",
            url="https://download.tensorflow.org/models/deeplabv3_mnv2_pascal_train_aug_2018_01_29.tar.gz",
            sha256=None,
            description="DeepLab v3 MobileNetV2 float frozen graph (model zoo), for GPU workers",
            tar_member="frozen_inference_graph.pb",
        ),
        ModelSpec(
            name="deeplab-xception65-frozen",
            filename="deeplabv3_xception65_pascal_frozen_inference_graph.pb",
            url="https://download.tensorflow.org/models/deeplabv3_pascal_train_aug_2018_01_04.tar.gz",
            sha256=None,
            description="DeepLab v3 Xception65 float frozen graph (model zoo, 82.2% mIOU)",
            tar_member="frozen_inference_graph.pb",
        ),
        ModelSpec(
            name="vgg19-imagenet",
            filename=VGG19_FILENAME,
            url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
            sha256=None,
            description="VGG19 ImageNet conv weights (Keras applications); preferred for style",
        ),
    )
}


def model_path(name: str, models_dir: Path, allow_download: bool) -> Path:
    """The verified local file of a registered model, pulled if missing and allowed."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise BackdropError(ErrorCode.MODEL_UNAVAILABLE, f"unknown model {name!r}")
    path = models_dir.expanduser() / spec.filename
    if not path.exists():
        if not allow_download:
            raise BackdropError(
                ErrorCode.MODEL_UNAVAILABLE,
                f"{spec.filename} is not in {models_dir} and downloads are off",
            )
        pull(spec, models_dir)
    if not verified_file(path, spec.sha256):
        raise BackdropError(
            ErrorCode.MODEL_UNAVAILABLE, f"{path} does not match its sha256; delete it and pull"
        )
    return path


def model_status(name: str, models_dir: Path) -> str:
    spec = REGISTRY[name]
    path = models_dir.expanduser() / spec.filename
    if not path.exists():
        return "missing"
    if spec.sha256 is None:
        return "present (no pinned sha256)"
    return "ok" if sha256_of(path) == spec.sha256 else "SHA256 MISMATCH"


def pull(spec: ModelSpec, models_dir: Path) -> Path:
    """Download a model from upstream; written atomically, verified before it is kept."""
    models_dir = models_dir.expanduser()
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / spec.filename
    log.info("downloading %s from %s", spec.name, spec.url)
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response:
            payload = response.read()
    except OSError as exc:
        raise BackdropError(
            ErrorCode.MODEL_UNAVAILABLE, f"cannot download {spec.name} from {spec.url}: {exc}"
        ) from None
    if spec.tar_member:
        payload = _extract_member(payload, spec.tar_member)
    if spec.sha256 and hashlib.sha256(payload).hexdigest() != spec.sha256:
        raise BackdropError(ErrorCode.MODEL_UNAVAILABLE, f"{spec.url} does not match its sha256")
    with tempfile.NamedTemporaryFile(dir=models_dir, delete=False) as tmp:
        tmp.write(payload)
    shutil.move(tmp.name, target)
    return target


def _extract_member(tarball: bytes, member: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for info in archive.getmembers():
            if info.isfile() and info.name.endswith("/" + member):
                extracted = archive.extractfile(info)
                if extracted is not None:
                    return extracted.read()
    raise BackdropError(ErrorCode.MODEL_UNAVAILABLE, f"{member} not found in the archive")
