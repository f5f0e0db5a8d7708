"""`backdrop run | demo | models`: argument wiring only; the work is in worker.local_job."""

import argparse
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobOptions
from worker.cli.options import add_job_options, job_options, style_argument
from worker.local_job import LocalJob
from worker.pipeline.stages import MODES

# Where the demo's samples come from when ../shared/images is not on this machine.
SAMPLE_URLS = {
    "photos/grace_hopper.png": "https://github.com/google-coral/test_data/raw/master/grace_hopper.png",
    "styles/starry.jpg": "https://upload.wikimedia.org/wikipedia/commons/thumb/e/ea/"
    "Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
    "512px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg",
}


def add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="stylize one photo in this process (no Redis, no MinIO)")
    run.add_argument("photo", type=Path)
    run.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="PAINTING[:WEIGHT]",
        help="a style painting, optionally with a blend weight; repeatable",
    )
    run.add_argument("--mode", choices=list(MODES), default="background",
                     help="; ".join(f"{m.name}: {m.help}" for m in MODES.values()))  # fmt: skip
    run.add_argument("--out", type=Path, required=True, help="result PNG")
    run.add_argument("--subject", default="person", help="PASCAL VOC classes, comma separated")
    run.add_argument("--subject-style", metavar="PAINTING",
                     help="mode dual: the subject painting; --style paints the rest")  # fmt: skip
    add_job_options(run)
    _run_only_options(run)
    run.set_defaults(handler=cmd_run, uses_tensorflow=True)


def _run_only_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-original-size", action="store_true", help="the same as --output original"
    )
    parser.add_argument(
        "--init-image", type=Path, help="start the optimization from this image, not the photo"
    )
    parser.add_argument(
        "--preview-only", action="store_true", help="the same as --quality preview",
    )  # fmt: skip


def _settings_for(options: JobOptions) -> Any:
    from worker.runtime.settings import Settings

    settings = Settings()
    if options.size is not None:
        settings.intake.max_side = options.size
    return settings


def _read(path: Path, code: ErrorCode, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BackdropError(code, f"cannot read {what} {path}: {exc.strerror or exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from worker.service.plan_options import style_params_for

    options = job_options(args, **({"quality": "preview"} if args.preview_only else {}))
    settings = _settings_for(options)
    params = style_params_for(options, settings)
    photo = _read(args.photo, ErrorCode.INPUT_NOT_FOUND, "photo")
    styles = []
    for text in args.style:
        path, weight = style_argument(text)
        styles.append((_read(path, ErrorCode.STYLE_NOT_FOUND, "style"), weight))
    init = (
        _read(args.init_image, ErrorCode.INPUT_NOT_FOUND, "init image") if args.init_image else None
    )
    subject_style = None
    if args.subject_style:
        path, weight = style_argument(args.subject_style)
        subject_style = (_read(path, ErrorCode.STYLE_NOT_FOUND, "style"), weight)
    if (args.mode == "dual") != (subject_style is not None):
        raise BackdropError(ErrorCode.INVALID_REQUEST, "--subject-style goes with --mode dual")
    job = LocalJob(photo, styles, args.mode, tuple(args.subject.split(",")), params,
                   args.keep_original_size or options.output == "original", init,
                   options.quality, subject_style)  # fmt: skip
    paths = run_and_write(job, settings, args.out)
    for label, path in paths.items():
        print(f"{label:<8} {path}")
    return 0


def _check_writable(out: Path) -> None:
    """INVALID_REQUEST for an --out whose files cannot be written (a directory,
    a folder that cannot be made or written, a read-only file): it failed as
    INTERNAL once the whole job had run."""
    paths = [out, *(out.with_suffix(s) for s in (".mask.png", ".sheet.png", ".json"))]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out.parent).close()
        for path in paths:
            if path.is_dir() or (path.exists() and not os.access(path, os.W_OK)):
                raise IsADirectoryError(0, "a directory or read-only", str(path))
    except OSError as exc:
        raise BackdropError(ErrorCode.INVALID_REQUEST,
                            f"cannot write {exc.filename or out}: {exc.strerror or exc}"
                            ) from None  # fmt: skip


def run_and_write(job: Any, settings: Any, out: Path, label: str = "") -> dict[str, Path]:
    """Run one job in-process with progress bars; write result, mask, sheet, metadata."""
    from worker.cli.progress import StageBars
    from worker.local_job import run_local
    from worker.pipeline.contact_sheet import contact_sheet
    from worker.pipeline.png import encode_png

    _check_writable(out)  # before minutes of work, not after
    bars = StageBars(label)
    started = time.monotonic()
    try:
        result = run_local(job, settings, bars)
    except BaseException:
        bars.finish(completed=False)
        raise
    bars.finish()
    result.metadata["seconds"] = round(time.monotonic() - started, 2)
    panels: list[tuple[str, np.ndarray]] = [("photo", result.photo), ("mask", result.mask)]
    if result.stylized is not None:
        panels.append(("stylized", result.stylized))
    panels.append((job.mode, result.result))
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "result": out,
        "mask": out.with_suffix(".mask.png"),
        "sheet": out.with_suffix(".sheet.png"),
        "metadata": out.with_suffix(".json"),
    }
    paths["result"].write_bytes(encode_png(result.result, result.metadata))
    paths["mask"].write_bytes(encode_png(result.mask))
    paths["sheet"].write_bytes(encode_png(contact_sheet(panels)))
    paths["metadata"].write_text(json.dumps(result.metadata, indent=2) + "\n")
    return paths


