"""The job record: one Redis hash per job, and the one owner of its keys, fields
and task ids. The client and every task go through JobRecord.

Layout (hash `backdrop:job:<id>`): `request` (JSON), `plan` (JSON, stored once
by the first step), `state`, `error_code`, `error_message`, `created`,
`started`, `updated`, `finished`, `ttl`, `outputs`, `cancelled`, per output i
`s<i>.state|progress|result_key|preview_key|worker|error_code|error_message`,
counters `c.<name>`, and bookkeeping `done`, `done.<i>`, `sent.<gen>.<i>`,
`fanned` (outputs were sent to the GPUs).
Each output has its own fields, so parallel tasks never overwrite each other.
Every write is a Lua script (record_scripts): no write recreates an expired
record, and each renews the record's expiry.
"""

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.models import (
    TERMINAL_STATES,
    JobError,
    JobRequest,
    JobState,
    JobStatus,
    StyleStatus,
    WebhookAttempt,
    WebhookStatus,
)
from api_contracts.names import DEFAULT_TENANT
from jobstore import record_scripts as lua
from jobstore.admission import PRIORITIES, inflight_key, leave_window, open_key, outputs_key
from jobstore.job_cost import UNIT_SIDE
from jobstore.redis_keys import EVENTS_STREAM, JOB_KEY_PREFIX, SERVICE_KEY
from jobstore.redis_text import text

DEFAULT_TTL = 7 * 24 * 3600  # until a worker has published the service's own
# A job failed or cancelled before any output was sent (refused at intake,
# cancelled while held): its record is kept a day at most, whatever the TTL.
UNRUN_TTL = 24 * 3600
EVENTS_MAXLEN = 100_000  # the stream is a recent history, trimmed approximately
_RANK = {JobState.QUEUED: 0, JobState.RUNNING: 1} | dict.fromkeys(TERMINAL_STATES, 2)
STEPS_PER_OUTPUT = ("stylize", "composite")
MAX_OUTPUTS = 1000  # far above the contract's MAX_STYLES: more is a corrupt record


class RecordGone(KeyError):
    """No record (never made, expired or deleted): a step has nothing to do."""


