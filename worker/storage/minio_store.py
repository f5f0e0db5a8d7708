"""ObjectStore on MinIO, or any S3 server, through the minio client."""

import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.error import MinioException, S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from worker.storage import ObjectNotFound, StorageUnavailable, valid_key

log = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}


class MinioStore:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str = "us-east-1",
        public_endpoint: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        # Few quick retries here; the task layer retries with backoff on top.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds * 3),
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
            ),
        )
        self.client = Minio(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        # Presigned URLs are signed for the host the browser will use; signing
        # needs no network when the region is given.
        self.signer = Minio(
            endpoint=public_endpoint or endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
        )

    def ensure_buckets(self, buckets: list[str]) -> None:
        for bucket in buckets:
            try:
                if not self.client.bucket_exists(bucket_name=bucket):
                    self.client.make_bucket(bucket_name=bucket)
            except S3Error as exc:
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise StorageUnavailable(f"cannot create bucket {bucket}: {exc}") from exc
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise StorageUnavailable(f"cannot reach the object store: {exc}") from exc

    def expire_after(self, bucket: str, days: int, prefix: str = "") -> None:
        """A lifecycle rule: intermediates (masks, stylized images), or uploads,
        vanish `days` after they were last written."""
        rule = Rule(
            ENABLED,
            rule_filter=Filter(prefix=prefix),
            rule_id="expire",
            expiration=Expiration(days=days),
        )
        self._call(
            lambda: self.client.set_bucket_lifecycle(
                bucket_name=bucket, config=LifecycleConfig([rule])
            )
        )

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        valid_key(key)
        self._call(
            lambda: self.client.put_object(
                bucket_name=bucket,
                object_name=key,
                data=io.BytesIO(data),
                length=len(data),
                content_type=content_type,
            )
        )

    def get(self, bucket: str, key: str) -> bytes:
        valid_key(key)

        def read() -> bytes:
            response = self.client.get_object(bucket_name=bucket, object_name=key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call(read)

    def exists(self, bucket: str, key: str) -> bool:
        return self.age(bucket, key) is not None

    def age(self, bucket: str, key: str) -> timedelta | None:
        valid_key(key)
        try:
            stat = self._call(lambda: self.client.stat_object(bucket_name=bucket, object_name=key))
        except ObjectNotFound:
            return None
        if stat.last_modified is None:  # no S3 server leaves it out; counted as new
            return timedelta(0)
        return max(timedelta(0), datetime.now(UTC) - stat.last_modified)

    def delete(self, bucket: str, key: str) -> None:
        valid_key(key)
        self._call(lambda: self.client.remove_object(bucket_name=bucket, object_name=key))

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        return self._call(
            lambda: [
                o.object_name or ""
                for o in self.client.list_objects(bucket_name=bucket, prefix=prefix, recursive=True)
            ]
        )

    def presigned_get(self, bucket: str, key: str, expires: timedelta) -> str:
        valid_key(key)
        # S3 accepts 1 s .. 7 days.
        expires = min(max(expires, timedelta(seconds=1)), timedelta(days=7))
        return self.signer.presigned_get_object(
            bucket_name=bucket, object_name=key, expires=expires
        )

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(f"{exc.bucket_name}/{exc.object_name}: {exc.code}") from None
            raise StorageUnavailable(f"object store error {exc.code}: {exc.message}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"cannot reach the object store: {exc}") from exc
