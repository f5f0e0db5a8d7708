"""Webhook deliveries as records in Redis: the body frozen when the event
happened, the job, tenant, address and attempt count, and when each is due.

A delivery is claimed by moving its due time past a lease: a worker that dies
mid-attempt leaves it to be claimed again when the lease runs out (at least
once). Due times are kept per tenant, so a tenant with a long backlog of
failing deliveries cannot hide another tenant's due ones.
"""

from dataclasses import dataclass
from typing import Any

from redis import Redis

from jobstore.redis_keys import WEBHOOK_PREFIX, WEBHOOKS_DUE_PREFIX, WEBHOOKS_TENANTS

# Kept past the last retry (about 3 h with the defaults), then dropped.
RECORD_TTL_SECONDS = 2 * 24 * 3600

# KEYS: delivery hash, tenant's due set, tenants set. ARGV: event id, tenant,
# due time, TTL, then field/value pairs. Made once: a re-read event changes nothing.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# KEYS: tenant's due set. ARGV: event id, now, lease end. 1 when claimed here.
_CLAIM = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# KEYS: tenant's due set, tenants set. ARGV: event id, tenant.
_DONE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
"""


@dataclass(frozen=True)
class Delivery:
    event_id: str
    job_id: str
    tenant: str
    url: str
    body: bytes  # sent byte for byte on every attempt
    attempt: int  # attempts made so far


def create(redis: Redis, event_id: str, job_id: str, tenant: str, url: str, body: bytes,
           due: float) -> bool:  # fmt: skip
    """Store a delivery, due at `due`; False when the event already has one."""
    fields: list[Any] = ["job", job_id, "tenant", tenant, "url", url, "body", body, "attempt", 0]
    keys = [WEBHOOK_PREFIX + event_id, WEBHOOKS_DUE_PREFIX + tenant, WEBHOOKS_TENANTS]
    args = [event_id, tenant, due, RECORD_TTL_SECONDS, *fields]
    return bool(redis.eval(_CREATE, 3, *keys, *args))


def load(redis: Redis, event_id: str) -> Delivery | None:
    raw: Any = redis.hgetall(WEBHOOK_PREFIX + event_id)
    if not raw or b"body" not in raw:
        return None
    text = {k.decode(): v.decode(errors="replace") for k, v in raw.items() if k != b"body"}
    return Delivery(event_id, text["job"], text["tenant"], text["url"], raw[b"body"],
                    int(text.get("attempt", "0")))  # fmt: skip


def due_by_tenant(redis: Redis, now: float, per_tenant: int) -> dict[str, list[str]]:
    """Each tenant's deliveries due by `now`, up to `per_tenant` each."""
    tenants = sorted(t.decode() for t in redis.smembers(WEBHOOKS_TENANTS))  # type: ignore[union-attr]
    pipe = redis.pipeline(transaction=False)
    for tenant in tenants:
        pipe.zrangebyscore(WEBHOOKS_DUE_PREFIX + tenant, "-inf", now, start=0, num=per_tenant)
    due = zip(tenants, pipe.execute(), strict=True)
    return {tenant: [e.decode() for e in ids] for tenant, ids in due if ids}


def claim(redis: Redis, tenant: str, event_id: str, now: float, lease: float) -> bool:
    """Take a due delivery until `now + lease`; False when another took it."""
    return bool(redis.eval(_CLAIM, 1, WEBHOOKS_DUE_PREFIX + tenant, event_id, now, now + lease))


def retry_at(redis: Redis, delivery: Delivery, due: float) -> None:
    """One more attempt made; the next is due at `due`."""
    redis.hset(WEBHOOK_PREFIX + delivery.event_id, "attempt", delivery.attempt + 1)
    redis.zadd(WEBHOOKS_DUE_PREFIX + delivery.tenant, {delivery.event_id: due})


def settle(redis: Redis, event_id: str, tenant: str) -> None:
    """No more attempts (delivered, refused, failed, or its record is gone)."""
    keys = [WEBHOOKS_DUE_PREFIX + tenant, WEBHOOKS_TENANTS]
    redis.eval(_DONE, 2, *keys, event_id, tenant)
