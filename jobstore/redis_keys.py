"""Every Redis key Backdrop writes, in one place: a prefix each, so an operator
reading `redis-cli --scan` knows what each key is and who owns it."""

import hashlib

# The job record (jobstore.records): hash `backdrop:job:<id>`.
JOB_KEY_PREFIX = "backdrop:job:"
# The service's own settings that producers must follow (the record TTL),
# written by each worker at start.
SERVICE_KEY = "backdrop:service"
# Every job's end, as a stream entry `job.finished` with the final status.
EVENTS_STREAM = "backdrop:events"
# Tenants (jobstore.tenants), their API keys (sha256 only) and their
# admission and fair queues (jobstore.admission).
TENANT_PREFIX = "backdrop:tenant:"
APIKEY_PREFIX = "backdrop:apikey:"
TENANTS_SET = "backdrop:tenants"
FAIR_PREFIX = "backdrop:fair:"
# The processes each live worker node serves job steps with (jobstore.capacity).
CAPACITY_PREFIX = "backdrop:capacity:"
# Which tenant may use which upload, and how many it made this hour
# (jobstore.uploads).
UPLOAD_OWNER_PREFIX = "backdrop:upload:"
UPLOAD_RATE_PREFIX = "backdrop:uploadrate:"
# Worker-side bookkeeping (worker.service): poison messages set aside, how often
# a task was delivered, which queues each node consumes, the sweep's memory.
DEAD_LETTERS = "backdrop:deadletters"
LIVENESS_PREFIX = "backdrop:liveness:"
SWEEP_MISSING = "backdrop:sweep:missing"
# Webhook deliveries (worker.service.webhook_deliveries): one hash per event
# with its frozen body, and per tenant a sorted set of when each is due.
WEBHOOK_PREFIX = "backdrop:webhook:"
WEBHOOKS_DUE_PREFIX = "backdrop:webhooks:due:"
WEBHOOKS_TENANTS = "backdrop:webhooks:tenants"


def producer_lock(object_key: str) -> str:
    """Held by the one task making a shared intermediate (worker.service.artifacts)."""
    return f"backdrop:lock:{object_key}"


def deliveries(task_id: str) -> str:
    return "backdrop:deliveries:" + hashlib.sha256(task_id.encode()).hexdigest()[:32]


def pause_point(point: str, job_id: str) -> str:
    """A fault test's pause (worker.service.fault_points)."""
    return f"backdrop:pause:{point}:{job_id}"
