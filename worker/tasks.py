"""Thin Celery tasks: each calls one step of worker.jobs and maps failures to codes."""

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from celery import Task, chain
from celery.exceptions import SoftTimeLimitExceeded
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api_contracts.errors import BackdropError, ErrorCode
from api_contracts.names import (
    JOB_KEY_PREFIX,
    TASK_COMPOSITE,
    TASK_FINALIZE,
    TASK_SEGMENT,
    TASK_STYLIZE,
)
from worker import jobs
from worker.celery_app import app
from worker.settings import get_settings
from worker.storage import StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


@lru_cache(maxsize=1)
def services() -> jobs.Services:
    """One Redis and one S3 client per worker process, made in the child."""
    return make_services()


def make_services() -> jobs.Services:
    """Fresh clients: for the child's cache above, and for the parent's own use."""
    from worker.storage.minio_store import MinioStore

    settings = get_settings()
    s = settings.storage
    if s.access_key is None or s.secret_key is None:
        raise BackdropError(
            ErrorCode.INTERNAL, "BACKDROP_STORAGE__ACCESS_KEY/SECRET_KEY are not set"
        )
    store = MinioStore(
        s.endpoint, s.access_key.get_secret_value(), s.secret_key.get_secret_value(),
        secure=s.secure, region=s.region, public_endpoint=s.public_endpoint,
    )  # fmt: skip
    return jobs.Services(settings, store, Redis.from_url(settings.redis.url))


def warm_models() -> None:
    from worker.model_cache import get_feature_net, get_segmenter

    settings = get_settings()
    get_segmenter(settings)
    get_feature_net(settings.style, settings)


def _guarded(task: Task, job_id: str, index: int | None, step: Callable[[], T]) -> T | None:
    """Run a step; any failure becomes a code in the job record, never a bare exception
    (which would leave the job RUNNING). Transient storage errors are retried first."""
    context = {"job_id": job_id, "task_id": task.request.id, "output": index}
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
    except jobs.JobOver:
        log.info("job %s already ended: step skipped", job_id, extra=context)
        return None
    except jobs.Cancelled:
        code, message = ErrorCode.CANCELLED, "cancelled by request"
    except BackdropError as exc:
        code, message = exc.code, exc.message
    except Exception as exc:
        log.exception("internal error", extra=context)
        code, message = ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
    log.info("job %s output %s failed: %s %s", job_id, index, code, message, extra=context)
    if index is None:
        jobs.fail_job(svc, job_id, code, message)
    elif jobs.fail_output(svc, job_id, index, code, message):
        finalize.delay(job_id)
    return None


@app.task(name=TASK_SEGMENT, bind=True)
def segment(self: Task, job_id: str) -> None:
    contexts = _guarded(self, job_id, None, lambda: jobs.segment_step(services(), job_id))
    if not contexts:
        return
    # A job restarted by the sweep only redoes the outputs still open; a
    # redelivered segment task does not send an output's chain a second time.
    svc = services()
    still_open = set(jobs.open_outputs(svc, job_id))
    generation = int(svc.redis.hget(f"{JOB_KEY_PREFIX}{job_id}", "c.requeued") or 0)
    for ctx in contexts:
        i = ctx["index"]
        marker = f"{JOB_KEY_PREFIX}{job_id}:sent:{generation}:{i}"
        if i in still_open and svc.redis.set(
            marker, 1, nx=True, ex=svc.settings.queue.result_expires
        ):
            ids = output_task_ids(job_id, generation, i)
            chain(
                stylize.s(ctx).set(task_id=ids[0]), composite.s().set(task_id=ids[1])
            ).apply_async()
    if not still_open:
        finalize.delay(job_id)


def output_task_ids(job_id: str, generation: int, index: int) -> tuple[str, str]:
    """Fixed ids, so a cancel can revoke them by name (see the client)."""
    return f"{job_id}.{generation}.{index}.stylize", f"{job_id}.{generation}.{index}.composite"


@app.task(name=TASK_STYLIZE, bind=True)
def stylize(self: Task, ctx: dict[str, Any]) -> dict[str, Any] | None:
    return _guarded(self, ctx["job_id"], ctx["index"], lambda: jobs.stylize_step(services(), ctx))


@app.task(name=TASK_COMPOSITE, bind=True)
def composite(self: Task, ctx: dict[str, Any] | None) -> None:
    if ctx is None:
        return  # the output already ended in the stylize step
    last = _guarded(self, ctx["job_id"], ctx["index"], lambda: jobs.composite_step(services(), ctx))
    if last:
        finalize.delay(ctx["job_id"])


@app.task(name=TASK_FINALIZE, bind=True)
def finalize(self: Task, job_id: str) -> str | None:
    state = _guarded(self, job_id, None, lambda: jobs.finalize_step(services(), job_id))
    return None if state is None else str(state)
