"""The gateway's settings: the same BACKDROP_* variables as the workers, read by
its own small model (the gateway never imports worker code)."""

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobstore.callback_rules import CallbackRules
from jobstore.connection import RedisConnection, StorageConnection
from jobstore.limits import JobLimits
from jobstore.production_secrets import refuse_weak_credentials
from jobstore.trusted_client import TrustedClientConfig


class GatewayPart(BaseModel):
    # An upload larger than this is refused with 413 while it streams in.
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1)
    # A JSON body (a job request) larger than this is refused with 413.
    max_json_bytes: int = Field(256 * 1024, ge=1024)
    # A body must have arrived this long after it was first read, or the
    # request ends with 408 and its connection is closed (slow senders).
    json_body_seconds: float = Field(10.0, gt=0)
    upload_body_seconds: float = Field(120.0, gt=0)
    # A connection must have sent a request's headers within this (slowloris).
    header_seconds: float = Field(10.0, gt=0)
    # A connection whose client has read none of its answers for this long
    # is closed (pipelined requests never read, a stuck event stream).
    write_stall_seconds: float = Field(30.0, gt=0)
    # Connections at once in one gateway process (each about 30 KiB); one
    # past it is answered 503 SERVICE_BUSY and closed as it opens.
    max_connections: int = Field(2048, ge=1, le=1_000_000)
    # A second listener for the kubelet's liveness probe (0: none). It answers
    # /healthz only, and its connections count apart from max_connections (at
    # most probe_connections): a gateway held at its cap by clients is busy,
    # not dead, and must not be restarted for it (which drops every client).
    probe_port: int = Field(0, ge=0, le=65535)
    probe_connections: int = Field(8, ge=1, le=1024)
    # How often the event stream looks at a job (server-sent events), and
    # checks that its caller's key still works (a revoke ends the stream).
    events_poll_seconds: float = Field(0.5, gt=0)
    events_auth_seconds: float = Field(5.0, gt=0)
    events_timeout_seconds: float = Field(3600.0, gt=0)
    # Open event streams one tenant may hold on one gateway process; past it
    # 429 (poll the status or give a callback_url). Each stream reads its job
    # every events_poll_seconds: unbounded, one tenant's streams filled a core
    # (about 340 on a 16-output job) and every tenant's requests waited.
    events_per_tenant: int = Field(32, ge=1, le=100_000)
    # ... and all tenants together, 503 past it (many keys' streams filled it
    # as one's did).
    events_total: int = Field(512, ge=1, le=100_000)
    # Uploads one tenant may have the gateway reading at once (each is held
    # whole, up to max_upload_bytes, before it is stored); past it 429.
    uploads_in_flight_per_tenant: int = Field(4, ge=1, le=1000)
    # JSON bodies (job requests) one tenant may have the gateway reading at
    # once; past it 429. Each is held whole, up to max_json_bytes.
    json_bodies_per_tenant: int = Field(16, ge=1, le=100_000)
    # Request bodies one gateway process holds at once, all tenants together
    # (each counted at its declared length, or its limit without one); past
    # it 503 before a byte is read. Bounds the memory of many keys' stalled bodies.
    body_bytes_in_flight: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    # /metrics answers only `Authorization: Bearer <token>` when this is set
    # (404 otherwise): where the API's port is published whole, as in
    # docker-compose. Kubernetes' Ingress publishes / and /v1 only.
    metrics_token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_upload_fits(self) -> "GatewayPart":
        if self.body_bytes_in_flight < self.max_upload_bytes:
            raise ValueError("body_bytes_in_flight must hold one upload (max_upload_bytes)")
        return self


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKDROP_", env_nested_delimiter="__", extra="ignore"
    )

    redis: RedisConnection = RedisConnection()
    storage: StorageConnection = StorageConnection()
    gateway: GatewayPart = GatewayPart()
    # The workers' limits on a job (BACKDROP_QUEUE__MAX_STYLES, ...): the
    # gateway refuses what they would fail.
    queue: JobLimits = JobLimits()
    # The workers' rules for a callback's address (BACKDROP_WEBHOOKS__ALLOW_PORTS, ...).
    webhooks: CallbackRules = CallbackRules()
    # production serves no /docs or /redoc (they load scripts from a CDN), and
    # refuses at submit a callback_url the workers would not call.
    environment: Literal["development", "production"] = "development"

    @model_validator(mode="after")
    def _production_credentials(self) -> "GatewaySettings":
        if self.environment == "production":  # as the workers' settings refuse them
            refuse_weak_credentials(self.redis, self.storage)
        return self

    def client_config(self) -> TrustedClientConfig:
        return TrustedClientConfig.from_connection(
            self.redis, self.storage, limits=self.queue, callbacks=self.webhooks,
            production=self.environment == "production",
        )  # fmt: skip


@lru_cache(maxsize=1)
def get_settings() -> GatewaySettings:
    return GatewaySettings()