class CorruptRecord(BackdropError):
    """A record whose fields cannot be trusted: its job ends FAILED (INTERNAL)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL, message)


_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")


def valid_job_id(job_id: object) -> bool:
    """A job id as the client makes them (no ':' that would reach a side key)."""
    return isinstance(job_id, str) and bool(_JOB_ID.fullmatch(job_id))


def now() -> str:
    return datetime.now(UTC).isoformat()


def publish_service_settings(redis: Redis, record_ttl: int, max_side: int | None = None) -> None:
    """A worker tells producers how long records live (read by `create`) and
    the working size it paints at (what a job costs: jobstore.job_cost)."""
    redis.hset(SERVICE_KEY, "record_ttl", record_ttl)
    if max_side is not None:
        redis.hset(SERVICE_KEY, "max_side", max_side)


def published_max_side(redis: Redis) -> int:
    """The working size the workers last published; the default before any did."""
    raw = text(redis.hget(SERVICE_KEY, "max_side") or b"")
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 6 else 0
    return value if 32 <= value <= 4096 else UNIT_SIDE


class JobRecord:
    """Read and advance one job's record."""

    def __init__(self, redis: Redis, job_id: str) -> None:
        self.redis = redis
        self.job_id = job_id
        self.key = JOB_KEY_PREFIX + job_id

    # -- task ids: named here, so a cancel revokes exactly what was sent ------
    def segment_task_id(self, generation: int = 0) -> str:
        return (
            f"{self.job_id}.segment" if generation == 0 else f"{self.job_id}.{generation}.segment"
        )

    def output_task_ids(self, generation: int, index: int) -> tuple[str, str]:
        return tuple(f"{self.job_id}.{generation}.{index}.{s}" for s in STEPS_PER_OUTPUT)  # type: ignore[return-value]

    def generation_of(self, task_id: str) -> int | None:
        """The generation an output task's id names (output_task_ids); None
        for any other id."""
        parts = task_id.split(".")
        if len(parts) != 4 or parts[0] != self.job_id or not parts[1].isdigit():
            return None
        return int(parts[1])

    def generation(self) -> int:
        """How often the sweep restarted the job: each restart is a generation."""
        return max(0, _int(self.redis.hget(self.key, "c.requeued"), default=0))

    def all_task_ids(self) -> list[str]:
        try:
            outputs = range(self.output_count())
        except CorruptRecord:
            outputs = range(0)
        ids = []
        for gen in range(self.generation() + 1):
            ids.append(self.segment_task_id(gen))
            ids += [tid for i in outputs for tid in self.output_task_ids(gen, i)]
        return ids

    # -- writes ----------------------------------------------------------------
    def create(self, request: JobRequest, tenant: str = DEFAULT_TENANT, held: bool = False) -> None:
        """A QUEUED record; `held`: waiting in its tenant's fair queue, not yet
        sent (the sweep leaves it alone until the pump sends it)."""
        fields: dict[str, Any] = {
            "request": request.model_dump_json(),
            "tenant": tenant,
            "priority": request.priority,
            "held": "1" if held else "0",
            "state": JobState.QUEUED,
            "outputs": request.output_count,
            "created": now(),
            "updated": now(),
        }
        for i in range(request.output_count):
            fields[f"s{i}.state"] = JobState.QUEUED
            fields[f"s{i}.progress"] = 0
        self.redis.eval(lua.CREATE, 2, self.key, SERVICE_KEY, DEFAULT_TTL, *_pairs(fields))

    def set_ttl(self, seconds: int) -> None:
        """The service's record lifetime, applied from now on by every write."""
        self.set(ttl=seconds)

    def set(self, output: int | None = None, **fields: Any) -> bool:
        prefix = "" if output is None else f"s{output}."
        return self.set_fields({prefix + k: v for k, v in fields.items()})

    def set_fields(self, fields: dict[str, Any]) -> bool:
        """Write fields by their full names; False when there is no record."""
        return int(self.redis.eval(lua.SET, 1, self.key, *_pairs(fields))) == 1

    def set_once(self, field: str, value: str) -> bool | None:
        """Set a field unless it is set; True if this call set it, None: no record."""
        result = int(self.redis.eval(lua.SET_ONCE, 1, self.key, field, value))
        return None if result < 0 else result == 1

    def advance(self, state: JobState, output: int | None = None, **fields: Any) -> bool:
        """Move the job (or an output) forward to `state`; False if already there or past.
        A terminal state of the job itself goes through `finish`."""
        if output is None and state in TERMINAL_STATES:
            raise ValueError("a job ends only through JobRecord.finish")
        prefix = "" if output is None else f"s{output}."
        args: list[Any] = [prefix, str(state), _RANK[state], "updated", now()]
        args += _pairs({prefix + k: v for k, v in fields.items()})
        return int(self.redis.eval(lua.ADVANCE, 1, self.key, *args)) == 1

    def fail_output(self, output: int, code: ErrorCode, message: str) -> bool:
        state = JobState.CANCELLED if code == ErrorCode.CANCELLED else JobState.FAILED
        return self.advance(state, output, error_code=code, error_message=message)

    def progress(self, output: int, percent: int) -> None:
        self.redis.eval(lua.PROGRESS, 1, self.key, f"s{output}.", int(percent), now())

    def count(self, name: str, amount: int = 1) -> int:
        """Add to a counter; 0 when the record is gone (it is not recreated)."""
        value = int(self.redis.eval(lua.COUNT, 1, self.key, f"c.{name}", amount))
        if value == -2:
            raise _corrupt(f"c.{name}")
        return max(0, value)

    def mark_done(self, output: int, outputs: int) -> bool:
        """Count an output as done (once, even if redelivered); True for the
        last of the plan's `outputs`."""
        done = int(self.redis.eval(lua.MARK_DONE, 1, self.key, output))
        if done == -2:
            raise _corrupt("done")
        return done >= outputs > 0

    def mark_fanned_out(self) -> None:
        """Outputs are being sent to the GPUs: from now on the job keeps its
        quota units whatever its end (record_scripts.FINISH)."""
        self.set(fanned="1")

    def request_cancel(self) -> bool:
        """The flag that running steps check; False when there is no record."""
        return self.set(cancelled="1")

    def webhook_attempt(self, state: str, attempt: WebhookAttempt, keep: int = 20) -> None:
        """Record one delivery attempt (the last `keep`) and the webhook's state."""
        try:
            attempts = json.loads(self.field("webhook.attempts") or "[]")
            attempts = attempts if isinstance(attempts, list) else []
        except ValueError:
            attempts = []  # a corrupt log is started afresh
        attempts = [*attempts, json.loads(attempt.model_dump_json())][-keep:]
        self.set_fields({"webhook.state": state, "webhook.attempts": json.dumps(attempts)})

    def finish(
        self,
        state: JobState,
        error: JobError | None = None,
        open_outputs: JobState | None = None,
    ) -> bool:
        """The one place where a job ends (success, partial, failure, cancel,
        give-up): stamps `finished`, renews the expiry from the record's `ttl`,
        ends the outputs still open in `open_outputs` (with the same error), and
        appends a `job.finished` event (job id, state) to the events stream in
        the same atomic step. Idempotent: False when the job had already ended."""
        if state not in TERMINAL_STATES:
            raise ValueError(f"{state} is not a final state")
        code, message = (error.code, error.message) if error else ("", "")
        args: list[str | int | float] = [str(state), str(code), message, now(),
                                 str(open_outputs or ""), EVENTS_MAXLEN, MAX_OUTPUTS,
                                 JOB_KEY_PREFIX, time.time(), UNRUN_TTL]  # fmt: skip
        # The tenant's open-job slot, the fair queue's in-flight place and the
        # future units of a job that ended before its fan-out are given back
        # in the same step.
        tenant, priority = self.owner()
        keys = [self.key, EVENTS_STREAM, open_key(tenant), inflight_key(priority),
                outputs_key(tenant)]  # fmt: skip
        return int(self.redis.eval(lua.FINISH, 5, *keys, *args)) == 1

    def leave_window(self, done: list[int], generation: int) -> bool:
        """Outputs `done` are past their GPU step in a task of `generation`;
        True when the job left its fair queue's in-flight window by it
        (jobstore.admission.leave_window)."""
        _, priority = self.owner()
        count = self.output_count()
        if any(type(i) is not int or not 0 <= i < count for i in done):
            return False  # not a message the guard took: nothing is written
        return leave_window(self.redis, self.job_id, priority, generation, count, done)

    def owner(self) -> tuple[str, str]:
        """(tenant, priority) of the job; a record from before tenants: the default."""
        found: Any = self.redis.hmget(self.key, ["tenant", "priority"])
        tenant, priority = found
        priority_text = text(priority) if priority else "interactive"
        if priority_text not in PRIORITIES:
            priority_text = "interactive"
        return (text(tenant) if tenant else DEFAULT_TENANT), priority_text

    # -- reads -----------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.redis.exists(self.key))

    def output_count(self) -> int:
        """The number of outputs (0: no record); CorruptRecord if it is not one."""
        raw = self.field("outputs")
        if raw is None:
            return 0
        count = _int(raw, default=-1)
        if not 0 < count <= MAX_OUTPUTS:
            raise _corrupt("outputs")
        return count

    def field(self, name: str, output: int | None = None) -> str | None:
        raw = self.redis.hget(self.key, name if output is None else f"s{output}.{name}")
        return None if raw is None else text(raw)

    def request(self) -> JobRequest:
        raw = self.field("request")
        if raw is None:
            if self.exists():
                raise _corrupt("request", "missing")
            raise RecordGone(f"no job {self.job_id}")
        try:
            return JobRequest.model_validate_json(raw)
        except ValueError:
            raise BackdropError(
                ErrorCode.INTERNAL, "the job record's 'request' is corrupt"
            ) from None

    def finished(self) -> bool:
        """The job as a whole is final (done, failed, cancelled), or gone."""
        state = self.field("state")
        if state is None:
            if self.exists():
                raise _corrupt("state", "missing")
            return True
        return state in TERMINAL_STATES

    def cancelled(self) -> bool:
        return self.field("cancelled") == "1"

    def status(self) -> JobStatus:
        """The typed status; KeyError when there is no record, CorruptRecord
        (INTERNAL, naming the field) when a field cannot be trusted."""
        raw = {text(k): text(v) for k, v in self.redis.hgetall(self.key).items()}
        if not raw:
            raise RecordGone(f"no job {self.job_id}")
        return parse_status(self.job_id, raw)


