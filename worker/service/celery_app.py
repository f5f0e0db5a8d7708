"""The Celery app, configured from Settings, and nothing else: what a worker
does at start (models in each child, buckets, the sweep) is in
worker.service.lifecycle, which the tasks module loads.

Start a worker with `backdrop worker --queues gpu,gpu-batch,cpu` (or
`celery -A worker.service.celery_app worker -Q gpu,gpu-batch,cpu`).
"""

from celery import Celery

from api_contracts.names import ROUTES
from worker.runtime.settings import Settings, get_settings


def create_app(settings: Settings) -> Celery:
    q = settings.queue
    app = Celery(
        "backdrop",
        broker=settings.redis.url,
        backend=settings.redis.url,
        include=["worker.service.tasks"],  # imported when the worker starts, not here
    )
    transport = {
        # Redis redelivers unacknowledged tasks after this many seconds: above
        # the hard time limit, or long optimizations would run twice at once.
        "visibility_timeout": q.visibility_timeout,
    }
    app.conf.update(
        # Kombu's Redis transport, with undecodable bodies dead-lettered
        # instead of killing the worker (worker.service.safe_transport).
        broker_transport="worker.service.safe_transport:Transport",
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
        # A worker told to stop (SIGTERM, remapped to Celery's cold shutdown by
        # `backdrop worker`) lets running steps finish for this long, then
        # cancels them: their unacknowledged messages go back to the queue at
        # once, not after the visibility timeout, and another worker runs them.
        worker_soft_shutdown_timeout=q.soft_shutdown_seconds,
    )
    return app


app = create_app(get_settings())
