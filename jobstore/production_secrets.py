"""What production refuses of the service's credentials: the workers' and the
gateway's settings both ask (the gateway faces the internet and holds the
same Redis and object store keys).

A value from the repository's own examples (README, .env.example, the
Kubernetes overlay's *.env.example, the base's placeholders) is as public as
MinIO's default: an operator who copies an example file and skips its edit
gets a cluster that refuses to start, not one open to anyone who read them.
tests/deploy/test_k8s.py and tests/worker/test_settings.py hold it to them.
"""

from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

from jobstore.connection import RedisConnection, StorageConnection, secret_text

PLACEHOLDERS = frozenset({
    "", "minioadmin", "minio", "changeme", "password", "secret",
    "backdrop", "backdrop-secret", "backdrop-service",
    "a-long-random-minio-secret-key", "a-long-random-redis-password",
    "whsec_a-long-random-webhook-secret",
})  # fmt: skip
MIN_PASSWORD = 12  # MinIO's secret key and Redis's password


def redis_password(url: str) -> str:
    """The password a Redis URL authenticates with ('' for none): its
    userinfo, or a unix socket's `password` query."""
    parts = urlsplit(url)
    return unquote(parts.password or "") or parse_qs(parts.query).get("password", [""])[0]


def refuse_weak_credentials(redis: RedisConnection, storage: StorageConnection) -> None:
    """ValueError naming what is missing, a placeholder or too short."""
    password = redis_password(redis.url)
    if password in PLACEHOLDERS or len(password) < MIN_PASSWORD:
        raise ValueError(
            "production needs an authenticated Redis URL (redis://:password@host), its "
            f"password {MIN_PASSWORD} characters or more and not an example's"
        )
    # The access key is a name (every presigned URL shows it): only present,
    # and not the secret itself. The secret is what must not be guessed.
    access, secret = secret_text(storage.access_key), secret_text(storage.secret_key)
    if not access or secret in PLACEHOLDERS or secret == access:
        raise ValueError("production needs real MinIO keys, not missing, default or example ones")
    if len(secret) < MIN_PASSWORD:
        raise ValueError(
            f"production needs a MinIO secret key of {MIN_PASSWORD} characters or more"
        )


def refuse_weak_webhook_secret(secret: SecretStr | None) -> None:
    value = secret_text(secret)
    if len(value) < 16 or value in PLACEHOLDERS:
        raise ValueError("production needs a webhook secret of 16 characters or more, "
                         "not an example's")  # fmt: skip
