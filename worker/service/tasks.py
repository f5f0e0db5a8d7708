"""Thin Celery tasks: each calls one step through `guarded` (message checks,
failures as codes in the record) and fans out or finalizes."""

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from celery import Task, chain

from api_contracts.names import (
    PRIORITY_QUEUES,
    TASK_COMPOSITE,
    TASK_FINALIZE,
    TASK_NOTIFY,
    TASK_SEGMENT,
    TASK_STYLIZE,
)
from worker.runtime.settings import get_settings
from worker.service import lifecycle, metrics, steps
from worker.service.celery_app import app
from worker.service.context import Services, make_services
from worker.service.guard import check_message, guarded
from worker.service.notify import backoff, deliver

assert lifecycle  # its signal handlers must be connected wherever tasks run
log = logging.getLogger(__name__)
T = TypeVar("T")


@lru_cache(maxsize=1)
def services() -> Services:
    """One Redis and one S3 client per worker process, made in the child."""
    return make_services(get_settings())


def _guarded(task: Task, job_id: str, index: int | None, step: Callable[[], T]) -> T | None:
    return guarded(services(), task, job_id, index, step, finalize.delay)


@app.task(name=TASK_SEGMENT, bind=True)
def segment(self: Task, job_id: str) -> None:
    with metrics.timed("segment"):
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
    gpu_queue = PRIORITY_QUEUES[record.owner()[1]]
    for i in outputs:
        if record.set_once(f"sent.{generation}.{i}", "1"):
            ids = record.output_task_ids(generation, i)
            chain(
                stylize.si(job_id, i).set(task_id=ids[0], queue=gpu_queue),
                composite.si(job_id, i).set(task_id=ids[1]),
            ).apply_async()


@app.task(name=TASK_STYLIZE, bind=True)
def stylize(self: Task, job_id: str, index: int) -> None:
    with metrics.timed("stylize"):
        _guarded(self, job_id, index, lambda: steps.stylize_step(services(), job_id, index))


@app.task(name=TASK_COMPOSITE, bind=True)
def composite(self: Task, job_id: str, index: int) -> None:
    with metrics.timed("composite"):
        last = _guarded(
            self, job_id, index, lambda: steps.composite_step(services(), job_id, index)
        )
    if last:
        finalize.delay(job_id)


@app.task(name=TASK_NOTIFY, bind=True)
def notify(self: Task, job_id: str, event_id: str, attempt: int = 0) -> str | None:
    """One webhook attempt; a failed one is sent again after its backoff."""
    svc = services()
    try:
        check_message(job_id, attempt)
        outcome = deliver(svc, job_id, str(event_id)[:64], attempt)
    except Exception as exc:  # the record is gone or unreadable: nothing to send
        log.warning("webhook of job %.200s not sent: %.300s", job_id, exc)
        return None
    if outcome == "retry":
        countdown = backoff(attempt, svc.settings)
        notify.apply_async((job_id, event_id, attempt + 1), countdown=countdown)
    return outcome


@app.task(name=TASK_FINALIZE, bind=True)
def finalize(self: Task, job_id: str) -> str | None:
    state = _guarded(self, job_id, None, lambda: steps.finalize_step(services(), job_id))
    return None if state is None else str(state)
