"""The job record: one Redis hash per job, written by the client and every task.

Layout (hash `backdrop:job:<id>`): `request` (JSON), `state`, `error_code`,
`error_message`, `created`, `updated`, `outputs`, `cancelled`, per output i
`s<i>.state|progress|result_key|error_code|error_message`, counters `c.<name>`.
Each output has its own fields, so parallel tasks never overwrite each other,
and states only move forward (QUEUED -> RUNNING -> terminal), enforced in Lua
so a redelivered or late task cannot drag a finished job backwards.
"""

from datetime import UTC, datetime
from typing import Any

from redis import Redis

from api_contracts.errors import ErrorCode
from api_contracts.models import (
    TERMINAL_STATES,
    JobError,
    JobRequest,
    JobState,
    JobStatus,
    StyleStatus,
)
from api_contracts.names import JOB_KEY_PREFIX

_RANK = {JobState.QUEUED: 0, JobState.RUNNING: 1}
for _state in TERMINAL_STATES:
    _RANK[_state] = 2

# ARGV: prefix, new state, new rank, then field/value pairs written with it.
_ADVANCE = """
local old = redis.call('HGET', KEYS[1], ARGV[1] .. 'state')
if not old then return 0 end
local ranks = {QUEUED=0, RUNNING=1}
local old_rank = ranks[old] or 2
if tonumber(ARGV[3]) <= old_rank then return 0 end
redis.call('HSET', KEYS[1], ARGV[1] .. 'state', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# Progress only rises, and only while the output is not finished.
_PROGRESS = """
local state = redis.call('HGET', KEYS[1], ARGV[1] .. 'state')
if not state or (state ~= 'QUEUED' and state ~= 'RUNNING') then return 0 end
-- Every tick is a heartbeat (the sweep reads `updated`), even when the
-- percentage does not rise, e.g. a restarted output catching up.
redis.call('HSET', KEYS[1], 'updated', ARGV[3])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. 'progress') or '0')
if tonumber(ARGV[2]) <= old then return 0 end
redis.call('HSET', KEYS[1], ARGV[1] .. 'progress', ARGV[2])
return 1
"""


def now() -> str:
    return datetime.now(UTC).isoformat()


class JobRecord:
    """Read and advance one job's record."""

    def __init__(self, redis: Redis, job_id: str, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self.redis = redis
        self.job_id = job_id
        self.key = JOB_KEY_PREFIX + job_id
        self.ttl = ttl_seconds

    def create(self, request: JobRequest) -> None:
        fields: dict[Any, str | int] = {
            "request": request.model_dump_json(),
            "state": str(JobState.QUEUED),
            "outputs": request.output_count,
            "created": now(),
            "updated": now(),
        }
        for i in range(request.output_count):
            fields[f"s{i}.state"] = str(JobState.QUEUED)
            fields[f"s{i}.progress"] = 0
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, mapping=fields)
            pipe.expire(self.key, self.ttl)
            pipe.execute()

    def output_count(self) -> int:
        return int(self.redis.hget(self.key, "outputs") or 0)

    def exists(self) -> bool:
        return bool(self.redis.exists(self.key))

    def request(self) -> JobRequest:
        raw = self.redis.hget(self.key, "request")
        if raw is None:
            raise KeyError(f"no job {self.job_id}")
        return JobRequest.model_validate_json(raw)

    def advance(self, state: JobState, output: int | None = None, **fields: Any) -> bool:
        """Move the job (or an output) forward to `state`; False if already there or past."""
        prefix = "" if output is None else f"s{output}."
        args: list[Any] = [prefix, str(state), _RANK[state], "updated", now()]
        for name, value in fields.items():
            args += [prefix + name, "" if value is None else str(value)]
        return bool(self.redis.eval(_ADVANCE, 1, self.key, *args))

    def fail(self, code: ErrorCode, message: str, output: int | None = None) -> bool:
        return self.advance(JobState.FAILED, output, error_code=code, error_message=message)

    def progress(self, output: int, percent: int) -> None:
        self.redis.eval(_PROGRESS, 1, self.key, f"s{output}.", int(percent), now())

    def count(self, name: str, amount: int = 1) -> int:
        return int(self.redis.hincrby(self.key, f"c.{name}", amount))

    def cancel(self) -> bool:
        self.redis.hset(self.key, "cancelled", "1")
        return self.advance(
            JobState.CANCELLED, error_code=ErrorCode.CANCELLED, error_message="cancelled by request"
        )

    def finished(self) -> bool:
        """The job as a whole is final (done, failed, cancelled)."""
        state = self.redis.hget(self.key, "state")
        return state is None or JobState(_text(state)) in TERMINAL_STATES

    def cancelled(self) -> bool:
        return _text(self.redis.hget(self.key, "cancelled") or b"") == "1"

    def status(self) -> JobStatus:
        raw = {_text(k): _text(v) for k, v in self.redis.hgetall(self.key).items()}
        if not raw:
            raise KeyError(f"no job {self.job_id}")
        outputs = int(raw.get("outputs", "0"))
        return JobStatus(
            job_id=self.job_id,
            state=JobState(raw["state"]),
            styles=[_output_status(raw, i) for i in range(outputs)],
            error=_error(raw, ""),
            created_at=raw.get("created") or None,
            started_at=raw.get("started") or None,
            updated_at=raw.get("updated") or None,
            counters={k[2:]: int(v) for k, v in raw.items() if k.startswith("c.")},
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _error(raw: dict[str, str], prefix: str) -> JobError | None:
    code = raw.get(prefix + "error_code")
    if not code:
        return None
    return JobError(code=ErrorCode(code), message=raw.get(prefix + "error_message", ""))


def _output_status(raw: dict[str, str], i: int) -> StyleStatus:
    p = f"s{i}."
    return StyleStatus(
        index=i,
        state=JobState(raw.get(p + "state", JobState.QUEUED)),
        progress=int(raw.get(p + "progress", "0")),
        result_key=raw.get(p + "result_key") or None,
        preview_key=raw.get(p + "preview_key") or None,
        error=_error(raw, p),
    )
