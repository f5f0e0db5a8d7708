"""What a worker does around its tasks: load models in each forked child (never
TensorFlow in the parent), make buckets, publish the service's record TTL, and
run the sweep. Imported by the tasks module, so `celery -A` and `backdrop
worker` both get it."""

import logging
import os
import socket
import threading
import time

from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready

from jobstore.admission import pump
from jobstore.records import now, publish_service_settings
from jobstore.trusted_client import first_step_sender
from worker.runtime.settings import get_settings
from worker.service import liveness, log_context, metrics  # noqa: F401  (liveness, log_context connect signals)
from worker.service.context import make_services

log = logging.getLogger(__name__)


@worker_process_init.connect
def _prepare_child(**_: object) -> None:
    """In each forked child: TensorFlow for the device, then the models."""
    from worker.runtime.tensorflow_setup import configure_tensorflow

    settings = get_settings()
    devices = configure_tensorflow()
    log.info("worker child %s: devices %s", os.getpid(), devices or "CPU")
    if settings.queue.warm_models:
        from worker.runtime.model_cache import warm_models

        warm_models(settings)


@worker_process_shutdown.connect
def _child_exited(pid: int | None = None, **_: object) -> None:
    metrics.child_exited(pid or os.getpid())


@worker_init.connect
def _prepare_storage(**_: object) -> None:
    """Once, in the parent: buckets exist, intermediates expire, producers
    learn the record TTL. No TensorFlow here."""
    from worker.storage import StorageUnavailable

    settings = get_settings()
    if metrics.serve(settings.metrics.port):
        log.info("metrics on port %d", settings.metrics.port)
    svc = make_services(settings)  # not the children's: the parent must not share it over fork
    s = settings.storage
    try:
        publish_service_settings(svc.redis, settings.queue.result_expires, settings.intake.max_side)
    except Exception as exc:
        log.error("redis not ready at start: %s", exc)
    try:
        svc.store.ensure_buckets([s.input_bucket, s.styles_bucket, s.work_bucket, s.results_bucket])
        svc.store.expire_after(s.work_bucket, s.work_expiry_days)
        svc.store.expire_after(s.results_bucket, s.results_expiry_days)
        # A day past the last tenant's claim (jobstore.uploads): a re-upload of
        # the same bytes rewrites the object, so a live claim has its object.
        svc.store.expire_after(s.input_bucket, s.upload_ttl_days + 1, prefix="uploads/")
    except StorageUnavailable as exc:
        log.error("object store not ready at start (tasks will retry): %s", exc)


@worker_ready.connect
def _start_threads(sender: object = None, **_: object) -> None:
    """In the parent: a daemon thread restarts jobs whose tasks vanished,
    another turns job.finished events into webhook deliveries and, as a job's
    end frees its place, sends the next held job (the fair queues' pump); a
    third makes the webhook attempts on a bounded pool of threads of its own,
    so a hanging receiver never holds a task slot."""
    from worker.service.capacity_beat import beat_forever, gpu_processes
    from worker.service.notify import attempt
    from worker.service.webhook_pool import deliver_forever

    threading.Thread(target=_sweep_forever, name="backdrop-sweep", daemon=True).start()
    # The parent's pid too: two workers on one host may share a Celery node name.
    node = f"{getattr(sender, 'hostname', '') or socket.gethostname()}:{os.getpid()}"
    threading.Thread(target=beat_forever, args=(node, gpu_processes(sender)),
                     name="backdrop-capacity", daemon=True).start()  # fmt: skip
    threading.Thread(target=_dispatch_forever, name="backdrop-notify", daemon=True).start()
    args = (make_services(get_settings()), attempt)
    threading.Thread(target=deliver_forever, args=args, name="backdrop-webhooks",
                     daemon=True).start()  # fmt: skip


def _dispatch_forever() -> None:
    from worker.service.celery_app import app
    from worker.service.end_counter import count_ends
    from worker.service.notify import dispatch_events

    svc = make_services(get_settings())
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    send_first = first_step_sender(app, svc.redis)
    while True:
        try:  # each on its own: a failing one must not stop the other
            dispatch_events(svc, consumer)  # waits up to a second for an end
            count_ends(svc.redis, consumer)
        except Exception as exc:  # Redis down: try again in a moment
            log.warning("webhook dispatch paused: %.300s", exc)
            time.sleep(1)
        try:
            pump(svc.redis, send_first, now())
        except Exception as exc:
            log.warning("fair-queue pump paused: %.300s", exc)
            time.sleep(1)


def _sweep_forever() -> None:
    from worker.service.celery_app import app
    from worker.service.orphans import give_back_orphans
    from worker.service.sweep import release_ended_jobs, restart_job, sweep_stale_jobs

    settings = get_settings()
    q = settings.queue
    svc = make_services(settings)  # the parent's own clients
    stop = threading.Event()
    while not stop.wait(q.sweep_interval_seconds):
        try:
            for job_id in sweep_stale_jobs(svc, q.stale_after_seconds, q.max_requeues, restart_job):
                log.warning("job %.200s was stale: restarted", job_id)
            release_ended_jobs(svc.redis)
            for tag in give_back_orphans(app, svc.redis, q.stale_after_seconds):
                log.warning("message %.100s was taken by no live worker: given back", tag)
        except Exception as exc:  # Redis down: try again next round
            log.warning("sweep skipped: %.300s", exc)
