"""A photo app as the README tells it: only `api_contracts` installed, only an
API key. Run by tests/photo_app/test_photo_app.py in a virtual environment of
its own; prints what it saw as JSON."""

import json
import sys
from pathlib import Path

from api_contracts.http_client import BackdropClient
from api_contracts.models import JobRequest, StyleRef


def main(base_url: str, api_key: str, photo: Path, painting: Path) -> None:
    client = BackdropClient(base_url, api_key)
    photo_key = client.upload_photo(photo.read_bytes())
    style = StyleRef(key=client.upload_painting(painting.read_bytes()))
    job = client.submit(JobRequest(photo_key=photo_key, styles=[style], options={"seed": 777}))
    kinds = [kind for kind, _ in client.events(job.job_id)]
    final = client.status(job.job_id)
    result = client.download(final.styles[0].result_url or "")
    slow = JobRequest(photo_key=photo_key, styles=[style], options={"iterations": 400, "seed": 778})
    cancelled = client.cancel(client.submit(slow).job_id)
    try:
        client.status("0" * 32)
        missing = "found"
    except Exception as exc:  # the gateway's error, as the contract's BackdropError
        missing = f"{type(exc).__name__}:{getattr(exc, 'code', '')}"
    print(json.dumps({
        "events": kinds, "state": final.state, "result_png": result[:8] == b"\x89PNG\r\n\x1a\n",
        "cancelled": cancelled.state, "missing": missing, "modules": sorted(sys.modules),
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
