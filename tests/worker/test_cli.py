"""`backdrop run` as a user meets it: files on disk, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MODELS, PHOTOS, SHARED, STYLES
from worker.cli import main
from worker.pipeline.png import read_metadata
from worker.pipeline.style_params import strength_gain
from worker.runtime.models import REGISTRY

FAST = ["--size", "96", "--iterations", "4", "--levels", "1"]


@pytest.fixture(autouse=True)
def _shared_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKDROP_MODELS_DIR", str(MODELS))
    monkeypatch.setenv("BACKDROP_SAMPLES_DIR", str(SHARED / "images"))
    monkeypatch.setenv("BACKDROP_ALLOW_DOWNLOAD", "false")
    # The fixed strength curve, except in the newcomer's run below: the
    # calibration (nine small optimizations per run) is tested there once.
    monkeypatch.setenv("BACKDROP_COMPUTE__DIAL", "fixed")


def _run(tmp_path: Path, *args: str, photo: Path = PHOTOS / "grace_hopper.png") -> int:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return main(["run", str(photo), "--out", str(tmp_path / "out.png"), *args])


def test_run_writes_result_mask_sheet_and_metadata(tmp_path: Path) -> None:
    """In a real subprocess: what a newcomer types."""
    out = tmp_path / "hopper.png"
    cmd = [sys.executable, "-m", "worker.cli", "run", str(PHOTOS / "grace_hopper.png"),
           "--style", f"{STYLES / 'starry.jpg'}:2", "--style", str(STYLES / "waves.jpg"),
           "--out", str(out), *FAST]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "BACKDROP_COMPUTE__DIAL"}  # the default
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "stylize" in done.stderr, "a progress bar per stage is drawn on stderr"
    assert "dial" in done.stderr, "the strength dial is calibrated on this photo and paintings"
    photo = np.asarray(Image.open(PHOTOS / "grace_hopper.png").convert("RGB"))
    with Image.open(out) as result:
        assert result.format == "PNG" and result.size == (82, 96)  # 512x600 -> longest 96
    with Image.open(tmp_path / "hopper.mask.png") as mask:
        assert mask.size == (82, 96) and mask.mode == "L"
    with Image.open(tmp_path / "hopper.sheet.png") as sheet:
        assert sheet.width > 3 * sheet.height, "photo | mask | stylized | result side by side"
    meta = read_metadata(out.read_bytes())
    assert meta["feature_net"] == "vgg16-hed-bsds500"
    assert meta["segmenter"].startswith("tflite:deeplabv3")
    assert float(meta["gain"]) != strength_gain(0.8), "the calibrated gain, not the fixed curve's"
    assert json.loads((tmp_path / "hopper.json").read_text())["params"]["iterations"] == 4
    assert photo.shape == (600, 512, 3)


def test_keep_original_size_returns_the_photos_resolution(tmp_path: Path) -> None:
    assert _run(tmp_path, "--mode", "portrait", "--size", "128", "--keep-original-size") == 0
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (512, 600)


@pytest.mark.parametrize("where", ["a directory", "under a file", "beside a directory"])
def test_an_out_that_cannot_be_written_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """It ended as INTERNAL (IsADirectoryError) after the whole job had run."""
    (tmp_path / "a-file").write_text("x")
    out = {"a directory": tmp_path, "under a file": tmp_path / "a-file" / "out.png",
           "beside a directory": tmp_path / "out.png"}[where]  # fmt: skip
    (tmp_path / "out.mask.png").mkdir()  # where the mask would go
    started = time.monotonic()
    status = main(["run", str(PHOTOS / "grace_hopper.png"), "--style", str(STYLES / "starry.jpg"),
                   "--out", str(out), *FAST])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("backdrop: error INVALID_REQUEST: "), err
    assert time.monotonic() - started < 5, "refused before the models load"


@pytest.mark.parametrize(
    ("args", "photo", "code"),
    [
        (
            ["--style", str(STYLES / "starry.jpg")],
            Path("/nonexistent/photo.jpg"),
            "INPUT_NOT_FOUND",
        ),
        (["--style", "/nonexistent/painting.jpg"], None, "STYLE_NOT_FOUND"),
        (["--style", str(STYLES / "starry.jpg"), "--iterations", "0"], None, "INVALID_REQUEST"),
        (["--style", str(STYLES / "starry.jpg"), "--style-weight", "-1"], None, "INVALID_REQUEST"),
        (["--style", f"{STYLES / 'starry.jpg'}:-2"], None, "INVALID_REQUEST"),
        (["--style", str(STYLES / "starry.jpg"), "--subject", "unicorn"], None, "INVALID_REQUEST"),
        (["--mode", "background"], None, "INVALID_REQUEST"),  # no style given
        (
            ["--style", str(STYLES / "starry.jpg")],
            PHOTOS / "bird_segmentation.png",
            "NO_SUBJECT_FOUND",
        ),
        (["--style", str(PHOTOS.parent / "SOURCES.md")], None, "UNSUPPORTED_FORMAT"),
    ],
)
def test_bad_input_exits_non_zero_with_code_and_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    photo: Path | None,
    code: str,
) -> None:
    status = _run(tmp_path, *FAST, *args, photo=photo or PHOTOS / "grace_hopper.png")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith(f"backdrop: error {code}: "), err
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "out.png").exists()


def test_corrupt_photo_is_invalid_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((PHOTOS / "cat_720p.jpg").read_bytes()[:5000])
    assert _run(tmp_path, "--mode", "portrait", photo=broken) == 2
    assert "error INVALID_IMAGE" in capsys.readouterr().err


def test_full_mode_stylizes_a_photo_without_the_subject(tmp_path: Path) -> None:
    bird = PHOTOS / "bird_segmentation.png"
    assert (
        _run(tmp_path, *FAST, "--style", str(STYLES / "sketch.jpg"), "--mode", "full", photo=bird)
        == 0
    )
    with Image.open(tmp_path / "out.png") as result:
        assert result.size == (96, 96)


def test_models_list_reports_verified_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tflite = next(line for line in lines if "deeplab-mnv2-tflite" in line)
    assert " ok " in tflite
    assert any("deeplab-mnv2-frozen" in line and "missing" in line for line in lines)
    assert lines[-1] == (
        "jobs resolved here name: segmenter tflite deeplab-mnv2-tflite, "
        "style network vgg16-hed-bsds500"
    ), "what an operator compares across a fleet's workers"


def test_every_model_is_fetched_over_https() -> None:
    """Three of the five files have no sha256 we could pin offline: only the
    transport keeps a man in the middle from handing a worker another graph."""
    assert all(spec.url.startswith("https://") for spec in REGISTRY.values())


def test_models_pull_without_network_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BACKDROP_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("BACKDROP_ALLOW_DOWNLOAD", "true")
    # A port nothing listens on stands in for "no network": the failure must be one line.
    spec = REGISTRY["deeplab-mnv2-tflite"]
    monkeypatch.setitem(REGISTRY, spec.name, replace(spec, url="http://127.0.0.1:9/x.tflite"))
    assert main(["models", "pull", "deeplab-mnv2-tflite"]) == 2
    assert "error MODEL_UNAVAILABLE" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "no half-downloaded file is left"


def test_demo_fetches_its_samples_from_upstream_when_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Away from ../shared the demo downloads its photo and painting; a local
    HTTP server stands in for the upstream hosts (no network here)."""
    import functools
    import http.server
    import threading

    from worker.cli import local_commands as commands

    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(SHARED / "images")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(commands, "SAMPLE_URLS", {n: f"{base}/{n}" for n in commands.SAMPLE_URLS})
    try:
        data = commands._sample(tmp_path, "photos/grace_hopper.png", allow_download=True)
    finally:
        server.shutdown()
    assert data == (PHOTOS / "grace_hopper.png").read_bytes()
    assert (tmp_path / "photos" / "grace_hopper.png").exists(), "kept for the next run"


