"""The Celery app: configured from Settings; models load in each child, never in the parent.

Start a worker with `backdrop worker --queues gpu,cpu` (or
`celery -A worker.celery_app worker -Q gpu,cpu`).
"""

import logging
import os
import threading

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready

from api_contracts.names import ROUTES
from worker import log_context  # noqa: F401  (connects the structured-log signals)
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Celery:
    q = settings.queue
    app = Celery(
        "backdrop",
        broker=settings.redis.url,
        backend=settings.redis.url,
        include=["worker.tasks"],  # imported when the worker starts, not here
    )
    transport = {
        # Redis redelivers unacknowledged tasks after this many seconds: above
        # the hard time limit, or long optimizations would run twice at once.
        "visibility_timeout": q.visibility_timeout,
    }
    app.conf.update(
        # JSON only: a pickle message could run code in the worker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
        task_default_queue="cpu",
        # Acknowledge after the task ran, so a worker killed mid-task (deploy,
        # OOM) hands it back; one message at a time, so a GPU worker does not
        # hoard jobs it cannot start.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        # A task past the soft limit fails with TIMEOUT and cleans up; the hard
        # limit kills a task that ignores it. Both need the prefork pool.
        task_soft_time_limit=q.soft_time_limit,
        task_time_limit=q.hard_time_limit,
        # Results (and job records) outlive the longest job.
        result_expires=q.result_expires,
        # Events for Flower and Prometheus exporters.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        # Model loading in worker_process_init takes longer than the 4 s default.
        worker_proc_alive_timeout=120,
        # Each child holds TensorFlow; recycling it would reload the models.
        worker_max_tasks_per_child=None,
    )
    return app


app = create_app(get_settings())


@worker_process_init.connect
def _prepare_child(**_: object) -> None:
    """In each forked child: TensorFlow for the device, then the models."""
    from worker.tensorflow_setup import configure_tensorflow

    settings = get_settings()
    devices = configure_tensorflow()
    log.info("worker child %s: devices %s", os.getpid(), devices or "CPU")
    if settings.queue.warm_models:
        from worker.tasks import warm_models

        warm_models()


@worker_init.connect
def _prepare_storage(**_: object) -> None:
    """Once, in the parent: buckets exist and intermediates expire. No TensorFlow here."""
    from worker.storage import StorageUnavailable
    from worker.tasks import make_services

    svc = make_services()  # not the cached one: the parent must not keep it across fork
    s = svc.settings.storage
    try:
        svc.store.ensure_buckets([s.input_bucket, s.styles_bucket, s.work_bucket, s.results_bucket])
        svc.store.expire_after(s.work_bucket, s.work_expiry_days)
    except StorageUnavailable as exc:
        log.error("object store not ready at start (tasks will retry): %s", exc)


@worker_ready.connect
def _start_sweep(sender: object = None, **_: object) -> None:
    """In the parent: a daemon thread restarts jobs whose tasks vanished."""
    threading.Thread(target=_sweep_forever, name="backdrop-sweep", daemon=True).start()


def _sweep_forever() -> None:
    from api_contracts.names import QUEUE_GPU, TASK_SEGMENT
    from worker.jobs import sweep_stale_jobs
    from worker.tasks import make_services

    q = get_settings().queue
    svc = make_services()  # the parent's own clients
    stop = threading.Event()
    while not stop.wait(q.sweep_interval_seconds):
        try:
            for job_id in sweep_stale_jobs(svc, q.stale_after_seconds, q.max_requeues):
                log.warning("job %s was stale: restarting it", job_id)
                app.send_task(TASK_SEGMENT, args=[job_id], queue=QUEUE_GPU)
        except Exception as exc:  # Redis down: try again next round
            log.warning("sweep skipped: %s", exc)
