"""`backdrop serve`: the page, the HTTP API and one worker on this machine, for
a person trying Backdrop. It needs Redis and an S3 endpoint (README: "Try it
on a laptop"); it makes a tenant with a fresh key, fills an empty catalog with
the sample paintings, and prints the page's address with the key in it."""

import argparse
import socket
import subprocess
import sys
import time
from typing import Any

from api_contracts.errors import BackdropError, ErrorCode


def add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="the try-it page, the HTTP API and one worker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--tenant", default="try", help="whose key the page uses (made if new)")
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from jobstore.tenants import Limits, Tenants
    from worker.cli.service_commands import client_from_settings

    client = client_from_settings()
    try:
        client.redis.ping()
    except Exception as exc:
        raise BackdropError(
            ErrorCode.STORAGE_UNAVAILABLE, f"Redis does not answer: {exc}"
        ) from None
    tenants = Tenants(client.redis)
    if tenants.get(args.tenant) is None:
        key = tenants.add(args.tenant, Limits(max_open_jobs=8, outputs_per_minute=60)).api_key
    else:
        key = tenants.new_key(args.tenant, reinstate=True)  # the person asked to try it
    _fill_catalog(client)
    procs = _start(args)
    try:
        _wait_for(args.host, args.port, procs)
        print(f"\n  Backdrop is ready: http://{args.host}:{args.port}/#key={key.get_secret_value()}\n"
              "  (the first job waits for the worker to load its models; Ctrl-C stops)\n",
              flush=True)  # fmt: skip
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        return 1  # one of them stopped on its own
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def _fill_catalog(client: Any) -> None:
    """Buckets made (a fresh MinIO has none until a worker starts) and an empty
    catalog given the sample paintings."""
    from worker.runtime.settings import Settings

    c = client.config
    try:
        for bucket in (c.input_bucket, c.styles_bucket, c.results_bucket):
            if not client.s3.bucket_exists(bucket_name=bucket):
                client.s3.make_bucket(bucket_name=bucket)
    except Exception as exc:
        why = f"no S3 endpoint at {c.s3_endpoint}: {str(exc)[:200]}"
        raise BackdropError(ErrorCode.STORAGE_UNAVAILABLE, why) from None
    if client.list_styles():
        return
    for painting in sorted((Settings().samples_dir.expanduser() / "styles").glob("*.jpg")):
        client.add_style(painting.stem.replace(" ", "_").lower(), painting.read_bytes())


def _start(args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    cli = [sys.executable, "-m", "worker.cli"]
    worker = subprocess.Popen([*cli, "worker", "--concurrency", "1"])
    gateway = subprocess.Popen([*cli, "gateway", "--host", args.host, "--port", str(args.port)])
    return [worker, gateway]


def _wait_for(host: str, port: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise BackdropError(ErrorCode.INTERNAL, f"the gateway did not start on {host}:{port}")
