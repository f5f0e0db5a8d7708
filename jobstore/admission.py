"""Admission: a tenant's limits at submit, and fair queues to the workers.

Quotas. `admit` checks and takes, in one Lua step, a slot among the tenant's
open jobs (`<tenant>:open`, a set released when the job ends) and its outputs
of the last minute (`<tenant>:outputs`, a sliding window), each output counted
by its cost (jobstore.job_cost: 1 at the defaults). Past either limit
the job is refused with QUOTA_EXCEEDED and a retry_after, and nothing is
queued.

Fair queues. A job is not sent to Celery at submit: it is held in its
tenant's list for its priority (`fair:<priority>:pending:<tenant>`), and a
ring of the tenants with held jobs is served in turn. `pump` moves jobs from
the ring to the Celery queue while fewer than the window's jobs of that
priority are in flight (sent, and not past its GPU steps: `leave_window`).
So one tenant's 500 queued jobs
are at most a window's worth in Celery's queue, and another tenant's next job
goes after at most one of theirs. The workers publish the windows in the
service hash; the pump runs at submit, and in each worker parent whenever a
job ends (and every second, so a lost trigger costs at most that).
"""

import math
import time
from collections.abc import Callable
from typing import Any

from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import Priority
from api_contracts.names import DEFAULT_TENANT
from jobstore.redis_keys import FAIR_PREFIX, JOB_KEY_PREFIX, SERVICE_KEY, TENANT_PREFIX
from jobstore.redis_text import text
from jobstore.tenants import Limits

PRIORITIES: tuple[Priority, ...] = ("interactive", "batch")
# Jobs of a priority in flight at once, until a worker publishes its own
# (queue.interactive_window / queue.batch_window).
DEFAULT_WINDOWS = {"interactive": 8, "batch": 4}
OPEN_RETRY_SECONDS = 5  # a slot among open jobs frees when some job ends: soon, unknown

# KEYS: open set, outputs window. ARGV: job id, units, now (s), max open,
# outputs per minute (0: no limit). Returns {1} or {0, reason, retry after}.
# A job that counts more than a minute allows is taken only into an empty
# window, its units spread over the minutes ahead (a minute's worth each, at
# future scores): the tenant's next job waits until they are paid, so the
# rate holds and no request the API accepts is refused for good. If the job
# fails or is cancelled before its outputs reach the GPUs, its units in the
# minutes ahead are given back (record_scripts.FINISH).
_ADMIT = """
local now, n = tonumber(ARGV[3]), tonumber(ARGV[2])
local max_open, per_minute = tonumber(ARGV[4]), tonumber(ARGV[5])
if max_open > 0 and redis.call('SCARD', KEYS[1]) >= max_open then
  return {0, 'open', 0}
end
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
  local used = redis.call('ZCARD', KEYS[2])
  if n > per_minute and used > 0 then
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    return {0, 'rate', tostring(tonumber(last[2]) + 60 - now)}
  end
  if n <= per_minute and used + n > per_minute then
    local k = used + n - per_minute - 1
    local oldest = redis.call('ZRANGE', KEYS[2], k, k, 'WITHSCORES')
    return {0, 'rate', tostring(tonumber(oldest[2]) + 60 - now)}
  end
  for i = 0, n - 1 do
    redis.call('ZADD', KEYS[2], now + 60 * math.floor(i / per_minute), ARGV[1] .. ':' .. i)
  end
  redis.call('EXPIRE', KEYS[2], 120 + 60 * math.floor((n - 1) / per_minute))
end
redis.call('SADD', KEYS[1], ARGV[1])
return {1}
"""

