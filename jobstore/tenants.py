"""Tenants: who a job belongs to, their API keys and their limits.

A tenant is a hash `backdrop:tenant:<name>`; its API key is kept only as a
sha256 (`backdrop:apikey:<sha256>` names the tenant), so a copy of Redis does
not hand out working keys. The keys are 256 random bits, so a plain hash is
enough (no salt or slow hash is needed against guessing). The webhook secret
is stored as is: Backdrop must sign with it. Both are shown once, at `add`.
"""

import hashlib
import math
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.names import DEFAULT_TENANT
from jobstore.connection import secret_text
from jobstore.redis_keys import APIKEY_PREFIX, TENANT_PREFIX, TENANTS_SET
from jobstore.redis_text import text

KEY_PREFIX = "bdk_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")


DEFAULT_UPLOADS_PER_HOUR = 600  # also for tenants stored before the limit existed
# Megabytes a tenant uploads in an hour (also for tenants stored before it
# existed): the count alone let 600 uploads of 25 MB of noise an hour, 15 GB,
# fill the object store every tenant shares (uploads are kept 8 days).
DEFAULT_UPLOAD_MB_PER_HOUR = 1024


class Limits(BaseModel):
    # 0: no limit.
    max_open_jobs: int = Field(0, ge=0)
    outputs_per_minute: int = Field(0, ge=0)
    # Uploads (photos and paintings) a tenant makes in an hour.
    uploads_per_hour: int = Field(DEFAULT_UPLOADS_PER_HOUR, ge=0)
    upload_mb_per_hour: int = Field(DEFAULT_UPLOAD_MB_PER_HOUR, ge=0)


MAX_GRACE_SECONDS = 7 * 24 * 3600  # a rotation's old secret signs at most a week


class Tenant(BaseModel):
    name: str
    created: str = ""
    limits: Limits = Limits()
    revoked: bool = False
    key_hint: str = ""  # the key's first characters, to tell keys apart in a list
    webhook_secret: SecretStr | None = None
    # The secret before the last rotation, still signing until this time;
    # previous_shared: it was the service's (a tenant from before per-tenant
    # secrets), which only the workers hold.
    previous_webhook_secret: SecretStr | None = None
    previous_shared: bool = False
    previous_until: float = 0.0

    def signing_secrets(self, now: float, shared: str) -> list[str]:
        """What a delivery is signed with now: the secret, and the previous
        one within its grace (each gives a v1); `shared`, the service's
        secret, for a tenant from before per-tenant secrets."""
        if self.webhook_secret is None:
            return [shared]
        keys = [self.webhook_secret.get_secret_value()]
        if now < self.previous_until:
            old = shared if self.previous_shared else secret_text(self.previous_webhook_secret)
            keys += [old] if old else []
        return keys


