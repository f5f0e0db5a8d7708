"""Where Backdrop's Redis and object store are: one model, read by the workers'
Settings, the gateway's settings and the producer's ClientConfig alike (the
same BACKDROP_REDIS__* and BACKDROP_STORAGE__* variables everywhere)."""

from pydantic import BaseModel, Field, SecretStr
from redis.exceptions import ConnectionError, OutOfMemoryError, ReadOnlyError, TimeoutError

# Redis cannot take a write now, and may later: down, slow, at its maxmemory
# (noeviction refuses writes), or a replica after a failover. Not a bug of ours.
REDIS_UNAVAILABLE = (ConnectionError, TimeoutError, OutOfMemoryError, ReadOnlyError)


class RedisConnection(BaseModel):
    # Broker, result backend and job records; tests use their own db number.
    url: str = "redis://127.0.0.1:6379/0"


class StorageConnection(BaseModel):
    endpoint: str = "127.0.0.1:9000"
    # No usable defaults: set BACKDROP_STORAGE__ACCESS_KEY / __SECRET_KEY.
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    secure: bool = False
    region: str = "us-east-1"
    # Host:port that browsers reach; presigned URLs are signed for it.
    public_endpoint: str | None = None
    input_bucket: str = "backdrop-inputs"
    styles_bucket: str = "backdrop-styles"
    results_bucket: str = "backdrop-results"
    url_expiry_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    # How long a tenant may use what it uploaded; the input bucket keeps an
    # upload one day more (its lifecycle rule), for jobs started near the end.
    upload_ttl_days: int = Field(7, ge=1, le=365)

    def credentials(self) -> tuple[SecretStr, SecretStr]:
        """The keys; ValueError (a configuration error) when they are not set."""
        if self.access_key is None or self.secret_key is None:
            raise ValueError("set BACKDROP_STORAGE__ACCESS_KEY and __SECRET_KEY")
        return self.access_key, self.secret_key


def secret_text(secret: SecretStr | None) -> str:
    """A secret setting's value, '' when it is not set."""
    return "" if secret is None else secret.get_secret_value()