def parse_status(job_id: str, raw: dict[str, str]) -> JobStatus:
    """Every field checked: a corrupt record is never read as a success."""
    outputs = _field(raw, "outputs", int)
    if not 0 < outputs <= MAX_OUTPUTS or outputs != _planned_outputs(raw, outputs):
        raise _corrupt("outputs")
    state = _field(raw, "state", JobState)
    _field(raw, "updated", _aware_time)  # the sweep judges staleness by it
    styles = [_output_status(raw, i) for i in range(outputs)]
    _check_consistent(state, styles)
    _field(raw, "request", JobRequest.model_validate_json)
    try:
        return JobStatus(
            job_id=job_id,
            state=state,
            styles=styles,
            error=_error(raw, ""),
            created_at=raw.get("created") or None,
            started_at=raw.get("started") or None,
            updated_at=raw.get("updated") or None,
            finished_at=raw.get("finished") or None,
            counters={k[2:]: _field(raw, k, int) for k in raw if k.startswith("c.")},
            webhook=_webhook(raw),
            tenant=raw.get("tenant") or None,
            priority=raw.get("priority") or "interactive",
        )
    except ValueError as exc:  # a timestamp or another field pydantic refused
        raise CorruptRecord(f"the job record is corrupt: {str(exc)[:300]}") from None


