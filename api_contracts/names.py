"""The wire contract: task and queue names. Producers send tasks by these names."""

TASK_SEGMENT = "backdrop.segment"
TASK_STYLIZE = "backdrop.stylize"
TASK_COMPOSITE = "backdrop.composite"
TASK_FINALIZE = "backdrop.finalize"
TASK_NOTIFY = "backdrop.notify"

# GPU work (DeepLab, style optimization) and CPU work (compositing, bookkeeping)
# go to separate queues so GPU workers never wait behind CPU tasks.
QUEUE_GPU = "gpu"
QUEUE_CPU = "cpu"
# Webhook deliveries wait on other people's servers: their own queue.
QUEUE_NOTIFY = "notify"

ROUTES = {
    TASK_SEGMENT: QUEUE_GPU,
    TASK_STYLIZE: QUEUE_GPU,
    TASK_COMPOSITE: QUEUE_CPU,
    TASK_FINALIZE: QUEUE_CPU,
    TASK_NOTIFY: QUEUE_NOTIFY,
}

# Redis keys of the job record (see api_contracts.records).
JOB_KEY_PREFIX = "backdrop:job:"
# The service's own settings that producers must follow (the record TTL),
# written by each worker at start.
SERVICE_KEY = "backdrop:service"
# Every job's end, as a Redis stream entry `job.finished` with the final status.
EVENTS_STREAM = "backdrop:events"
