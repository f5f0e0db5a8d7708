"""Parts the fault tests break on purpose: their own redis-server (never the
shared one on 6379), a TCP proxy in front of the S3 server, worker processes."""

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis import Redis

from tests.services import ACCESS, SECRET, WorkerProcess, free_port, service_env, wait_for_port


class OwnRedis:
    """A redis-server on a free port with an append-only file, restartable."""

    def __init__(self, data_dir: Path) -> None:
        self.port, self.dir = free_port(), data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            Redis.from_url(self.url).shutdown(nosave=False)
        if self.proc:
            self.proc.wait(timeout=10)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target port; down() refuses and cuts connections."""

    def __init__(self, target_port: int) -> None:
        self.port, self.target = free_port(), target_port
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.up()

    def up(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def down(self) -> None:
        if self._server:
            # shutdown() wakes the thread blocked in accept(); close() alone
            # would leave the port listening until that call returns.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def workers(
    tmp: Path, redis_url: str, s3: str, count: int = 1, **env: str
) -> Iterator[list[WorkerProcess]]:
    """`count` worker processes (one child each) on the given Redis and S3."""
    tmp.mkdir(parents=True, exist_ok=True)
    base = service_env(s3, BACKDROP_REDIS__URL=redis_url, **env)
    procs = [WorkerProcess(base, tmp / f"worker{i}.log", concurrency=1) for i in range(count)]
    try:
        for proc in procs:
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def make_client(redis_url: str, s3: str) -> Any:
    from jobstore.trusted_client import TrustedClient, TrustedClientConfig

    return TrustedClient(TrustedClientConfig(redis_url=redis_url, s3_endpoint=s3, access_key=ACCESS,
                               secret_key=SECRET))  # fmt: skip
