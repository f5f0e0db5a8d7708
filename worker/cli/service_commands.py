"""`backdrop worker | submit | status | styles`: the queue service from the shell."""

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from api_contracts.errors import BackdropError, ErrorCode
from worker.cli.options import add_job_options, job_options, style_argument


def add_service_commands(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run a Celery worker (queues gpu and/or cpu)")
    worker.add_argument("--queues", default="gpu,gpu-batch,cpu")
    worker.add_argument("--concurrency", type=int, default=1,
                        help="processes; keep 1 per GPU (one TensorFlow per device)")  # fmt: skip
    worker.add_argument("--gpus", default="",
                        help="e.g. 0,1: one worker process per GPU, each sees only it")  # fmt: skip
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--name", default="", help="Celery node name, e.g. gpu0@%%h")
    worker.add_argument("--check", action="store_true",
                        help="health check: fail if the worker stopped consuming")  # fmt: skip
    worker.set_defaults(handler=cmd_worker)

    submit = commands.add_parser("submit", help="upload a photo and submit a job")
    submit.add_argument("photo", type=Path)
    submit.add_argument("--style", action="append", default=[],
                        help="PAINTING[:WEIGHT] (a file) or @NAME[:WEIGHT] (catalog)")  # fmt: skip
    submit.add_argument("--mode", default="background")
    submit.add_argument("--subject", default="person")
    submit.add_argument("--subject-style", help="mode dual: the subject's painting (or @NAME)")
    add_job_options(submit)
    submit.add_argument("--wait", action="store_true", help="show progress bars until done")
    submit.add_argument("--timeout", type=float, default=3600)
    submit.set_defaults(handler=cmd_submit)

    gateway = commands.add_parser("gateway", help="the HTTP API (FastAPI with uvicorn)")
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, default=8080)
    gateway.set_defaults(handler=cmd_gateway)

    status = commands.add_parser("status", help="a job's state, per-style progress and URLs")
    status.add_argument("job_id")
    status.set_defaults(handler=cmd_status)

    styles = commands.add_parser("styles", help="the style catalog")
    styles.add_argument("action", choices=("add", "list"))
    styles.add_argument("name", nargs="?")
    styles.add_argument("image", nargs="?", type=Path)
    styles.set_defaults(handler=cmd_styles)


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.server import serve

    serve(args.host, args.port)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.check:
        from worker.cli.operator_commands import check_worker

        return check_worker(args.name)
    gpus = [g for g in args.gpus.split(",") if g.strip()]
    if gpus:
        return _one_worker_per_gpu(args, gpus)
    _metrics_directory()
    _hand_back_on_sigterm()
    from worker.service.celery_app import app

    argv = ["worker", "-Q", args.queues, "-c", str(args.concurrency), "--pool", "prefork",
            "-l", args.loglevel, "-E"]  # fmt: skip
    if args.name:
        argv += ["-n", args.name]
    app.worker_main(argv)
    return 0


def _hand_back_on_sigterm() -> None:
    """SIGTERM (how Kubernetes and compose stop a container) becomes Celery's
    cold shutdown with its soft wait (queue.soft_shutdown_seconds) instead of a
    warm shutdown that waits for every step however long: a pod removed by a
    scale-down hands its step back. Billiard reads this when first imported."""
    if "billiard.common" in sys.modules:
        raise RuntimeError("REMAP_SIGTERM must be set before billiard is imported")
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")


