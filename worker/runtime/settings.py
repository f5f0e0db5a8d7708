"""The one Settings object: environment variables BACKDROP_*, nested with __.

Example: BACKDROP_MODELS_DIR=../shared/models, BACKDROP_INTAKE__MAX_SIDE=384.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobstore.callback_rules import CallbackRules
from jobstore.connection import RedisConnection, StorageConnection
from jobstore.limits import JobLimits
from jobstore.production_secrets import refuse_weak_credentials, refuse_weak_webhook_secret
from worker.pipeline.intake import IntakeLimits
from worker.pipeline.paint_full import PaintParams
from worker.pipeline.stages import CompositeParams
from worker.pipeline.style_params import StyleParams


class IntakeSettings(BaseModel):
    max_bytes: int = Field(25 * 1024 * 1024, ge=1)
    # Checked from the header, before any pixel is decoded (decompression bombs).
    max_pixels: int = Field(50_000_000, ge=1)
    min_side: int = Field(32, ge=1)
    # Longest side of the working resolution: style optimization cost grows
    # with the pixel count, so this caps a job's cost.
    max_side: int = Field(512, ge=32, le=4096)


# Each backend's model where none is set: a plan names any other (keyed_model).
SEGMENTER_DEFAULTS = {"tflite": "deeplab-mnv2-tflite", "frozen_graph": "deeplab-mnv2-frozen"}


class SegmentationSettings(BaseModel):
    # tflite: the quantized DeepLab (CPU workers, tests); frozen_graph: the
    # model-zoo float graph (GPU workers).
    backend: Literal["tflite", "frozen_graph"] = "tflite"
    tflite_model: str = SEGMENTER_DEFAULTS["tflite"]
    frozen_graph_model: str = SEGMENTER_DEFAULTS["frozen_graph"]
    # Below this share of the photo the subject counts as absent.
    min_subject_fraction: float = Field(0.002, ge=0, le=1)
    threads: int = Field(0, ge=0)  # 0: let TensorFlow choose

    def model_name(self) -> str:
        return self.tflite_model if self.backend == "tflite" else self.frozen_graph_model

    def keyed_model(self) -> str | None:
        """The model a job's plan names: None for its backend's default, so
        the keys made before models were named still hold."""
        model = self.model_name()
        return None if model == SEGMENTER_DEFAULTS[self.backend] else model


Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]


class ComputeSettings(BaseModel):
    # GPU workers: mixed_float16 (with loss scaling) or mixed_bfloat16 runs the
    # VGG convolutions on tensor cores; xla fuses the optimization step.
    # Both work on a CPU too (slower there): float32 and no XLA by default.
    precision: Precision = "float32"
    xla: bool = False
    # L-BFGS as TensorFlow ops beside the objective (worker.pipeline.lbfgs_device),
    # the history on the device; the host sees the image every lbfgs_every
    # iterations (progress, cancel; at most every progress step). "host": the
    # NumPy version. The device version is faster on this CPU too (README).
    lbfgs: Literal["device", "host"] = "device"
    lbfgs_every: int = Field(10, ge=1, le=1000)
    # The strength dial: "calibrated" per output on its own photo and paintings
    # (worker.pipeline.strength_dial: a ladder of small optimizations, about a
    # second on a GPU, stored and reused), or "fixed", one curve for every
    # painting (uneven; for tests of the queue alone).
    dial: Literal["calibrated", "fixed"] = "calibrated"

    def lbfgs_round_trip(self, progress_every: int) -> int:
        """Iterations between host round trips; 0: L-BFGS on the host."""
        return 0 if self.lbfgs == "host" else max(1, min(self.lbfgs_every, progress_every))


RedisSettings = RedisConnection  # the workers' name for it


class StorageSettings(StorageConnection):
    """The connection (jobstore.connection) and what only workers use."""

    work_bucket: str = "backdrop-work"
    # Masks and stylized intermediates expire after this.
    work_expiry_days: int = Field(7, ge=1)
    # Results, previews and latest pictures too, this long after they were
    # written: they hold people's photographs, and a new seed or strength
    # makes a new object (kept for ever, a tenant could fill the store). A
    # result is served again only while it outlives the new job's record
    # (worker.service.artifacts.reusable_result); an older one is made anew.
    results_expiry_days: int = Field(30, ge=2, le=3650)


MAX_STYLE_BATCH = 8  # outputs one stylize task may optimize together


class QueueSettings(JobLimits):
    # max_styles and max_iterations: jobstore.limits.JobLimits, which the
    # gateway reads from the same variables and checks at submit.
    # A task past the soft limit fails with TIMEOUT; the hard limit kills it.
    soft_time_limit: int = Field(1800, ge=1)
    hard_time_limit: int = Field(1860, ge=2)
    # Redis redelivers an unacknowledged task after this: it must exceed the
    # hard limit, or a long task is run twice while the first is still going.
    visibility_timeout: int = Field(7200, ge=60)
    # Results and job records outlive the longest job by far.
    result_expires: int = Field(7 * 24 * 3600, ge=3600)
    storage_retries: int = Field(4, ge=0)
    retry_backoff_seconds: float = Field(1.0, gt=0)
    progress_every_percent: int = Field(5, ge=1, le=10)
    # Load DeepLab and VGG in each child at start, not on its first task.
    warm_models: bool = True
    # The sweep (a thread in each worker's parent) restarts jobs whose record has
    # not moved for stale_after_seconds: their tasks vanished (Redis restart,
    # lost message). It must exceed the longest silence of a live task: the
    # time of 5% of a job's iterations, or a segmentation.
    sweep_interval_seconds: float = Field(60.0, gt=0)
    stale_after_seconds: float = Field(900.0, gt=0)
    max_requeues: int = Field(2, ge=0, le=100)
    # A task delivered more often than this killed its worker each time (OOM,
    # segfault): it is dead-lettered and its output fails, instead of looping.
    max_deliveries: int = Field(3, ge=1, le=100)
    # Liveness (`backdrop worker --check`): unhealthy when a queue it serves has
    # had messages waiting this long while the worker took nothing.
    stalled_after_seconds: float = Field(120.0, gt=0)
    # Fair queues (jobstore.admission): jobs of each priority sent to the
    # workers at once; the rest wait in their tenants' turns. The window follows
    # the live capacity (jobstore.capacity): window_per_process jobs per GPU
    # process that workers register, about two keeping every GPU busy while a
    # tenant's backlog stays out of Celery's queue; the *_window settings are
    # the floor and the *_window_max the ceiling.
    interactive_window: int = Field(8, ge=1, le=10_000)
    batch_window: int = Field(4, ge=1, le=10_000)
    interactive_window_max: int = Field(1024, ge=1, le=100_000)
    batch_window_max: int = Field(512, ge=1, le=100_000)
    window_per_process: float = Field(2.0, gt=0, le=100)
    # On SIGTERM (Kubernetes removing a pod), running steps get this long to
    # finish; the rest are cancelled and handed back to their queue for another
    # worker (Celery's soft shutdown: `backdrop worker` maps SIGTERM to it).
    # Celery waits all of it whenever a step was running when SIGTERM came.
    # A pod's terminationGracePeriodSeconds must exceed it.
    soft_shutdown_seconds: float = Field(30.0, ge=0, le=3600)
    # Each worker renews its capacity this often; it expires after 3 beats.
    capacity_beat_seconds: float = Field(5.0, gt=0, le=300)
    # One stylize task optimizes up to this many outputs of the same photo and
    # plan as one batch (one VGG pass per step for all): about 2-3x per image
    # on a GPU; 1 on a CPU, where a batch gains little (README, Benchmarks).
    style_batch: int = Field(1, ge=1, le=MAX_STYLE_BATCH)
    # Test hook: steps hold at these named points (worker.service.fault_points).
    pause_at: list[str] = Field(default_factory=list)

    def progress_every(self, iterations: int) -> int:
        """Iterations between a stylize step's progress reports (and its
        cancel checks): progress_every_percent of the run, at least 1."""
        return max(1, iterations * self.progress_every_percent // 100)


class WebhookSettings(CallbackRules):
    # allow_hosts, allow_ports: jobstore.callback_rules (the gateway reads them too).
    # Signs every delivery (api_contracts.webhooks); tenants will get their own.
    secret: SecretStr | None = None
    # Waiting for the receiver's answer, and (at most this long) for its connection.
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # Deliveries run in each worker's parent, on threads of their own (never a
    # task slot): at most `concurrency` at once, `per_tenant` of one tenant's,
    # so a tenant whose receiver hangs holds up neither jobs nor other tenants.
    concurrency: int = Field(16, ge=1, le=256)
    per_tenant: int = Field(4, ge=1, le=256)
    # Attempt n (from 0) waits backoff_seconds * backoff_factor**n before the
    # next: 10 s, 30 s, 1.5 min, 4.5 min, 13.5 min, 40 min, 2 h (8 attempts, ~3 h).
    max_attempts: int = Field(8, ge=1, le=20)
    backoff_seconds: float = Field(10.0, gt=0)
    backoff_factor: float = Field(3.0, ge=1)

    def secret_value(self) -> str:
        if self.secret is None:
            raise ValueError("BACKDROP_WEBHOOKS__SECRET is not set: webhooks cannot be signed")
        return self.secret.get_secret_value()


class MetricsSettings(BaseModel):
    # Each worker's parent serves Prometheus metrics here (0: off); with
    # --gpus, the worker of the n-th GPU takes port + n.
    port: int = Field(9808, ge=0, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKDROP_", env_nested_delimiter="__", extra="ignore"
    )

    models_dir: Path = Path.home() / ".cache" / "backdrop" / "models"
    # Samples for the demo; when absent they are fetched from upstream.
    samples_dir: Path = Path.home() / ".cache" / "backdrop" / "samples"
    allow_download: bool = True
    intake: IntakeSettings = IntakeSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    style: StyleParams = StyleParams()
    composite: CompositeParams = CompositeParams()
    # quality high with output original: painting detail at full resolution
    # (BACKDROP_PAINT_FULL__MAX_SIDE, __ITERATIONS, __TILE_PIXELS, __TILE_OVERLAP).
    paint_full: PaintParams = PaintParams()
    compute: ComputeSettings = ComputeSettings()
    redis: RedisSettings = RedisSettings()
    storage: StorageSettings = StorageSettings()
    queue: QueueSettings = QueueSettings()
    webhooks: WebhookSettings = WebhookSettings()
    metrics: MetricsSettings = MetricsSettings()
    # development allows MinIO's default keys and a Redis without password;
    # production refuses to start with them.
    environment: Literal["development", "production"] = "development"

    def intake_limits(self, max_side: int | None = None) -> IntakeLimits:
        i = self.intake
        return IntakeLimits(i.max_bytes, i.max_pixels, i.min_side, max_side or i.max_side)

    @model_validator(mode="after")
    def _limits_are_consistent(self) -> "Settings":
        q = self.queue
        if not q.soft_time_limit < q.hard_time_limit < q.visibility_timeout:
            raise ValueError("need soft_time_limit < hard_time_limit < visibility_timeout")
        if self.storage.results_expiry_days * 86400 < q.result_expires + 2 * 86400:
            # A fresh result would vanish while a job record still names it.
            raise ValueError("need storage.results_expiry_days >= the record TTL "
                             "(queue.result_expires) plus 2 days")  # fmt: skip
        if self.environment == "production":
            _refuse_development_credentials(self)
            if q.pause_at:
                raise ValueError("queue.pause_at is a test hook, refused in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests build their own Settings instead."""
    return Settings()


def _refuse_development_credentials(settings: Settings) -> None:
    refuse_weak_credentials(settings.redis, settings.storage)
    refuse_weak_webhook_secret(settings.webhooks.secret)