def test_init_image_is_where_the_optimization_starts(tmp_path: Path) -> None:
    """Ignoring --init-image would give the same picture as starting from the
    photo; it must start from the given image instead (full mode, 2 steps, so
    the start still shows)."""
    args = ["--size", "96", "--iterations", "2", "--mode", "full", "--optimizer", "adam",
            "--style", str(STYLES / "waves.jpg")]  # fmt: skip
    assert _run(tmp_path / "photo", *args) == 0
    assert _run(tmp_path / "init", *args, "--init-image", str(STYLES / "starry.jpg")) == 0
    from_photo, from_init = (
        np.asarray(Image.open(tmp_path / d / "out.png").convert("RGB"), np.float32)
        for d in ("photo", "init")
    )
    start = np.asarray(Image.open(STYLES / "starry.jpg").convert("RGB").resize(
        from_init.shape[1::-1]), np.float32)  # fmt: skip
    assert np.abs(from_init - start).mean() < np.abs(from_photo - start).mean() - 10
    assert read_metadata((tmp_path / "init" / "out.png").read_bytes())["init_image"] is True


def test_init_preview_starts_from_the_runs_own_preview(tmp_path: Path) -> None:
    """--init preview: one tiny step from the preview step's image gives about
    the preview-only picture; from the photo it would not."""
    args = ["--size", "96", "--mode", "full", "--style", str(STYLES / "waves.jpg")]
    assert _run(tmp_path / "preview", *args, "--preview-only") == 0
    warm = ["--init", "preview", "--iterations", "1", "--learning-rate", "0.01"]
    assert _run(tmp_path / "warm", *args, *warm) == 0
    assert _run(tmp_path / "photo", *args, *warm[2:]) == 0
    preview, from_warm, from_photo = (
        np.asarray(Image.open(tmp_path / d / "out.png").convert("RGB"), np.float32)
        for d in ("preview", "warm", "photo")
    )
    assert np.abs(from_warm - preview).mean() < 2 < np.abs(from_photo - preview).mean()
    meta = read_metadata((tmp_path / "warm" / "out.png").read_bytes())
    assert meta["params"]["init"] == "preview" and meta["iterations_run"] == 1


