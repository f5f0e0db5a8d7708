"""The photo app's client: Backdrop's HTTP API with an API key, nothing else.

It needs only pydantic and the standard library (urllib): no Redis, no S3
credentials, no Celery. Every gateway error arrives as a BackdropError with the
service's code (and `retry_after` for 429 and 503).

    client = BackdropClient("https://backdrop.example", api_key="bdk_...")
    photo = client.upload_photo(open("me.jpg", "rb").read())
    painting = client.upload_painting(open("starry.jpg", "rb").read())
    job = client.submit(JobRequest(photo_key=photo, styles=[StyleRef(key=painting)]))
    for kind, status in client.events(job.job_id):   # progress, preview, latest, final
        ...
    png = client.download(client.status(job.job_id).styles[0].result_url)
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobAccepted, JobRequest, JobStatus

MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a status or listing; nothing bigger is read
# A result of `output: original` at the intake's 50 MP: RGB PNG at worst about 3
# bytes a pixel (noise does not compress), with room for the format's overhead.
MAX_DOWNLOAD_BYTES = 160 * 1024 * 1024


class CatalogStyle(BaseModel):
    name: str
    thumbnail_url: str


class BackdropClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def upload_photo(self, data: bytes) -> str:
        """The photo's key (only this API key's tenant may name it in a job)."""
        return str(self._call("POST", "/v1/photos", data, "application/octet-stream")["key"])

    def upload_painting(self, data: bytes) -> str:
        return str(self._call("POST", "/v1/paintings", data, "application/octet-stream")["key"])

    def submit(self, request: JobRequest) -> JobAccepted:
        body = request.model_dump_json(exclude_none=True).encode()
        return JobAccepted.model_validate(self._call("POST", "/v1/jobs", body, "application/json"))

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._call("GET", f"/v1/jobs/{job_id}"))

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._call("DELETE", f"/v1/jobs/{job_id}"))

    def styles(self) -> list[CatalogStyle]:
        return [CatalogStyle.model_validate(s) for s in self._call("GET", "/v1/styles")]

    def events(self, job_id: str) -> Iterator[tuple[str, JobStatus]]:
        """The job's server-sent events as (kind, status) until the final one."""
        request = self._request("GET", f"/v1/jobs/{job_id}/events")
        with self._open(request, timeout=None) as answer:
            kind = ""
            for raw in answer:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    yield kind, JobStatus.model_validate_json(line[6:])

    def wait(self, job_id: str, timeout: float = 600.0) -> JobStatus:
        """Poll (0.2 s doubling to 2 s) until the job is final."""
        deadline, delay = time.monotonic() + timeout, 0.2
        while not (status := self.status(job_id)).done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s")
            time.sleep(delay)
            delay = min(2.0, delay * 2)
        return status

    def download(self, url: str) -> bytes:
        """A result, preview or intermediate by its presigned URL from a status."""
        with self._open(urllib.request.Request(url), timeout=self.timeout) as answer:
            return _whole(answer, MAX_DOWNLOAD_BYTES)

    def _call(self, method: str, path: str, body: bytes | None = None,
              content_type: str | None = None) -> Any:  # fmt: skip
        request = self._request(method, path, body, content_type)
        with self._open(request, timeout=self.timeout) as answer:
            return json.loads(_whole(answer, MAX_ANSWER_BYTES))

    def _request(self, method: str, path: str, body: bytes | None = None,
                 content_type: str | None = None) -> urllib.request.Request:  # fmt: skip
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        return urllib.request.Request(self.base_url + path, body, headers, method=method)

    @staticmethod
    def _open(request: urllib.request.Request, timeout: float | None) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise _error_of(exc) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise BackdropError(ErrorCode.TIMEOUT, f"Backdrop did not answer: {exc}") from None


def _error_of(exc: urllib.error.HTTPError) -> BackdropError:
    """The gateway's JSON error as a BackdropError; any other answer as INTERNAL."""
    retry = exc.headers.get("Retry-After")
    try:
        error = json.loads(exc.read(64 * 1024))["error"]
        code, message = ErrorCode(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = ErrorCode.INTERNAL, f"HTTP {exc.code} without Backdrop's error body"
    return BackdropError(code, message, int(retry) if retry and retry.isdigit() else None)


def _whole(answer: Any, limit: int) -> bytes:
    """The answer's body, all of it, or an error: a body cut at `limit`, or by
    a connection that ended before its Content-Length, was returned as if
    whole (a truncated PNG)."""
    declared = answer.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BackdropError(ErrorCode.INTERNAL, f"the answer is {declared} bytes, over {limit}")
    data = bytes(answer.read(limit + 1))
    if len(data) > limit:
        raise BackdropError(ErrorCode.INTERNAL, f"the answer is over {limit} bytes")
    if declared.isdigit() and len(data) != int(declared):  # the connection ended early
        raise BackdropError(ErrorCode.TIMEOUT, f"the answer ended after {len(data)} of "
                            f"{declared} bytes")  # fmt: skip
    return data
