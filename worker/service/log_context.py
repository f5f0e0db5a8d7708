"""Structured worker logs: every line carries the job id and the Celery task id."""

import logging
from contextvars import ContextVar
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun

current_job: ContextVar[str] = ContextVar("current_job", default="-")
current_task: ContextVar[str] = ContextVar("current_task", default="-")
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(processName)s "
    "job=%(job_id)s task=%(task_id)s %(name)s: %(message)s"
)


MAX_FIELD_CHARS = 200  # a job id or task id in a log line (a message may be hostile)
MAX_LINE_CHARS = 4000  # a whole line, traceback included


class BoundedFormatter(logging.Formatter):
    """No log line grows with what a message carries: a 10 MB argument must
    not become a 10 MB line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if len(line) <= MAX_LINE_CHARS:
            return line
        return line[:MAX_LINE_CHARS] + f"... [{len(line) - MAX_LINE_CHARS} chars cut]"


class JobContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job.get()
        record.task_id = current_task.get()
        return True


def job_id_of(args: tuple[Any, ...] | list[Any] | None) -> str:
    """Tasks take a job id or a context dict holding one as their first argument."""
    first = args[0] if args else None
    if isinstance(first, dict):
        first = first.get("job_id", "-")
    return str(first)[:MAX_FIELD_CHARS] if isinstance(first, str) else "-"


@task_prerun.connect
def _enter_task(task_id: str | None = None, args: Any = None, **_: Any) -> None:
    current_task.set((task_id or "-")[:MAX_FIELD_CHARS])
    current_job.set(job_id_of(args))


@task_postrun.connect
def _leave_task(**_: Any) -> None:
    current_task.set("-")
    current_job.set("-")


@after_setup_logger.connect
@after_setup_task_logger.connect
def _structured_format(logger: logging.Logger, **_: Any) -> None:
    for handler in logger.handlers:
        handler.addFilter(JobContextFilter())
        handler.setFormatter(BoundedFormatter(LOG_FORMAT))
