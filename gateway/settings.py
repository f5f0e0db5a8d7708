"""The gateway's settings: the same BACKDROP_* variables as the workers, read by
its own small model (the gateway never imports worker code)."""

from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobstore.connection import RedisConnection, StorageConnection
from jobstore.trusted_client import TrustedClientConfig


class GatewayPart(BaseModel):
    # An upload larger than this is refused with 413 while it streams in.
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1)
    # How often the event stream looks at a job (server-sent events).
    events_poll_seconds: float = Field(0.5, gt=0)
    events_timeout_seconds: float = Field(3600.0, gt=0)


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKDROP_", env_nested_delimiter="__", extra="ignore"
    )

    redis: RedisConnection = RedisConnection()
    storage: StorageConnection = StorageConnection()
    gateway: GatewayPart = GatewayPart()

    def client_config(self) -> TrustedClientConfig:
        return TrustedClientConfig.from_connection(self.redis, self.storage)


@lru_cache(maxsize=1)
def get_settings() -> GatewaySettings:
    return GatewaySettings()
