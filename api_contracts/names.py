"""The wire contract: task and queue names. Producers send tasks by these names."""

TASK_SEGMENT = "backdrop.segment"
TASK_STYLIZE = "backdrop.stylize"
# Several outputs of one job in one optimization (worker setting queue.style_batch).
TASK_STYLIZE_BATCH = "backdrop.stylize_batch"
TASK_COMPOSITE = "backdrop.composite"
TASK_FINALIZE = "backdrop.finalize"
TASK_NOTIFY = "backdrop.notify"

# GPU work (DeepLab, style optimization) and CPU work (compositing, bookkeeping)
# go to separate queues so GPU workers never wait behind CPU tasks.
QUEUE_GPU = "gpu"
QUEUE_CPU = "cpu"
# Batch jobs' GPU steps: workers take from it only when `gpu` is empty
# (worker.service.safe_transport orders the queues).
QUEUE_GPU_BATCH = "gpu-batch"
PRIORITY_QUEUES = {"interactive": QUEUE_GPU, "batch": QUEUE_GPU_BATCH}
# Webhook deliveries wait on other people's servers: their own queue.
QUEUE_NOTIFY = "notify"

ROUTES = {
    TASK_SEGMENT: QUEUE_GPU,
    TASK_STYLIZE: QUEUE_GPU,
    TASK_STYLIZE_BATCH: QUEUE_GPU,
    TASK_COMPOSITE: QUEUE_CPU,
    TASK_FINALIZE: QUEUE_CPU,
    TASK_NOTIFY: QUEUE_NOTIFY,
}

# Redis keys of the job record (see jobstore.records).
JOB_KEY_PREFIX = "backdrop:job:"
# The service's own settings that producers must follow (the record TTL),
# written by each worker at start.
SERVICE_KEY = "backdrop:service"
# Every job's end, as a Redis stream entry `job.finished` with the final status.
EVENTS_STREAM = "backdrop:events"
# Tenants (jobstore.tenants) and their admission and fair queues
# (jobstore.admission).
TENANT_PREFIX = "backdrop:tenant:"
APIKEY_PREFIX = "backdrop:apikey:"
TENANTS_SET = "backdrop:tenants"
FAIR_PREFIX = "backdrop:fair:"
# The tenant of jobs sent by a Python client without an API key (in-house code
# that holds Redis credentials anyway); limited only if an operator adds it.
DEFAULT_TENANT = "default"