def test_preview_only_needs_no_optimization(tmp_path: Path) -> None:
    assert (
        _run(tmp_path, "--style", str(STYLES / "starry.jpg"), "--preview-only", "--size", "128")
        == 0
    )
    meta = read_metadata((tmp_path / "out.png").read_bytes())
    assert meta["stylizer"] == "magenta-arbitrary-v1" and "feature_net" not in meta


def test_dual_mode_and_strength_from_the_command_line(tmp_path: Path) -> None:
    """Two paintings: the subject's pixels differ from a plain background run's;
    strength 0 in full mode gives the photo back."""
    args = ["--size", "96", "--iterations", "3", "--style", str(STYLES / "starry.jpg")]
    assert _run(tmp_path / "plain", *args) == 0
    assert _run(tmp_path / "dual", *args, "--mode", "dual",
                "--subject-style", str(STYLES / "sketch.jpg")) == 0  # fmt: skip
    plain, dual = (np.asarray(Image.open(tmp_path / d / "out.png").convert("RGB"), np.float32)
                   for d in ("plain", "dual"))  # fmt: skip
    mask = np.asarray(Image.open(tmp_path / "dual" / "out.mask.png"), np.float32) / 255
    inside = mask > 0.99
    # A plain run keeps the subject exactly (alpha 1): any change there is the painting.
    assert np.abs(dual[inside] - plain[inside]).mean() > 3, "the subject is painted too"
    assert _run(tmp_path / "weak", *args, "--mode", "full", "--strength", "0") == 0
    weak = np.asarray(Image.open(tmp_path / "weak" / "out.png").convert("RGB"))
    photo = np.asarray(Image.open(PHOTOS / "grace_hopper.png").convert("RGB"))
    small = np.asarray(Image.fromarray(photo).resize(weak.shape[1::-1], Image.LANCZOS))
    assert np.abs(weak.astype(float) - small).mean() < 3, "strength 0 is the photo"
    assert _run(tmp_path / "bad", *args, "--mode", "dual") == 2, "dual needs --subject-style"
