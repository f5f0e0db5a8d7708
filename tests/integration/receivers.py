"""Webhook receivers on loopback for the integration tests: real HTTP servers
that answer as told, and one that accepts connections and never answers."""

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable


class Receiver:
    """A loopback HTTP server; `answer(n)` gives (status, delay) for the n-th POST."""

    def __init__(self, answer: Callable[[int], tuple[int, float]], port: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # time.time() of each POST's arrival
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, delay = answer(len(outer.calls))
                outer.calls.append((dict(self.headers), body))
                outer.times.append(time.time())
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/backdrop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingReceiver:
    """Accepts every TCP connection and never reads or answers: each caller
    waits for its own time limit."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hooks/hang"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.close()


class TricklingReceiver:
    """Accepts a connection, reads the request, then sends `opening` and one
    more byte every `every` seconds for `seconds`: each read is quick, the
    answer never whole (b"HTTP/1.1 200 OK\\r\\nX-Slow: ": a header trickles
    after a good status line)."""

    def __init__(self, opening: bytes, seconds: float = 8.0, every: float = 0.2) -> None:
        self.opening, self.seconds, self.every = opening, seconds, every
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self.server.accept()
            with connection:
                started = time.monotonic()
                connection.settimeout(0.5)
                with contextlib.suppress(OSError):
                    connection.recv(65536)  # the request
                connection.sendall(self.opening)
                while time.monotonic() - started < self.seconds:
                    try:
                        connection.sendall(b"a")
                    except OSError:  # the caller gave up
                        return
                    time.sleep(self.every)

    def close(self) -> None:
        self.server.close()
