"""Settings: nested environment variables, and production refusing development credentials."""

import pytest
from pydantic import ValidationError

from worker.runtime.settings import Settings


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKDROP_INTAKE__MAX_SIDE", "384")
    monkeypatch.setenv("BACKDROP_STYLE__ITERATIONS", "77")
    monkeypatch.setenv("BACKDROP_QUEUE__MAX_STYLES", "4")
    settings = Settings()
    assert settings.intake.max_side == 384
    assert settings.style.iterations == 77
    assert settings.queue.max_styles == 4


GOOD_REDIS = "redis://:a-real-redis-password@redis:6379/0"


@pytest.mark.parametrize(
    ("redis_url", "access", "secret"),
    [
        (GOOD_REDIS, "minioadmin", "minioadmin"),
        (GOOD_REDIS, None, None),
        ("redis://redis:6379/0", "real-user", "real-secret-key"),
        # what a copied example or a slip gives: still no password
        ("redis://:@redis:6379/0", "real-user", "real-secret-key"),
        ("redis://user@redis:6379/0", "real-user", "real-secret-key"),
        ("redis://:short@redis:6379/0", "real-user", "real-secret-key"),
        ("redis://:a-long-random-redis-password@redis:6379/0", "real-user", "real-secret-key"),
        (GOOD_REDIS, "backdrop-worker", "a-long-random-minio-secret-key"),
        (GOOD_REDIS, "same-as-the-secret", "same-as-the-secret"),
        ("redis://:%61%62%63@redis:6379/0", "real-user", "real-secret-key"),  # abc, encoded
        (GOOD_REDIS, "backdrop", "backdrop-secret"),  # the README's laptop keys
        (GOOD_REDIS, "real-user", "short"),
    ],
)
def test_production_refuses_default_keys_and_open_redis(redis_url, access, secret) -> None:
    with pytest.raises(ValidationError):
        Settings(
            environment="production",
            redis={"url": redis_url},
            storage={"access_key": access, "secret_key": secret},
            webhooks={"secret": "a-long-random-webhook-secret"},
        )


@pytest.mark.parametrize("webhook_secret", [None, "short", "whsec_a-long-random-webhook-secret"])
def test_production_needs_a_real_webhook_secret(webhook_secret) -> None:
    good = {"environment": "production", "redis": {"url": GOOD_REDIS},
            "storage": {"access_key": "real-user", "secret_key": "real-secret-key"}}  # fmt: skip
    Settings(**good, webhooks={"secret": "a-long-random-webhook-secret"})  # the control
    with pytest.raises(ValidationError, match="webhook secret"):
        Settings(**good, webhooks={"secret": webhook_secret})


def test_the_access_key_is_a_name_an_example_may_suggest() -> None:
    """The k8s example's user name with a real secret: the name is public in
    every presigned URL anyway; the secret is what is checked."""
    Settings(environment="production", redis={"url": GOOD_REDIS},
             storage={"access_key": "backdrop-service", "secret_key": "a-real-minio-secret"},
             webhooks={"secret": "a-long-random-webhook-secret-0"})  # fmt: skip


def test_a_unix_socket_url_may_carry_its_password_in_the_query() -> None:
    Settings(environment="production",
             redis={"url": "unix:///run/redis.sock?db=0&password=a-real-redis-password"},
             storage={"access_key": "real-user", "secret_key": "real-secret-key"},
             webhooks={"secret": "a-long-random-webhook-secret-0"})  # fmt: skip


def test_development_allows_minio_defaults() -> None:
    settings = Settings(storage={"access_key": "minioadmin", "secret_key": "minioadmin"})
    assert settings.environment == "development"


def test_results_must_outlive_the_job_records_that_name_them() -> None:
    """A result is kept results_expiry_days; a record naming it lives
    queue.result_expires (7 days). Shorter, a fresh result would vanish
    while its status still points at it."""
    with pytest.raises(ValidationError, match="results_expiry_days"):
        Settings(storage={"results_expiry_days": 8})
    assert Settings(storage={"results_expiry_days": 9}).storage.results_expiry_days == 9
    Settings(storage={"results_expiry_days": 3}, queue={"result_expires": 86400})


def test_time_limits_must_nest_inside_the_visibility_timeout() -> None:
    with pytest.raises(ValidationError):
        Settings(queue={"soft_time_limit": 100, "hard_time_limit": 200, "visibility_timeout": 150})


def test_full_resolution_painting_is_set_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BACKDROP_PAINT_FULL__MAX_SIDE", "1024")
    monkeypatch.setenv("BACKDROP_PAINT_FULL__TILE_PIXELS", str(512 * 512))
    paint = Settings().paint_full
    assert (paint.max_side, paint.tile_pixels) == (1024, 512 * 512)
    monkeypatch.setenv("BACKDROP_PAINT_FULL__TILE_PIXELS", "1024")  # below (4 x overlap)^2
    with pytest.raises(ValidationError, match="tile_pixels"):
        Settings()