def _metrics_directory() -> None:
    """Before anything imports prometheus_client: the directory where the
    worker's children write their samples (worker.service.metrics), removed
    when the worker exits; none when metrics are off. An operator's directory
    is emptied instead (samples of a previous run would count)."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    from worker.runtime.settings import Settings

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        if Settings().metrics.port:
            made = tempfile.mkdtemp(prefix="backdrop-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
            atexit.register(shutil.rmtree, made, ignore_errors=True)
        return
    Path(given).mkdir(parents=True, exist_ok=True)
    for stale in Path(given).glob("*.db"):
        stale.unlink()


def _one_worker_per_gpu(args: argparse.Namespace, gpus: list[str]) -> int:
    import signal

    procs = [subprocess.Popen(cmd, env=env) for cmd, env in gpu_worker_commands(args, gpus)]

    def forward(signum: int, _: object) -> None:  # as PID 1 of a pod, only we get it
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, forward)
    return max(p.wait() for p in procs)


def gpu_worker_commands(
    args: argparse.Namespace, gpus: list[str]
) -> list[tuple[list[str], dict[str, str]]]:
    """CUDA does not survive fork and TensorFlow takes every GPU it sees: so each
    GPU gets its own worker process (one child) that sees only that device."""
    from worker.runtime.settings import Settings

    commands, port = [], Settings().metrics.port
    for n, gpu in enumerate(gpus):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu,
               "BACKDROP_METRICS__PORT": str(port + n if port else 0)}  # fmt: skip
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each worker its own
        cmd = [sys.executable, "-m", "worker.cli", "worker", "--queues", args.queues,
               "--concurrency", "1", "--loglevel", args.loglevel,
               "--name", f"gpu{gpu}@%h"]  # fmt: skip
        commands.append((cmd, env))
    return commands


def client_from_settings() -> Any:
    from jobstore.callback_rules import CallbackRules
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig
    from worker.runtime.settings import Settings

    s = Settings()
    try:
        config = TrustedClientConfig.from_connection(
            s.redis, s.storage, limits=s.queue, production=s.environment == "production",
            callbacks=CallbackRules.model_validate(  # the rules alone: no secret
                s.webhooks.model_dump(include=set(CallbackRules.model_fields))),
        )  # fmt: skip
    except ValueError as exc:
        raise BackdropError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    return TrustedClient(config)


def cmd_submit(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api_contracts.models import JobRequest

    client = client_from_settings()
    try:
        photo_key = client.upload(args.photo.read_bytes())
    except OSError as exc:
        raise BackdropError(ErrorCode.INPUT_NOT_FOUND, f"cannot read {args.photo}: {exc}") from None
    styles = [_style_ref(client, text) for text in args.style]
    subject_style = _style_ref(client, args.subject_style) if args.subject_style else None
    options = job_options(args)
    try:
        request = JobRequest(photo_key=photo_key, styles=styles, mode=args.mode,
                             subjects=args.subject.split(","), options=options,
                             subject_style=subject_style)  # fmt: skip
    except ValidationError as exc:
        raise BackdropError(ErrorCode.INVALID_REQUEST, str(exc.errors()[0]["msg"])) from None
    accepted = client.submit(request)
    print(f"job {accepted.job_id} ({accepted.outputs} output(s))")
    if not args.wait:
        return 0
    final = _wait_with_bars(client, accepted.job_id, args.timeout)
    _print_status(final)
    return 0 if final.state == "SUCCEEDED" else 1


def _style_ref(client: Any, text: str) -> dict[str, Any]:
    """PAINTING[:WEIGHT] uploads a file; @NAME[:WEIGHT] names a catalog style."""
    path, weight = style_argument(text)
    if str(path).startswith("@"):
        return {"name": str(path)[1:], "weight": weight}
    try:
        return {"key": client.upload(path.read_bytes()), "weight": weight}
    except OSError as exc:
        raise BackdropError(ErrorCode.STYLE_NOT_FOUND, f"cannot read {path}: {exc}") from None


def _wait_with_bars(client: Any, job_id: str, timeout: float) -> Any:
    from tqdm import tqdm

    bars: dict[int, Any] = {}

    def show(status: Any) -> None:
        for style in status.styles:
            bar = bars.setdefault(
                style.index, tqdm(total=100, desc=f"style {style.index}", unit="%")
            )
            bar.update(style.progress - bar.n)
            bar.set_postfix(state=str(style.state))

    try:
        return client.wait(job_id, timeout=timeout, on_status=show)
    finally:
        for bar in bars.values():
            bar.close()


def cmd_status(args: argparse.Namespace) -> int:
    _print_status(client_from_settings().status(args.job_id))
    return 0


def _print_status(status: Any) -> None:
    print(f"job {status.job_id}: {status.state}"
          + (f" {status.error.code}: {status.error.message}" if status.error else ""))  # fmt: skip
    for style in status.styles:
        line = f"  output {style.index}: {style.state} {style.progress:3d}%"
        if style.error:
            line += f" {style.error.code}: {style.error.message}"
        if style.result_url:
            line += f"\n    {style.result_url}"
        print(line)


def cmd_styles(args: argparse.Namespace) -> int:
    client = client_from_settings()
    if args.action == "list":
        for name in client.list_styles():
            print(name)
        return 0
    if not args.name or not args.image:
        raise BackdropError(ErrorCode.INVALID_REQUEST, "usage: backdrop styles add NAME IMAGE")
    try:
        data = args.image.read_bytes()
    except OSError as exc:
        raise BackdropError(ErrorCode.STYLE_NOT_FOUND, f"cannot read {args.image}: {exc}") from None
    print(f"added style {client.add_style(args.name, data)}")
    return 0