def _webhook(raw: dict[str, str]) -> WebhookStatus | None:
    if "webhook.state" not in raw:
        return None
    try:
        return WebhookStatus(
            state=raw["webhook.state"],
            event_id=raw.get("webhook.event_id"),
            attempts=json.loads(raw.get("webhook.attempts") or "[]"),
        )
    except ValueError:
        raise _corrupt("webhook.state") from None


def _check_consistent(state: JobState, styles: list[StyleStatus]) -> None:
    """A final job has final outputs; a success has a result for each output."""
    if any(s.state == JobState.SUCCEEDED and not s.result_key for s in styles):
        raise _corrupt("result_key", "missing on a succeeded output")
    if state in TERMINAL_STATES and any(s.state not in TERMINAL_STATES for s in styles):
        raise _corrupt("state", f"{state} while an output is still open")
    if state == JobState.SUCCEEDED and any(s.state != JobState.SUCCEEDED for s in styles):
        raise _corrupt("state", "SUCCEEDED while an output did not")


def corrupt_status(job_id: str, error: BackdropError) -> JobStatus:
    """What a reader is told about a record that cannot be trusted: FAILED,
    with the field named; never a success, never a job that runs forever."""
    return JobStatus(job_id=job_id, state=JobState.FAILED, styles=[],
                     error=JobError(code=error.code, message=error.message))  # fmt: skip


def _planned_outputs(raw: dict[str, str], default: int) -> int:
    """The output count of the stored plan (the record's count must match it)."""
    if "plan" not in raw:
        return default
    try:
        return len(json.loads(raw["plan"])["outputs"])
    except (ValueError, KeyError, TypeError):
        raise _corrupt("plan") from None


def _aware_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time without its zone")
    return moment


def _field(raw: dict[str, str], name: str, kind: Any) -> Any:
    if name not in raw:
        raise _corrupt(name, "missing")
    try:
        return kind(raw[name])
    except (ValueError, TypeError):
        raise _corrupt(name) from None


def _corrupt(name: str, what: str = "invalid") -> CorruptRecord:
    return CorruptRecord(f"the job record's field {name!r} is {what}")


def _int(value: bytes | str | None, default: int) -> int:
    try:
        return default if value is None else int(text(value))
    except ValueError:
        return default


def _pairs(fields: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in fields.items():
        out += [name, "" if value is None else str(value)]
    return out


def _error(raw: dict[str, str], prefix: str) -> JobError | None:
    code = raw.get(prefix + "error_code")
    if not code:
        return None
    try:
        return JobError(code=ErrorCode(code), message=raw.get(prefix + "error_message", ""))
    except ValueError:
        raise _corrupt(prefix + "error_code") from None


def _output_status(raw: dict[str, str], i: int) -> StyleStatus:
    p = f"s{i}."
    progress = _field(raw, p + "progress", int) if p + "progress" in raw else 0
    if not 0 <= progress <= 100:
        raise _corrupt(p + "progress")
    return StyleStatus(
        index=i,
        state=_field(raw, p + "state", JobState) if p + "state" in raw else JobState.QUEUED,
        progress=progress,
        result_key=raw.get(p + "result_key") or None,
        preview_key=raw.get(p + "preview_key") or None,
        latest_key=raw.get(p + "latest_key") or None,
        error=_error(raw, p),
    )
