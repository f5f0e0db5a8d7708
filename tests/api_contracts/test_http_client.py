"""The photo app's client reads a download whole or says it could not: a body
cut at the client's cap was returned as if it were the whole PNG."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import api_contracts.http_client as http_client
from api_contracts.errors import BackdropError
from api_contracts.http_client import BackdropClient

CAP = 1000


class _Bodies(BaseHTTPRequestHandler):
    """/N: N bytes with their Content-Length; /N/unsized: N bytes, then close;
    /N/cut: a Content-Length of N, half of them, then close."""

    def do_GET(self) -> None:
        size, *how = self.path.strip("/").split("/")
        body = b"x" * int(size)
        self.send_response(200)
        if how != ["unsized"]:
            self.send_header("Content-Length", str(len(body)))
        if how == ["cut"]:
            body = body[: len(body) // 2]
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Bodies)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("unsized", ["", "/unsized"])
def test_a_download_over_the_cap_is_an_error_not_a_cut_file(server, monkeypatch, unsized) -> None:
    monkeypatch.setattr(http_client, "MAX_DOWNLOAD_BYTES", CAP)
    client = BackdropClient(server, api_key="k")
    assert client.download(f"{server}/{CAP}{unsized}") == b"x" * CAP
    with pytest.raises(BackdropError, match=f"over {CAP}"):
        client.download(f"{server}/{CAP + 1}{unsized}")


def test_the_download_cap_holds_a_50_mp_result() -> None:
    assert http_client.MAX_DOWNLOAD_BYTES >= 50_000_000 * 3


def test_a_download_cut_short_is_an_error_not_a_cut_file(server) -> None:
    with pytest.raises(BackdropError, match="ended after 500 of 1000 bytes"):
        BackdropClient(server, api_key="k").download(f"{server}/1000/cut")
