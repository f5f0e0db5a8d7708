"""The wire contract: task and queue names. Producers send tasks by these names."""

TASK_SEGMENT = "backdrop.segment"
TASK_STYLIZE = "backdrop.stylize"
# Several outputs of one job in one optimization (worker setting queue.style_batch).
TASK_STYLIZE_BATCH = "backdrop.stylize_batch"
TASK_COMPOSITE = "backdrop.composite"
TASK_FINALIZE = "backdrop.finalize"

# GPU work (DeepLab, style optimization) and CPU work (compositing, bookkeeping)
# go to separate queues so GPU workers never wait behind CPU tasks.
QUEUE_GPU = "gpu"
QUEUE_CPU = "cpu"
# Batch jobs' GPU steps: workers take from it only when `gpu` is empty
# (worker.service.safe_transport orders the queues).
QUEUE_GPU_BATCH = "gpu-batch"
PRIORITY_QUEUES = {"interactive": QUEUE_GPU, "batch": QUEUE_GPU_BATCH}
# Webhook deliveries were tasks on this queue; they now run on threads of each
# worker's parent (worker.service.webhook_pool), never in a task slot. The name
# stays so the gateway still shows messages left in it by an older version.
QUEUE_NOTIFY = "notify"

ROUTES = {
    TASK_SEGMENT: QUEUE_GPU,
    TASK_STYLIZE: QUEUE_GPU,
    TASK_STYLIZE_BATCH: QUEUE_GPU,
    TASK_COMPOSITE: QUEUE_CPU,
    TASK_FINALIZE: QUEUE_CPU,
}

# The tenant of jobs sent by a Python client without an API key (in-house code
# that holds Redis credentials anyway); limited only if an operator adds it.
DEFAULT_TENANT = "default"
