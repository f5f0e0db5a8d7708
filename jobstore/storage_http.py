"""How the trusted client talks to the object store: bounded waits, and an
outage as STORAGE_UNAVAILABLE.

minio's own HTTP client retries five times with backoff (about 6 s against a
port where nothing listens) and waits minutes for a read; a gateway request
held that long answered 500. Here a connection fails within seconds and
callers get the contract's code (the gateway's 503)."""

import contextlib
import os
from collections.abc import Iterator

import certifi
import urllib3
from minio.error import ServerError
from urllib3.util import Retry, Timeout

from api_contracts.errors import BackdropError, ErrorCode


def bounded_http(connect_seconds: float, read_seconds: float, retries: int) -> urllib3.PoolManager:
    """minio's default client with shorter waits and fewer, quicker retries."""
    return urllib3.PoolManager(
        timeout=Timeout(connect=connect_seconds, read=read_seconds),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=Retry(total=retries, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
    )


@contextlib.contextmanager
def storage_call(what: str) -> Iterator[None]:
    """No answer, a broken connection or a 5xx from the store: STORAGE_UNAVAILABLE."""
    try:
        yield
    except (urllib3.exceptions.HTTPError, OSError, ServerError) as exc:
        raise BackdropError(
            ErrorCode.STORAGE_UNAVAILABLE, f"the object store did not answer ({what}): "
            f"{type(exc).__name__}"
        ) from None  # fmt: skip
