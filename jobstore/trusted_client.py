"""The producer's client: upload, submit, status, wait, cancel, download.

It enqueues by task name (send_task) and reads the job record in Redis, so a
photo app installs pydantic, celery, redis and minio, and no worker code.
"""

import hashlib
import io
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import Any

from celery import Celery
from minio import Minio
from minio.error import S3Error
from pydantic import BaseModel, Field, SecretStr
from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import (
    JobAccepted,
    JobError,
    JobRequest,
    JobState,
    JobStatus,
    Priority,
)
from api_contracts.names import DEFAULT_TENANT, PRIORITY_QUEUES, TASK_SEGMENT
from jobstore.admission import Send, admit, hold, pump
from jobstore.callback_rules import CallbackRules
from jobstore.connection import RedisConnection, StorageConnection
from jobstore.job_cost import job_units
from jobstore.limits import JobLimits
from jobstore.records import (
    CorruptRecord,
    JobRecord,
    corrupt_status,
    now,
    published_max_side,
    valid_job_id,
)
from jobstore.storage_http import bounded_http, storage_call
from jobstore.tenants import Tenants
from jobstore.uploads import Uploads

log = logging.getLogger(__name__)


class TrustedClientConfig(BaseModel):
    """A producer's connection, flat (`TrustedClientConfig(redis_url=…, s3_endpoint=…)`),
    or built from the services' own settings with `from_connection`."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    s3_endpoint: str = "127.0.0.1:9000"
    access_key: SecretStr
    secret_key: SecretStr
    secure: bool = False
    region: str = "us-east-1"
    public_endpoint: str | None = None
    input_bucket: str = "backdrop-inputs"
    styles_bucket: str = "backdrop-styles"
    results_bucket: str = "backdrop-results"
    url_expiry_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    upload_ttl_days: int = Field(7, ge=1, le=365)
    # The service's own ceilings (below the contract's): refused here, not queued.
    limits: JobLimits = JobLimits()
    # Where the workers will deliver a callback; in production, a callback they
    # would refuse on every attempt is refused here instead.
    callbacks: CallbackRules = CallbackRules()
    production: bool = False
    # Object store calls fail within seconds (STORAGE_UNAVAILABLE), not minutes.
    storage_connect_seconds: float = Field(3.0, gt=0)
    storage_read_seconds: float = Field(30.0, gt=0)
    storage_retries: int = Field(1, ge=0, le=10)
    # A tenant's key: its jobs, its limits, only its jobs readable. Without
    # one, jobs belong to the default tenant and every job is readable.
    api_key: SecretStr | None = None

    @classmethod
    def from_connection(
        cls, redis: RedisConnection, storage: StorageConnection, **extra: Any
    ) -> "TrustedClientConfig":
        """The one mapping from BACKDROP_REDIS__* / BACKDROP_STORAGE__* settings."""
        access_key, secret_key = storage.credentials()
        return cls(redis_url=redis.url, s3_endpoint=storage.endpoint, access_key=access_key,
                   secret_key=secret_key, secure=storage.secure, region=storage.region,
                   public_endpoint=storage.public_endpoint, input_bucket=storage.input_bucket,
                   styles_bucket=storage.styles_bucket, results_bucket=storage.results_bucket,
                   url_expiry_seconds=storage.url_expiry_seconds,
                   upload_ttl_days=storage.upload_ttl_days, **extra)  # fmt: skip


class TrustedClient:
    def __init__(self, config: TrustedClientConfig) -> None:
        self.config = config
        self.redis = Redis.from_url(config.redis_url)
        self.celery = Celery("backdrop-client", broker=config.redis_url, set_as_current=False)
        self.celery.conf.update(task_serializer="json", accept_content=["json"])
        creds = {
            "access_key": config.access_key.get_secret_value(),
            "secret_key": config.secret_key.get_secret_value(),
            "secure": config.secure,
            "region": config.region,
            "http_client": bounded_http(config.storage_connect_seconds,
                                        config.storage_read_seconds, config.storage_retries),
        }  # fmt: skip
        self.s3 = Minio(endpoint=config.s3_endpoint, **creds)  # type: ignore[arg-type]
        self.signer = Minio(endpoint=config.public_endpoint or config.s3_endpoint, **creds)  # type: ignore[arg-type]

    def upload(self, data: bytes, tenant: str | None = None) -> str:
        """Store a photo or painting; returns its key, which only its uploader
        (the tenant, or the client's key's) may name in a job. Content-addressed:
        idempotent, and stored once whoever uploads the same bytes."""
        owner = self._upload_owner(tenant)
        limits = Tenants(self.redis).limits(owner) if owner else None
        if owner and limits:  # the bytes first: refused, they are not counted
            self.uploads.take_bytes(owner, len(data), limits.upload_mb_per_hour)
            try:
                self.uploads.take_slot(owner, limits.uploads_per_hour)
            except BackdropError:
                self.uploads.give_back(owner, len(data), limits.upload_mb_per_hour, 0)
                raise
        key = f"uploads/{hashlib.sha256(data).hexdigest()}"
        try:
            self._put(self.config.input_bucket, key, data)
        except Exception:  # not stored: not counted (a retry after an outage is not charged)
            if owner and limits:
                self.uploads.give_back(owner, len(data), limits.upload_mb_per_hour,
                                       limits.uploads_per_hour)  # fmt: skip
            raise
        if owner:
            self.uploads.claim(owner, key)
        return key

    def check_upload_room(self, tenant: str | None = None, declared: int = 0) -> None:
        """QUOTA_EXCEEDED if the tenant could not upload now, or not `declared`
        bytes (a body's Content-Length; nothing is taken)."""
        owner = self._upload_owner(tenant)
        if owner:
            limits = Tenants(self.redis).limits(owner)
            self.uploads.check_room(owner, limits.uploads_per_hour, limits.upload_mb_per_hour,
                                    declared)  # fmt: skip

    def _upload_owner(self, tenant: str | None) -> str | None:
        """Whose quota and claims an upload counts on (None: in-house code's, unlimited)."""
        owner = tenant or self.tenant
        return owner if owner and owner != DEFAULT_TENANT else None

    @cached_property
    def uploads(self) -> Uploads:
        return Uploads(self.redis, self.config.upload_ttl_days * 24 * 3600)

    def add_style(self, name: str, data: bytes) -> str:
        """Register a painting in the style catalog under `name`."""
        from api_contracts.models import StyleRef

        StyleRef(name=name)  # validates the name
        self._put(self.config.styles_bucket, f"catalog/{name}", data)
        return name

    def list_styles(self) -> list[str]:
        with storage_call("list the catalog"):
            objects = self.s3.list_objects(
                bucket_name=self.config.styles_bucket, prefix="catalog/", recursive=True
            )
            return sorted((o.object_name or "").removeprefix("catalog/") for o in objects)

    @cached_property
    def tenant(self) -> str | None:
        """The API key's tenant (UNAUTHORIZED/FORBIDDEN if the key is not valid);
        None without a key."""
        key = self.config.api_key
        if key is None:
            return None
        return Tenants(self.redis).authenticate(key.get_secret_value()).name

    def submit(self, request: JobRequest, tenant: str | None = None) -> JobAccepted:
        """Within the tenant's limits (QUOTA_EXCEEDED, nothing queued, past
        them): record the job as QUEUED, hold it in the tenant's fair queue,
        and send what the window allows (jobstore.admission)."""
        self.config.limits.check(request)
        self.config.callbacks.refuse_at_submit(request.callback_url, self.config.production)
        owner = tenant or self.tenant or DEFAULT_TENANT
        if owner != DEFAULT_TENANT:  # in-house code may name any object
            self.uploads.check(owner, request)
        job_id = uuid.uuid4().hex
        units = job_units(request, published_max_side(self.redis))
        admit(self.redis, owner, job_id, units, Tenants(self.redis).limits(owner))
        JobRecord(self.redis, job_id).create(request, owner, held=True)
        hold(self.redis, owner, request.priority, job_id)
        try:
            self.pump()
        except Exception as exc:  # the job is accepted and held: a worker's pump sends it
            log.warning("job %s held, not sent yet: %.300s", job_id, exc)
        return JobAccepted(job_id=job_id, outputs=request.output_count)

    def pump(self) -> int:
        """Send held jobs to the workers while the fair queues' windows allow."""
        return pump(self.redis, first_step_sender(self.celery, self.redis), now())

    def status(self, job_id: str, tenant: str | None = None) -> JobStatus:
        """The job's status; NOT_FOUND for a job of another tenant than `tenant`
        (or than the client's key's), checked before the record is parsed."""
        if not valid_job_id(job_id):
            raise BackdropError(ErrorCode.NOT_FOUND, f"no job {job_id[:200]!r}")
        owner = tenant or self.tenant
        record = JobRecord(self.redis, job_id)
        if owner is not None and record.field("tenant") != owner:
            raise BackdropError(ErrorCode.NOT_FOUND, f"no job {job_id[:200]!r}")
        try:
            status = record.status()
        except KeyError:
            raise BackdropError(ErrorCode.NOT_FOUND, f"no job {job_id[:200]!r}") from None
        except CorruptRecord as exc:
            return corrupt_status(job_id, exc)
        expiry = timedelta(seconds=self.config.url_expiry_seconds)
        for style in status.styles:
            if style.result_key:
                style.result_url = self._presign(style.result_key, expiry)
            if style.preview_key:
                style.preview_url = self._presign(style.preview_key, expiry)
            if style.latest_key:
                style.latest_url = self._presign(style.latest_key, expiry)
        return status

    def wait(
        self,
        job_id: str,
        timeout: float = 600.0,
        on_status: Callable[[JobStatus], None] | None = None,
        max_interval: float = 2.0,
    ) -> JobStatus:
        """Poll with backoff (0.1 s doubling to max_interval) until the job is final."""
        deadline, delay = time.monotonic() + timeout, min(0.1, max_interval)
        while True:
            status = self.status(job_id)
            if on_status:
                on_status(status)
            if status.done:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s: {status.state}")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, max_interval)

    def cancel(self, job_id: str, tenant: str | None = None) -> JobStatus:
        """End the job as CANCELLED (through the record's one end-of-job
        function); queued steps are revoked by the ids the record names, for
        every generation the sweep created, and a running optimization stops
        at its next progress check."""
        self.status(job_id, tenant)  # NOT_FOUND for another tenant's job
        record = JobRecord(self.redis, job_id)
        if not record.request_cancel():
            raise BackdropError(ErrorCode.NOT_FOUND, f"no job {job_id!r}")
        error = JobError(code=ErrorCode.CANCELLED, message="cancelled by request")
        record.finish(JobState.CANCELLED, error, open_outputs=JobState.CANCELLED)
        self.celery.control.revoke(record.all_task_ids())
        return self.status(job_id, tenant)

    def style_url(self, name: str) -> str:
        """A presigned address of a catalog painting (its thumbnail for a picker)."""
        expiry = timedelta(seconds=self.config.url_expiry_seconds)
        return self.signer.presigned_get_object(
            bucket_name=self.config.styles_bucket, object_name=f"catalog/{name}", expires=expiry
        )

    def download(self, key: str) -> bytes:
        try:
            response = self.s3.get_object(bucket_name=self.config.results_bucket, object_name=key)
        except S3Error as exc:
            raise BackdropError(
                ErrorCode.INPUT_NOT_FOUND, f"no result {key!r}: {exc.code}"
            ) from None
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _presign(self, key: str, expiry: timedelta) -> str:
        return self.signer.presigned_get_object(
            bucket_name=self.config.results_bucket, object_name=key, expires=expiry
        )

    def _put(self, bucket: str, key: str, data: bytes) -> None:
        with storage_call("store an upload"):
            self.s3.put_object(
                bucket_name=bucket, object_name=key, data=io.BytesIO(data), length=len(data)
            )


def first_step_sender(celery: Celery, redis: Redis) -> Send:
    """What the pump calls: a job's first task, on its priority's queue, under
    the id its record names (so a cancel can revoke it)."""

    def send(job_id: str, priority: Priority) -> None:
        task_id = JobRecord(redis, job_id).segment_task_id()
        celery.send_task(TASK_SEGMENT, args=[job_id], queue=PRIORITY_QUEUES[priority],
                         task_id=task_id)  # fmt: skip

    return send
