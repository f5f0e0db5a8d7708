"""Every task runs its step through `guarded`: the message is checked before it
is trusted, a task that keeps killing its worker is stopped, and any failure
becomes a code in the job record (never a bare exception, which would leave
the job RUNNING)."""

import json
import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import cv2
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from api_contracts.errors import BackdropError, ErrorCode
from jobstore import redis_keys
from jobstore.connection import REDIS_UNAVAILABLE
from jobstore.records import CorruptRecord, JobRecord, RecordGone, valid_job_id
from worker.service import finish
from worker.service.context import Cancelled, JobOver, Services
from worker.service.dead_letters import dead_letter
from worker.service.plan import load_plan
from worker.storage import StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
LOG_CHARS = 200  # ids and messages in logs are cut: a message may be hostile
MAX_BATCH = 8  # the most outputs one stylize_batch task may carry (settings.MAX_STYLE_BATCH)


class MessageRejected(Exception):
    """A task message whose arguments are not a job's: dead-lettered, no record touched."""


class PoisonTask(Exception):
    """The same task was delivered too often: it killed its worker each time."""


def check_message(job_id: object, index: object) -> None:
    if not valid_job_id(job_id):
        raise MessageRejected("the job id is not a job id")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        raise MessageRejected("the output index is not an index")


Part = Literal["whole", "first", "last"]


def guarded(
    svc: Services, task: Task, job_id: str, index: int | list[int] | None,
    step: Callable[[], T], finalize: Callable[[str], None], part: Part = "whole",
) -> T | None:  # fmt: skip
    """`index`: the step's output, or the outputs of a batch (a failure of the
    step fails each of them), or None for a step of the whole job. `part`:
    a task that guards two steps counts its delivery once, in the first, and
    forgets it only once the last has ended (each call counting and
    forgetting, a batch that killed its worker in its second step was
    delivered for ever: the first reset the count every time)."""
    context = {"job_id": str(job_id)[:LOG_CHARS], "task_id": str(task.request.id)[:LOG_CHARS],
               "output": str(index)[:LOG_CHARS]}  # fmt: skip
    outputs: list[int | None] = list(index) if isinstance(index, list) else [index]
    context["outputs"] = str(len(outputs))
    try:
        if isinstance(index, list) and not 0 < len(index) <= MAX_BATCH:
            raise MessageRejected("a batch of outputs is 1 to 8 indices")
        for i in outputs:
            check_message(job_id, i)
    except MessageRejected as exc:
        _reject(svc, task, str(exc), job_id, index)
        return None
    counter = _delivery_counter(svc, task)
    ended = True  # the message is done with (a result, or its failure recorded)
    try:
        if (
            counter
            and part != "last"
            and int(svc.redis.incr(counter)) > svc.settings.queue.max_deliveries
        ):
            raise PoisonTask(f"delivered {svc.settings.queue.max_deliveries} times without end")
        if counter and part != "last":
            svc.redis.expire(counter, svc.settings.queue.visibility_timeout * 4)
        result = step()
        ended = part != "first"
        return result
    except Exception as exc:
        code, message = _failure(svc, task, exc, context)
        if isinstance(exc, CorruptRecord):
            outputs = [None]  # a record that cannot be trusted ends the whole job
    finally:
        if counter and ended:
            svc.redis.delete(counter)
    if code is None:
        return None
    if isinstance(code, PoisonTask):
        _reject(svc, task, message, job_id, index)
        code = ErrorCode.INTERNAL
    log.info("job %s output %s failed: %s %.300s", context["job_id"], index, code, message,
             extra=context)  # fmt: skip
    for i in outputs:
        record_failure(svc.record(job_id), i, code, message, finalize)
    return None


