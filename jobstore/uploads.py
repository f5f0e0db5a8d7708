"""Which tenant may use which upload.

Objects stay content-addressed underneath (the same bytes are stored once,
whoever sent them), but a tenant names only what it uploaded itself: another
tenant's photo is "not found", word for word like one that never existed, so
nobody can use another's upload or learn that its key exists. (A tenant that
holds the same bytes itself can tell from a job's reuse counters and speed
that someone processed them: the pictures are shared by content; README.) A claim lasts as long
as the upload is kept (the input bucket's lifecycle rule expires the object a
day after the last claim could), and each tenant uploads only so many an hour.
"""

import time

from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import JobRequest
from jobstore.redis_keys import UPLOAD_OWNER_PREFIX, UPLOAD_RATE_PREFIX

HOUR = 3600
MB = 1024 * 1024


def request_uploads(request: JobRequest) -> list[str]:
    """Every uploaded object a request names (catalog paintings are shared)."""
    refs = [*request.styles, *([request.subject_style] if request.subject_style else [])]
    return [request.photo_key, *(r.key for r in refs if r.key)]


def _rate_key(tenant: str, hour: int) -> str:
    return f"{UPLOAD_RATE_PREFIX}{tenant}:{hour}"


def _bytes_key(tenant: str, hour: int) -> str:
    return f"{UPLOAD_RATE_PREFIX}{tenant}:{hour}:bytes"


def _hour_full(limit: str, hour: int) -> BackdropError:
    retry = (hour + 1) * HOUR - int(time.time()) + 1
    return BackdropError(ErrorCode.QUOTA_EXCEEDED, f"{limit} an hour; try again in {retry} s",
                         retry_after=retry)  # fmt: skip


class Uploads:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    def take_slot(self, tenant: str, per_hour: int) -> None:
        """Count one upload in the tenant's current hour; QUOTA_EXCEEDED (with
        the seconds to the next hour) past `per_hour` (0: no limit). Checked
        before the body is stored, so a refused upload costs no storage."""
        if per_hour > 0:
            hour = int(time.time()) // HOUR
            self._take(_rate_key(tenant, hour), 1, per_hour, f"{per_hour} uploads", hour)

    def take_bytes(self, tenant: str, size: int, mb_per_hour: int) -> None:
        """Count `size` bytes in the tenant's current hour; QUOTA_EXCEEDED past
        `mb_per_hour` megabytes (0: no limit)."""
        if mb_per_hour > 0:
            hour = int(time.time()) // HOUR
            what = f"{mb_per_hour} MB of uploads"
            self._take(_bytes_key(tenant, hour), size, mb_per_hour * MB, what, hour)

    def _take(self, key: str, amount: int, limit: int, what: str, hour: int) -> None:
        """Add `amount` to the hour's counter `key`; past `limit` take it back
        and refuse: the refused upload is not stored, so it is not counted."""
        with self.redis.pipeline() as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, HOUR + 60)
            used = int(pipe.execute()[0])
        if used > limit:
            self.redis.decrby(key, amount)
            raise _hour_full(what, hour)

    def give_back(self, tenant: str, size: int, mb_per_hour: int, per_hour: int) -> None:
        """Uncount an upload that was not stored: its bytes (where limited)
        and its slot (where per_hour is given and limited)."""
        hour = int(time.time()) // HOUR
        with self.redis.pipeline() as pipe:
            if mb_per_hour > 0:
                pipe.decrby(_bytes_key(tenant, hour), size)
            if per_hour > 0:
                pipe.decr(_rate_key(tenant, hour))
            pipe.execute()

    def check_room(self, tenant: str, per_hour: int, mb_per_hour: int, declared: int = 0) -> None:
        """QUOTA_EXCEEDED when the tenant's hour is already full (its count, or
        its bytes with the `declared` body's), taking nothing: asked before an
        upload's body is read, so a tenant past its quota cannot make the
        gateway read body after body."""
        hour = int(time.time()) // HOUR
        if per_hour > 0 and int(self.redis.get(_rate_key(tenant, hour)) or 0) >= per_hour:
            raise _hour_full(f"{per_hour} uploads", hour)
        used = int(self.redis.get(_bytes_key(tenant, hour)) or 0)
        if mb_per_hour > 0 and used + max(declared, 1) > mb_per_hour * MB:
            raise _hour_full(f"{mb_per_hour} MB of uploads", hour)

    def claim(self, tenant: str, key: str) -> None:
        """The tenant may use `key` from now until the upload expires (an
        upload of the same bytes again renews it)."""
        self.redis.set(self._owner(tenant, key), "1", ex=self.ttl_seconds)

    def check(self, tenant: str, request: JobRequest) -> None:
        """INPUT_NOT_FOUND for any upload the request names that this tenant did
        not make (or whose time ran out), before anything is queued."""
        for key in request_uploads(request):
            if not self.redis.exists(self._owner(tenant, key)):
                raise BackdropError(ErrorCode.INPUT_NOT_FOUND, f"no upload {key[:200]!r}")

    @staticmethod
    def _owner(tenant: str, key: str) -> str:
        return f"{UPLOAD_OWNER_PREFIX}{tenant}:{key}"
