"""ObjectStore on a local directory: <root>/<bucket>/<key>. For embedded runs and tests."""

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from worker.storage import ObjectNotFound, valid_key


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / valid_key(bucket) / valid_key(key)

    def ensure_buckets(self, buckets: list[str]) -> None:
        for bucket in buckets:
            (self.root / valid_key(bucket)).mkdir(parents=True, exist_ok=True)

    def expire_after(self, bucket: str, days: int, prefix: str = "") -> None:
        """Not enforced: a local directory has no lifecycle; embedded runs clean up themselves."""

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then rename: a reader never sees half an object.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._path(bucket, key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(f"{bucket}/{key}") from None

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def age(self, bucket: str, key: str) -> timedelta | None:
        try:
            written = self._path(bucket, key).stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        return timedelta(seconds=max(0.0, time.time() - written))

    def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        base = self.root / valid_key(bucket)
        keys = (str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix))

    def presigned_get(self, bucket: str, key: str, expires: timedelta) -> str:
        return self._path(bucket, key).as_uri()