class Issued(BaseModel):
    """What `add` returns: the only time the key and the secret are seen."""

    tenant: Tenant
    api_key: SecretStr
    webhook_secret: SecretStr


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class Tenants:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def add(self, name: str, limits: Limits) -> Issued:
        if not _NAME.fullmatch(name):
            raise BackdropError(ErrorCode.INVALID_REQUEST, "a tenant name is [a-z0-9_-], 1-63")
        if name == DEFAULT_TENANT:  # keyless in-house code's jobs: a key for it would read them
            raise BackdropError(
                ErrorCode.INVALID_REQUEST, f"{name!r} is reserved for jobs submitted without a key"
            )
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        secret = "whsec_" + secrets.token_urlsafe(32)
        fields: Any = {"name": name, "created": datetime.now(UTC).isoformat(), "revoked": "0",
                       "key_sha256": key_digest(api_key), "key_hint": api_key[:8],
                       "webhook_secret": secret, **limits.model_dump()}  # fmt: skip
        if not self.redis.hsetnx(TENANT_PREFIX + name, "name", name):
            raise BackdropError(ErrorCode.CONFLICT, f"tenant {name!r} exists")
        self.redis.hset(TENANT_PREFIX + name, mapping=fields)
        self.redis.set(APIKEY_PREFIX + key_digest(api_key), name)
        self.redis.sadd(TENANTS_SET, name)
        return Issued(tenant=self._read(name), api_key=SecretStr(api_key),
                      webhook_secret=SecretStr(secret))  # fmt: skip

    def new_key(self, name: str, reinstate: bool = False) -> SecretStr:
        """A new API key for a tenant (the old one stops working at once); the
        tenant's limits, secret and jobs stay, and a revoked tenant stays
        revoked unless `reinstate`."""
        if self.get(name) is None:
            raise BackdropError(ErrorCode.NOT_FOUND, f"no tenant {name!r}")
        old = self.redis.hget(TENANT_PREFIX + name, "key_sha256")
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        self.redis.set(APIKEY_PREFIX + key_digest(api_key), name)
        fields: Any = {"key_sha256": key_digest(api_key), "key_hint": api_key[:8]}
        if reinstate:
            fields["revoked"] = "0"
        self.redis.hset(TENANT_PREFIX + name, mapping=fields)
        if old:
            self.redis.delete(APIKEY_PREFIX + text(old))
        return SecretStr(api_key)

    def new_webhook_secret(self, name: str, grace_seconds: float) -> SecretStr:
        """A new webhook secret for a tenant (one from before per-tenant
        secrets gets its own, leaving the service's shared one); for
        `grace_seconds` deliveries are signed with the old one too, while
        the receiver is switched over."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:  # nan and inf fail too
            raise BackdropError(ErrorCode.INVALID_REQUEST,
                                "the grace is 0 to 168 hours (0 after a leak)")  # fmt: skip
        tenant = self.get(name)
        if tenant is None:
            raise BackdropError(ErrorCode.NOT_FOUND, f"no tenant {name!r}")
        secret = "whsec_" + secrets.token_urlsafe(32)
        legacy = tenant.webhook_secret is None  # it signed with the service's secret
        fields: Any = {"webhook_secret": secret, "previous_until": time.time() + grace_seconds,
                       "previous_webhook_secret": secret_text(tenant.webhook_secret),
                       "previous_shared": "1" if legacy else "0"}  # fmt: skip
        self.redis.hset(TENANT_PREFIX + name, mapping=fields)
        return SecretStr(secret)

    def list(self) -> list[Tenant]:
        names = sorted(text(n) for n in self.redis.smembers(TENANTS_SET))
        return [t for t in (self.get(n) for n in names) if t is not None]

    def revoke(self, name: str) -> Tenant:
        """The key stops working (403 from then on); the tenant's jobs go on."""
        if self.get(name) is None:
            raise BackdropError(ErrorCode.NOT_FOUND, f"no tenant {name!r}")
        self.redis.hset(TENANT_PREFIX + name, "revoked", "1")
        return self._read(name)

    def get(self, name: str) -> Tenant | None:
        raw = {text(k): text(v) for k, v in self.redis.hgetall(TENANT_PREFIX + name).items()}
        if "created" not in raw:
            return None
        return Tenant(
            name=name, created=raw["created"], revoked=raw.get("revoked") == "1",
            key_hint=raw.get("key_hint", ""), webhook_secret=raw.get("webhook_secret") or None,
            previous_webhook_secret=raw.get("previous_webhook_secret") or None,
            previous_shared=raw.get("previous_shared") == "1",
            previous_until=_finite(raw.get("previous_until")),
            limits=Limits(max_open_jobs=int(raw.get("max_open_jobs") or 0),
                          outputs_per_minute=int(raw.get("outputs_per_minute") or 0),
                          uploads_per_hour=int(raw.get("uploads_per_hour",
                                                       DEFAULT_UPLOADS_PER_HOUR)),
                          upload_mb_per_hour=int(raw.get("upload_mb_per_hour",
                                                         DEFAULT_UPLOAD_MB_PER_HOUR))),
        )  # fmt: skip

    def authenticate(self, api_key: str | None) -> Tenant:
        """The key's tenant; UNAUTHORIZED (401) or FORBIDDEN (403, revoked)."""
        if not api_key:
            raise BackdropError(ErrorCode.UNAUTHORIZED, "an API key is needed: Bearer <key>")
        name = self.redis.get(APIKEY_PREFIX + key_digest(api_key))
        tenant = None if name is None else self.get(text(name))
        if tenant is None:
            raise BackdropError(ErrorCode.UNAUTHORIZED, "this API key is not known")
        if tenant.revoked:
            raise BackdropError(ErrorCode.FORBIDDEN, f"tenant {tenant.name!r}: key revoked")
        return tenant

    def limits(self, name: str) -> Limits:
        """A tenant's limits; none for the default tenant unless an operator added it."""
        tenant = self.get(name)
        return tenant.limits if tenant else Limits()

    def _read(self, name: str) -> Tenant:
        tenant = self.get(name)
        assert tenant is not None
        return tenant


def _finite(raw: str | None) -> float:
    """A stored time; 0 for anything that is not a finite number."""
    try:
        value = float(raw or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0
