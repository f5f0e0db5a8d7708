"""Thin Celery tasks: each loads nothing itself, calls one step and maps any
failure to a code in the job record (never a bare exception, which would leave
the job RUNNING)."""

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from celery import Task, chain
from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.names import TASK_COMPOSITE, TASK_FINALIZE, TASK_SEGMENT, TASK_STYLIZE
from api_contracts.records import JobRecord
from worker.runtime.settings import get_settings
from worker.service import finish, lifecycle, steps
from worker.service.celery_app import app
from worker.service.context import Cancelled, JobOver, Services, make_services
from worker.storage import StorageUnavailable

assert lifecycle  # its signal handlers must be connected wherever tasks run
log = logging.getLogger(__name__)
T = TypeVar("T")
LOG_FIELD_CHARS = 200  # ids and messages in logs are cut: a message may be hostile


@lru_cache(maxsize=1)
def services() -> Services:
    """One Redis and one S3 client per worker process, made in the child."""
    return make_services(get_settings())


def _guarded(task: Task, job_id: str, index: int | None, step: Callable[[], T]) -> T | None:
    """Run a step; a failure becomes a code in the record. Transient storage
    errors are retried first."""
    context = {"job_id": str(job_id)[:LOG_FIELD_CHARS], "task_id": task.request.id, "output": index}
    svc = services()
    try:
        return step()
    except StorageUnavailable as exc:
        retries = task.request.retries
        if retries < svc.settings.queue.storage_retries:
            log.warning("storage unavailable, retry %d: %s", retries + 1, exc, extra=context)
            delay = svc.settings.queue.retry_backoff_seconds * 2**retries
            raise task.retry(
                countdown=delay, max_retries=svc.settings.queue.storage_retries
            ) from exc
        code, message = ErrorCode.STORAGE_UNAVAILABLE, str(exc)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # Redis is the broker too: a retry cannot be published while it is down.
        # Let the task fail; the sweep restarts the job once Redis is back.
        log.warning("redis unavailable: %s; leaving the job to the sweep", exc, extra=context)
        raise
    except SoftTimeLimitExceeded:
        code, message = ErrorCode.TIMEOUT, "the task ran past its time limit"
    except (JobOver, KeyError):
        log.info("job %s ended or is gone: step skipped", context["job_id"], extra=context)
        return None
    except Cancelled:
        code, message = ErrorCode.CANCELLED, "cancelled by request"
    except BackdropError as exc:
        code, message = exc.code, exc.message
    except Exception as exc:
        log.exception("internal error", extra=context)
        code, message = ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
    log.info("job %s output %s failed: %s %.300s", context["job_id"], index, code, message,
             extra=context)  # fmt: skip
    record = svc.record(job_id)
    if index is not None and not _output_of(record, index):
        log.warning("output index outside the job: nothing written", extra=context)
        return None
    if index is None:
        finish.fail_job(record, code, message)
    elif finish.fail_output(record, index, code, message):
        finalize.delay(job_id)
    return None


def _output_of(record: JobRecord, index: object) -> bool:
    """A message's index names an output of this job (a message is not trusted)."""
    return (
        isinstance(index, int)
        and not isinstance(index, bool)
        and 0 <= index < record.output_count()
    )


@app.task(name=TASK_SEGMENT, bind=True)
def segment(self: Task, job_id: str) -> None:
    open_outputs = _guarded(self, job_id, None, lambda: steps.segment_step(services(), job_id))
    if open_outputs is None:
        return
    if not open_outputs:
        finalize.delay(job_id)
        return
    send_outputs(job_id, open_outputs)


def send_outputs(job_id: str, outputs: list[int]) -> None:
    """One chain per open output, under ids the record names; a redelivered
    segment task does not send an output's chain a second time."""
    record = services().record(job_id)
    generation = record.generation()
    for i in outputs:
        if record.set_once(f"sent.{generation}.{i}", "1"):
            ids = record.output_task_ids(generation, i)
            chain(
                stylize.si(job_id, i).set(task_id=ids[0]),
                composite.si(job_id, i).set(task_id=ids[1]),
            ).apply_async()


@app.task(name=TASK_STYLIZE, bind=True)
def stylize(self: Task, job_id: str, index: int) -> None:
    _guarded(self, job_id, index, lambda: steps.stylize_step(services(), job_id, index))


@app.task(name=TASK_COMPOSITE, bind=True)
def composite(self: Task, job_id: str, index: int) -> None:
    # An output that already ended (failed in its stylize step) has nothing to build.
    if services().record(job_id).field("state", index) in (None, "QUEUED", "RUNNING"):
        last = _guarded(
            self, job_id, index, lambda: steps.composite_step(services(), job_id, index)
        )
        if last:
            finalize.delay(job_id)


@app.task(name=TASK_FINALIZE, bind=True)
def finalize(self: Task, job_id: str) -> str | None:
    state = _guarded(self, job_id, None, lambda: steps.finalize_step(services(), job_id))
    return None if state is None else str(state)