def add_demo(commands: Any) -> None:
    demo = commands.add_parser("demo", help="the sample photo in background and portrait modes")
    demo.add_argument("--out-dir", type=Path, default=Path("demo-output"))
    demo.add_argument("--size", type=int, default=384)
    demo.add_argument("--iterations", type=int, default=100)
    demo.set_defaults(handler=cmd_demo, uses_tensorflow=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from worker.runtime.settings import Settings

    settings = Settings()
    settings.intake.max_side = args.size
    photo = _sample(settings.samples_dir, "photos/grace_hopper.png", settings.allow_download)
    starry = _sample(settings.samples_dir, "styles/starry.jpg", settings.allow_download)
    params = settings.style.model_copy(update={"iterations": args.iterations})
    started = time.monotonic()
    out = args.out_dir / "grace_hopper"
    job = LocalJob(photo, [(starry, 1.0)], "background", ("person",), params)
    written = run_and_write(job, settings, out.with_suffix(".starry.png"), "background ")
    job = LocalJob(photo, [], "portrait", ("person",), params)
    portrait = run_and_write(job, settings, out.with_suffix(".portrait.png"), "portrait   ")
    print(f"demo finished in {time.monotonic() - started:.0f} s at {args.size} px:")
    for label, paths in (("background (starry)", written), ("portrait", portrait)):
        print(f"  {label:<20} contact sheet {paths['sheet']}  result {paths['result']}")
    return 0


def _sample(samples_dir: Path, name: str, allow_download: bool) -> bytes:
    path = samples_dir.expanduser() / name
    if not path.exists():
        if not allow_download:
            raise BackdropError(ErrorCode.INPUT_NOT_FOUND, f"sample {path} missing, downloads off")
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"fetching {name} from {SAMPLE_URLS[name]}")
        request = urllib.request.Request(SAMPLE_URLS[name], headers={"User-Agent": "backdrop-demo"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                path.write_bytes(response.read())
        except OSError as exc:
            raise BackdropError(ErrorCode.INPUT_NOT_FOUND, f"cannot fetch {name}: {exc}") from None
    return path.read_bytes()


def add_models(commands: Any) -> None:
    models = commands.add_parser("models", help="list or pull model files")
    models.add_argument("action", choices=("list", "pull"))
    models.add_argument("names", nargs="*", help="models to pull (default: the TFLite DeepLab)")
    models.set_defaults(handler=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from worker.pipeline.features import preferred_network
    from worker.runtime.models import REGISTRY, model_path, model_status
    from worker.runtime.settings import Settings

    settings = Settings()
    if args.action == "list":
        print(f"models directory: {settings.models_dir}")
        for name, spec in REGISTRY.items():
            print(f"  {name:<26} {model_status(name, settings.models_dir):<28} {spec.description}")
        # What a job this worker resolves will name: every worker of a fleet
        # should print the same line (deploy/README.md).
        seg = settings.segmentation
        print(
            f"jobs resolved here name: segmenter {seg.backend} {seg.model_name()}, "
            f"style network {preferred_network(settings.models_dir)}"
        )
        return 0
    for name in args.names or [settings.segmentation.tflite_model]:
        print(f"{name}: {model_path(name, settings.models_dir, allow_download=True)}")
    return 0