def _failure(svc: Services, task: Task, exc: Exception, context: dict[str, str]) -> tuple[Any, str]:
    """(code, message) of a failed step; (None, '') when nothing is to be written."""
    if isinstance(exc, StorageUnavailable):
        retries, limit = task.request.retries, svc.settings.queue.storage_retries
        if retries < limit:
            log.warning("storage unavailable, retry %d: %.300s", retries + 1, exc, extra=context)
            delay = svc.settings.queue.retry_backoff_seconds * 2**retries
            raise task.retry(countdown=delay, max_retries=limit) from exc
        # The detail names the store's host and port: the log has it, the
        # tenant's status does not.
        log.error("storage unavailable, no retries left: %.300s", exc, extra=context)
        return ErrorCode.STORAGE_UNAVAILABLE, f"the object store did not answer ({limit} retries)"
    if isinstance(exc, REDIS_UNAVAILABLE):
        # Redis is the broker too: a retry cannot be published while it is down.
        # Let the task fail; the sweep restarts the job once Redis is back.
        log.warning("redis unavailable: %.300s; leaving the job to the sweep", exc, extra=context)
        raise exc
    if isinstance(exc, JobOver | RecordGone):
        log.info("job %s ended or is gone: step skipped", context["job_id"], extra=context)
        return None, ""
    if isinstance(exc, PoisonTask):
        return exc, f"the task was stopped: {exc} (a crash or out of memory each time)"
    if isinstance(exc, SoftTimeLimitExceeded):
        return ErrorCode.TIMEOUT, "the task ran past its time limit"
    if isinstance(exc, Cancelled):
        return ErrorCode.CANCELLED, "cancelled by request"
    if isinstance(exc, BackdropError):
        return exc.code, tenant_message(exc, context)
    if _out_of_memory(exc) and context.get("outputs", "1") == "1":
        # One output this worker cannot hold (regions x size): say so. A batch
        # (the operator's choice) may fit apart: that is not the tenant's to change.
        log.warning("out of memory: %.300s", exc, extra=context)
        return ErrorCode.INVALID_REQUEST, (
            "this request needs more memory than the worker has: ask for a smaller size, "
            "fewer paintings in a blend or `output: working`")  # fmt: skip
    log.exception("internal error", extra=context)
    # The exception's text may name hosts, paths or library internals: the log
    # has it under the job's id, the tenant's status only its kind.
    return (
        ErrorCode.INTERNAL,
        f"an internal error ({type(exc).__name__}); it is logged under this job's id",
    )


def _out_of_memory(exc: Exception) -> bool:
    """NumPy's MemoryError, OpenCV's StsNoMem or TensorFlow's ResourceExhaustedError
    (by name: the guard imports no TensorFlow): an allocation that failed, not a crash."""
    if isinstance(exc, cv2.error):
        return bool(getattr(exc, "code", None) == cv2.Error.StsNoMem)
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


def tenant_message(exc: BackdropError, context: dict[str, Any]) -> str:
    """What the tenant's status says of a service error. MODEL_UNAVAILABLE's
    text is for the operator (the worker's models directory, an upstream
    address): the log has it, the status a fixed message."""
    if exc.code != ErrorCode.MODEL_UNAVAILABLE:
        return exc.message
    log.error("model unavailable: %.500s", exc.message, extra=context)
    return ("a model this job needs is not available on the worker that took it; "
            "it is logged under this job's id for the operator")  # fmt: skip


def record_failure(
    record: JobRecord, index: int | None, code: ErrorCode, message: str,
    finalize: Callable[[str], None],
) -> None:  # fmt: skip
    """One output fails (the job goes on), or the whole job does: before the
    fan-out, or when its record cannot be trusted."""
    try:
        if index is not None:
            plan = load_plan(record)
            if index >= plan.output_count:
                log.warning("output %s is not in job %.200s: nothing written", index, record.job_id)
                return
            last = finish.fail_output(record, index, plan.output_count, code, message)
            if last:  # outside the record's try: a lost send is the sweep's to redo
                _finalize_quietly(finalize, record.job_id)
            return
    except CorruptRecord as exc:
        code, message = exc.code, exc.message
    except Exception as exc:  # no plan, or the record failed again: end the job as a whole
        log.warning("job %.200s: %.300s; failing the job", record.job_id, exc)
    finish.fail_job(record, code, message)


def _finalize_quietly(finalize: Callable[[str], None], job_id: str) -> None:
    try:
        finalize(job_id)
    except Exception as exc:  # the broker is down: the sweep finds the job later
        log.warning("could not send finalize of %.200s: %.300s", job_id, exc)


def _delivery_counter(svc: Services, task: Task) -> str | None:
    task_id = task.request.id
    if not task_id:
        return None
    return redis_keys.deliveries(str(task_id))


def _reject(svc: Services, task: Task, reason: str, job_id: object, index: object) -> None:
    args = json.dumps([job_id, index] if index is not None else [job_id], default=str)
    dead_letter(svc.redis, str(task.request.delivery_info.get("routing_key", "?")),
                b"", reason, task=str(task.name), args=args)  # fmt: skip