# KEYS: pending list, ring. ARGV: job id, tenant. A tenant is in the ring
# exactly while its pending list is not empty.
_HOLD = """
if redis.call('RPUSH', KEYS[1], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: ring, in-flight set, service hash. ARGV: pending prefix, window field,
# default window, job key prefix, now (ISO), most jobs to take. Jobs that ended
# while held (a cancel) are dropped; a taken job's record loses `held` and is
# touched, so from then on the sweep looks after it like any sent job.
_TAKE = """
local window = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '') or tonumber(ARGV[3])
local taken, budget = {}, 1000
while #taken < tonumber(ARGV[6]) and budget > 0 and redis.call('SCARD', KEYS[2]) < window do
  budget = budget - 1
  local tenant = redis.call('LPOP', KEYS[1])
  if not tenant then break end
  local pending = ARGV[1] .. tenant
  local job = redis.call('LPOP', pending)
  if redis.call('LLEN', pending) > 0 then redis.call('RPUSH', KEYS[1], tenant) end
  if job then
    local key = ARGV[4] .. job
    if redis.call('HGET', key, 'state') == 'QUEUED' then
      redis.call('SADD', KEYS[2], job)
      redis.call('HSET', key, 'held', '0', 'updated', ARGV[5])
      taken[#taken + 1] = job
    end
  end
end
return taken
"""

# KEYS: pending list, ring, in-flight set, record. ARGV: job id, tenant. A job
# whose send failed goes back to the front of its tenant's turn, held again.
_UNTAKE = """
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('HSET', KEYS[4], 'held', '1') end
if redis.call('LPUSH', KEYS[1], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: pending list, ring. ARGV: job id, tenant. Holds a job again if it is not
# in its list (its submit died between recording it and holding it).
_REHOLD = """
if redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
if redis.call('RPUSH', KEYS[1], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: record, in-flight set. ARGV: job id, the task's generation, output
# count, then the outputs whose GPU step (stylize) just ended. A job leaves
# the window once every output is past its GPU step (marked in this
# generation) or ended: its composites run on the CPU pool, and holding the
# GPUs' window through them let one tenant's slow full-size composites idle
# every GPU. The marks are per generation, and a task of an earlier one (the
# sweep restarted the job since) marks nothing: the restart came back into the
# window and its own tasks take it out. A record that is gone is not written.
_LEAVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local gen, n = ARGV[2], tonumber(ARGV[3])
if tostring(tonumber(redis.call('HGET', KEYS[1], 'c.requeued') or '0') or 0) ~= gen then
  return 0
end
for k = 4, #ARGV do redis.call('HSET', KEYS[1], 'gpu.' .. gen .. '.' .. ARGV[k], '1') end
for i = 0, n - 1 do
  if redis.call('HGET', KEYS[1], 'gpu.' .. gen .. '.' .. i) ~= '1' then
    local s = redis.call('HGET', KEYS[1], 's' .. i .. '.state')
    if not s or s == 'QUEUED' or s == 'RUNNING' then return 0 end
  end
end
return redis.call('SREM', KEYS[2], ARGV[1])
"""

# KEYS: record, in-flight set. ARGV: job id. A job the sweep restarts runs its
# GPU steps again: back into the window, unless it ended meanwhile.
_REENTER = """
local s = redis.call('HGET', KEYS[1], 'state')
if s ~= 'QUEUED' and s ~= 'RUNNING' then return 0 end
return redis.call('SADD', KEYS[2], ARGV[1])
"""

Send = Callable[[str, Priority], None]  # (job id, priority): send its first task


def open_key(tenant: str) -> str:
    return f"{TENANT_PREFIX}{tenant}:open"


def outputs_key(tenant: str) -> str:
    """The tenant's sliding window of output units (members `<job>:<i>`)."""
    return f"{TENANT_PREFIX}{tenant}:outputs"


def inflight_key(priority: str) -> str:
    return f"{FAIR_PREFIX}{priority}:inflight"


def admit(redis: Redis, tenant: str, job_id: str, units: int, limits: Limits) -> None:
    """Take the job's slot and its `units` (jobstore.job_cost) of the tenant's
    minute, or raise QUOTA_EXCEEDED (with retry_after)."""
    keys = [open_key(tenant), outputs_key(tenant)]
    args: list[str | int | float] = [job_id, units, time.time(), limits.max_open_jobs,
                                     limits.outputs_per_minute]  # fmt: skip
    answer: Any = redis.eval(_ADMIT, 2, *keys, *args)
    if int(answer[0]) == 1:
        return
    reason = text(answer[1])
    per_minute = (f"{limits.outputs_per_minute} outputs a minute"
                  " (at the default size and iterations)")  # fmt: skip
    if reason == "open":
        raise BackdropError(ErrorCode.QUOTA_EXCEEDED,
                            f"{limits.max_open_jobs} open jobs is the tenant's limit",
                            retry_after=OPEN_RETRY_SECONDS)  # fmt: skip
    wait = max(1, math.ceil(float(text(answer[2]))))
    costly = units > limits.outputs_per_minute  # it waits for the whole minute to be free
    why = "iterations x pixels, paintings"
    cost = f"; this job counts as {units} by its cost ({why})" if costly else ""
    raise BackdropError(ErrorCode.QUOTA_EXCEEDED, f"{per_minute} is the tenant's limit{cost}",
                        retry_after=wait)  # fmt: skip


def hold(redis: Redis, tenant: str, priority: Priority, job_id: str) -> None:
    pending = f"{FAIR_PREFIX}{priority}:pending:{tenant}"
    redis.eval(_HOLD, 2, pending, f"{FAIR_PREFIX}{priority}:ring", job_id, tenant)


def pump(redis: Redis, send: Send, now: str, most: int = 100) -> int:
    """Send held jobs while their priority's window has room; how many were
    sent. A job whose send fails (the broker is away) is held again, first in
    its tenant's turn, and the first such error is raised after the others."""
    sent, error = 0, None
    for priority in PRIORITIES:
        keys = [f"{FAIR_PREFIX}{priority}:ring", inflight_key(priority), SERVICE_KEY]
        args: list[str | int] = [f"{FAIR_PREFIX}{priority}:pending:", f"{priority}_window",
                                 DEFAULT_WINDOWS[priority], JOB_KEY_PREFIX, now, most]  # fmt: skip
        taken: Any = redis.eval(_TAKE, 3, *keys, *args)
        for job_id in (text(j) for j in taken):
            try:
                send(job_id, priority)
                sent += 1
            except Exception as exc:
                _untake(redis, priority, job_id)
                error = error or exc
    if error is not None:
        raise error
    return sent


def _untake(redis: Redis, priority: Priority, job_id: str) -> None:
    tenant = text(redis.hget(JOB_KEY_PREFIX + job_id, "tenant") or DEFAULT_TENANT)
    keys = [f"{FAIR_PREFIX}{priority}:pending:{tenant}", f"{FAIR_PREFIX}{priority}:ring",
            inflight_key(priority), JOB_KEY_PREFIX + job_id]  # fmt: skip
    redis.eval(_UNTAKE, 4, *keys, job_id, tenant)


def leave_window(
    redis: Redis, job_id: str, priority: str, generation: int, outputs: int, done: list[int]
) -> bool:
    """Mark outputs `done` past their GPU step in the task's `generation`; True
    when that took the job out of its priority's in-flight window."""
    keys = [JOB_KEY_PREFIX + job_id, inflight_key(priority)]
    return int(redis.eval(_LEAVE, 2, *keys, job_id, generation, outputs, *done)) == 1


def reenter_window(redis: Redis, job_id: str, priority: str) -> bool:
    keys = [JOB_KEY_PREFIX + job_id, inflight_key(priority)]
    return int(redis.eval(_REENTER, 2, *keys, job_id)) == 1


def rehold(redis: Redis, tenant: str, priority: Priority, job_id: str) -> bool:
    """Hold a held job again if it is missing from its tenant's list."""
    keys = [f"{FAIR_PREFIX}{priority}:pending:{tenant}", f"{FAIR_PREFIX}{priority}:ring"]
    return int(redis.eval(_REHOLD, 2, *keys, job_id, tenant)) == 1


def publish_windows(redis: Redis, interactive: int, batch: int) -> None:
    redis.hset(SERVICE_KEY, mapping={"interactive_window": interactive, "batch_window": batch})


def held_count(redis: Redis, priority: Priority, tenant: str) -> int:
    return int(redis.llen(f"{FAIR_PREFIX}{priority}:pending:{tenant}"))


def held_total(redis: Redis, priority: Priority) -> int:
    """Jobs held at `priority`, over the tenants in its ring (every tenant with
    held jobs is there): read by /metrics, which anyone who reaches the
    gateway may call, so never a scan of the keyspace (it grows with jobs)."""
    tenants = {text(t) for t in redis.lrange(f"{FAIR_PREFIX}{priority}:ring", 0, -1)}
    with redis.pipeline(transaction=False) as pipe:
        for tenant in tenants:
            pipe.llen(f"{FAIR_PREFIX}{priority}:pending:{tenant}")
        return sum(int(n) for n in pipe.execute())
