"""The ObjectStore contract: buckets of immutable objects addressed by key.

Implementations: minio_store.MinioStore (MinIO or any S3 server) for the
service, local_store.LocalStore (a directory) for embedded runs and tools.
"""

from datetime import timedelta
from typing import Protocol

from api_contracts.models import check_object_key


class StorageError(Exception):
    """Base of the storage errors."""


class ObjectNotFound(StorageError):
    """The bucket or key does not exist: the caller's input is missing."""


class StorageUnavailable(StorageError):
    """The store did not answer or failed: transient, worth a retry."""


class ObjectStore(Protocol):
    def ensure_buckets(self, buckets: list[str]) -> None: ...

    def expire_after(self, bucket: str, days: int, prefix: str = "") -> None:
        """Objects in `bucket` (under `prefix`) are deleted `days` after they
        were last written."""
        ...

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Write the whole object at once: readers see the old object or the new, never a part."""
        ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def age(self, bucket: str, key: str) -> timedelta | None:
        """How long ago the object was last written; None if there is none."""
        ...

    def delete(self, bucket: str, key: str) -> None: ...

    def list(self, bucket: str, prefix: str = "") -> list[str]: ...

    def presigned_get(self, bucket: str, key: str, expires: timedelta) -> str: ...


def valid_key(key: str) -> str:
    try:
        return check_object_key(key)
    except ValueError as exc:
        raise ObjectNotFound(str(exc)) from None
