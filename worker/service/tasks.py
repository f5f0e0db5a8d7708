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
    TASK_SEGMENT,
    TASK_STYLIZE,
    TASK_STYLIZE_BATCH,
)
from jobstore.admission import pump
from jobstore.records import now
from jobstore.trusted_client import first_step_sender
from worker.runtime.settings import get_settings
from worker.service import finish, lifecycle, metrics, steps, stylize_steps
from worker.service.celery_app import app
from worker.service.context import Services, make_services
from worker.service.guard import MAX_BATCH, check_message, guarded, record_failure

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
    """One chain per open output (stylize, composite), or with
    queue.style_batch > 1 one stylize_batch task per group of outputs (it
    sends their composites when done); under ids the record names, and a
    redelivered segment task sends nothing a second time."""
    record = services().record(job_id)
    generation = record.generation()
    gpu_queue = PRIORITY_QUEUES[record.owner()[1]]
    record.mark_fanned_out()  # before any is sent: its quota units are spent
    unsent = [i for i in outputs if record.set_once(f"sent.{generation}.{i}", "1")]
    # Outputs painted in regions (two paintings) cannot share one optimization:
    # batched, they would run one after another in a single task.
    size = 1 if record.request().mode == "dual" else services().settings.queue.style_batch
    for group in (unsent[k : k + size] for k in range(0, len(unsent), size)):
        ids = record.output_task_ids(generation, group[0])
        if len(group) > 1:  # the batch task takes the first output's stylize id
            stylize_batch.si(job_id, group).set(task_id=ids[0], queue=gpu_queue).apply_async()
            continue
        chain(
            stylize.si(job_id, group[0]).set(task_id=ids[0], queue=gpu_queue),
            composite.si(job_id, group[0]).set(task_id=ids[1]),
        ).apply_async()


@app.task(name=TASK_STYLIZE, bind=True)
def stylize(self: Task, job_id: str, index: int) -> None:
    with metrics.timed("stylize"):
        _guarded(self, job_id, index, lambda: steps.stylize_step(services(), job_id, index))
    _left_gpus(self, job_id, [index])


def _left_gpus(task: Task, job_id: str, indices: list[int]) -> None:
    """These outputs' GPU steps are over: the job may leave the GPUs' window
    (finish.past_gpu), and if it did, the next held job is sent now rather
    than at the parent's next pump. Never raises: at worst the job leaves
    the window at its end."""
    try:
        check_message(job_id, None)  # a message the guard refuses touches no record
        if not 0 < len(indices) <= MAX_BATCH:
            return
        svc = services()
        left = finish.past_gpu(svc.record(job_id), indices, str(task.request.id))
    except Exception as exc:
        log.warning("job %.200s: window not left here: %.300s", str(job_id)[:200], exc)
        return
    if left:
        try:
            pump(svc.redis, first_step_sender(app, svc.redis), now())
        except Exception as exc:  # the parent's pump sends it within a second
            log.warning("pump after job %.200s left the window: %.300s", job_id, exc)


@app.task(name=TASK_STYLIZE_BATCH, bind=True)
def stylize_batch(self: Task, job_id: str, indices: list[int]) -> None:
    """Several outputs in one optimization; an output that failed on its own is
    recorded alone, the others go on to their composites."""
    svc = services()
    batch = guarded(svc, self, job_id, indices,
                    lambda: stylize_steps.prepare_batch(svc, job_id, indices),
                    finalize.delay, part="first")  # fmt: skip
    if batch is None:
        _left_gpus(self, job_id, indices)
        return
    # Settled before the optimization: a failure of it cannot touch these.
    for index, code, message in batch.failed:
        record_failure(batch.record, index, code, message, finalize.delay)
    _send_composites(job_id, batch.ready)
    with metrics.timed("stylize"):
        done = guarded(svc, self, job_id, [p.index for p in batch.todo] or indices,
                       lambda: stylize_steps.optimize_batch(svc, batch),
                       finalize.delay, part="last")  # fmt: skip
    _send_composites(job_id, done or [])
    _left_gpus(self, job_id, indices)


def _send_composites(job_id: str, outputs: list[int]) -> None:
    record = services().record(job_id)
    generation = record.generation()
    for i in outputs:
        composite.si(job_id, i).set(task_id=record.output_task_ids(generation, i)[1]).apply_async()


@app.task(name=TASK_COMPOSITE, bind=True)
def composite(self: Task, job_id: str, index: int) -> None:
    with metrics.timed("composite"):
        last = _guarded(
            self, job_id, index, lambda: steps.composite_step(services(), job_id, index)
        )
    if last:
        finalize.delay(job_id)


@app.task(name=TASK_FINALIZE, bind=True)
def finalize(self: Task, job_id: str) -> str | None:
    state = _guarded(self, job_id, None, lambda: steps.finalize_step(services(), job_id))
    return None if state is None else str(state)
