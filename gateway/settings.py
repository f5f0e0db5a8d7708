"""The gateway's settings: the same BACKDROP_* variables as the workers, read by
its own small model (the gateway never imports worker code)."""

from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from api_contracts.client import ClientConfig


class RedisPart(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"


class StoragePart(BaseModel):
    endpoint: str = "127.0.0.1:9000"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    secure: bool = False
    region: str = "us-east-1"
    public_endpoint: str | None = None
    input_bucket: str = "backdrop-inputs"
    styles_bucket: str = "backdrop-styles"
    results_bucket: str = "backdrop-results"
    url_expiry_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)


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

    redis: RedisPart = RedisPart()
    storage: StoragePart = StoragePart()
    gateway: GatewayPart = GatewayPart()

    def client_config(self) -> ClientConfig:
        s = self.storage
        if s.access_key is None or s.secret_key is None:
            raise ValueError("set BACKDROP_STORAGE__ACCESS_KEY and __SECRET_KEY")
        return ClientConfig(
            redis_url=self.redis.url, s3_endpoint=s.endpoint, access_key=s.access_key,
            secret_key=s.secret_key, secure=s.secure, region=s.region,
            public_endpoint=s.public_endpoint, input_bucket=s.input_bucket,
            styles_bucket=s.styles_bucket, results_bucket=s.results_bucket,
            url_expiry_seconds=s.url_expiry_seconds,
        )  # fmt: skip


@lru_cache(maxsize=1)
def get_settings() -> GatewaySettings:
    return GatewaySettings()
