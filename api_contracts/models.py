"""Versioned request, acceptance and status models of a stylization job.

Invalid requests are refused here, by the model, before anything is queued.
"""

import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api_contracts.errors import ErrorCode

CONTRACT_VERSION = 1
# The contract's own ceiling; a deployment may set a lower one (Settings.max_styles).
MAX_STYLES = 32
MAX_ITERATIONS = 5000
VOC_SUBJECTS = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,511}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
# A DNS name: labels of letters, digits and '-' (and '_', seen in real names).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def check_object_key(key: str) -> str:
    """Object keys are relative, without '..' or empty segments: never a path escape."""
    if not _KEY.fullmatch(key) or ".." in key.split("/") or "//" in key or key.endswith("/"):
        raise ValueError(f"invalid object key {key!r}")
    return key


ObjectKey = Annotated[str, Field(min_length=1, max_length=512)]


def check_callback_url(url: str) -> str:
    """An http(s) address with a host name or IP literal and a valid port:
    refused at submit, instead of failing every delivery attempt for hours.
    (Whether the address may be called is the worker's check, on every attempt.)"""
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url):
        raise ValueError("callback_url must be an http(s) address")
    if not sendable_url(url):  # every delivery would fail, each tried again for hours
        raise ValueError("callback_url must be printable ASCII (percent-encode a path, "
                         "punycode a name)")  # fmt: skip
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port  # port: ValueError past 65535 or not a number
    except ValueError as exc:
        raise ValueError(f"callback_url is malformed: {exc}") from None
    if not host or port == 0 or not (_HOST.fullmatch(host) or is_ip_literal(host)):
        raise ValueError("callback_url needs a host name or IP address (and a port 1-65535)")
    return url


def sendable_url(url: str) -> bool:
    """Printable ASCII with no space: what an HTTP request line can carry
    (http.client refuses the rest, or fails to encode it)."""
    return all("!" <= c <= "~" for c in url)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class StyleRef(BaseModel):
    """One painting: an uploaded object (`key`, in the input bucket) or a
    catalog style (`name`, registered with `backdrop styles add`).

    Each style gives its own result, except that styles with the same
    `blend_group` are blended into one result, mixed by their `weight`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: ObjectKey | None = None
    name: str | None = None
    weight: float = Field(1.0, gt=0, le=1000, allow_inf_nan=False)
    blend_group: int | None = Field(None, ge=0, le=MAX_STYLES)

    @field_validator("key")
    @classmethod
    def _valid_key(cls, key: str | None) -> str | None:
        return None if key is None else check_object_key(key)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.fullmatch(name):
            raise ValueError("style names are 1-64 of a-z, 0-9, '_' and '-'")
        return name

    @model_validator(mode="after")
    def _one_source(self) -> "StyleRef":
        if (self.key is None) == (self.name is None):
            raise ValueError("give exactly one of 'key' or 'name'")
        return self


class JobOptions(BaseModel):
    """The one schema of a job's tunable options: the service's JobRequest, the
    flags of `backdrop run` and `backdrop submit`, their help and limits all
    come from these fields. Unset (None) means the service's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int | None = Field(
        None, ge=32, le=2048, description="longest side of the working size, px"
    )
    output: Literal["working", "original"] = Field(
        "working",
        description="working: the result at the working size; original: at the uploaded "
        "photo's own size (after EXIF orientation), composited edge-aware",
    )
    quality: Literal["preview", "standard", "high"] = Field(
        "standard",
        description="preview: the feed-forward result alone (about a second); "
        "standard: the optimization; high: twice the default iterations (an explicit "
        "`iterations` is used as given)",
    )
    iterations: int | None = Field(None, ge=1, le=MAX_ITERATIONS, description="optimizer steps")
    content_weight: float | None = Field(
        None, ge=0, le=1e6, allow_inf_nan=False, description="how much the photo's shapes count"
    )
    style_weight: float | None = Field(
        None,
        ge=0,
        le=1e8,
        allow_inf_nan=False,
        description="how much the painting's texture counts",
    )
    tv_weight: float | None = Field(
        None, ge=0, le=1e6, allow_inf_nan=False, description="smoothness (total variation)"
    )
    learning_rate: float | None = Field(
        None, gt=0, le=1000, allow_inf_nan=False,
        description="Adam's rate; L-BFGS's first step, in pixel levels",
    )  # fmt: skip
    optimizer: Literal["adam", "lbfgs", "lbfgs_adam"] | None = Field(
        None,
        description="the optimizer; lbfgs_adam: L-BFGS for the first 200 iterations of each "
        "level, then Adam at rate 5 (learning_rate stays L-BFGS's first step); with no level "
        "longer than 200 iterations it is lbfgs",
    )
    init: Literal["content", "noise", "preview", "palette"] | None = Field(
        None,
        description="where it starts from: the photo, noise, the instant preview, or the "
        "photo recoloured to the painting's palette",
    )
    stop_below: float | None = Field(
        None, ge=0.0, lt=1.0, allow_inf_nan=False,
        description="stop once the loss falls by less than this fraction over 10 iterations "
        "(0: run every iteration)",
    )  # fmt: skip
    levels: int | None = Field(None, ge=1, le=4, description="coarse-to-fine scales")
    style_scale: float | None = Field(
        None, gt=0.1, le=4.0, allow_inf_nan=False,
        description="size of the painting relative to the photo: larger gives larger strokes",
    )  # fmt: skip
    strength: float | None = Field(
        None, ge=0.0, le=1.0, allow_inf_nan=False,
        description="0 gives the photo back, 1 the strongest painting that keeps its shapes",
    )  # fmt: skip
    preserve_colors: bool | None = Field(None, description="keep the photo's colours")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="the same seed, the same image")


# dual: the subject in `subject_style`, the background in each of `styles`.
Mode = Literal["background", "subject", "portrait", "full", "dual"]
# interactive: a person waits (served first); batch: back-catalogue work, served
# when no interactive step waits. Within each, tenants take turns.
Priority = Literal["interactive", "batch"]


class JobRequest(BaseModel):
    """What a producer submits. Portrait mode takes no styles; the others 1..MAX_STYLES."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    photo_key: ObjectKey
    styles: list[StyleRef] = Field(default_factory=list, max_length=MAX_STYLES)
    mode: Mode = "background"
    # Mode dual only: the painting of the subject (the background takes `styles`).
    subject_style: StyleRef | None = None
    subjects: list[str] = Field(default_factory=lambda: ["person"], min_length=1, max_length=20)
    options: JobOptions = JobOptions()
    priority: Priority = "interactive"
    # Called with the final status when the job ends (signed: api_contracts.webhooks).
    callback_url: str | None = Field(None, max_length=2048)

    @field_validator("callback_url")
    @classmethod
    def _web_address(cls, url: str | None) -> str | None:
        return None if url is None else check_callback_url(url)

    @field_validator("photo_key")
    @classmethod
    def _valid_photo_key(cls, key: str) -> str:
        return check_object_key(key)

    @field_validator("subjects")
    @classmethod
    def _known_subjects(cls, subjects: list[str]) -> list[str]:
        cleaned = [s.strip().lower() for s in subjects]
        unknown = [s for s in cleaned if s not in VOC_SUBJECTS]
        if unknown:
            raise ValueError(f"unknown subject class(es) {unknown}")
        return cleaned

    @model_validator(mode="after")
    def _styles_fit_mode(self) -> "JobRequest":
        if self.mode == "portrait" and self.styles:
            raise ValueError("portrait mode takes no styles")
        if self.mode != "portrait" and not self.styles:
            raise ValueError(f"mode {self.mode!r} needs at least one style")
        if (self.mode == "dual") != (self.subject_style is not None):
            raise ValueError("a subject_style goes with mode 'dual', and mode 'dual' needs one")
        return self

    def outputs(self) -> list[list[int]]:
        """Which styles (by index) make each result: one per style, or per blend group."""
        groups: dict[object, list[int]] = {}
        for i, style in enumerate(self.styles):
            tag = ("group", style.blend_group) if style.blend_group is not None else ("own", i)
            groups.setdefault(tag, []).append(i)
        return list(groups.values()) or [[]]  # portrait: one result, no style

    @property
    def output_count(self) -> int:
        return len(self.outputs())


class JobAccepted(BaseModel):
    job_id: str
    outputs: int


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.PARTIAL, JobState.FAILED, JobState.CANCELLED}
)


class JobError(BaseModel):
    code: ErrorCode
    message: str


class StyleStatus(BaseModel):
    index: int
    state: JobState = JobState.QUEUED
    progress: int = Field(0, ge=0, le=100)
    result_key: str | None = None
    result_url: str | None = None
    # The instant preview, composited with the same mask, while the optimization runs.
    preview_key: str | None = None
    preview_url: str | None = None
    # The latest intermediate (about 25, 50, 75% of the iterations), then the result.
    latest_key: str | None = None
    latest_url: str | None = None
    error: JobError | None = None


class DeliveryOutcome(StrEnum):
    """How one webhook attempt ended."""

    DELIVERED = "delivered"  # a 2xx answer
    HTTP_ERROR = "http_error"  # another answer (retried only on 5xx, 408 and 429)
    TIMEOUT = "timeout"  # no connection or no answer in time
    CONNECT_ERROR = "connect_error"  # refused, reset, TLS or protocol failure
    REFUSED = "refused"  # the address may not be called (never retried)


class WebhookAttempt(BaseModel):
    at: datetime
    attempt: int | None = None  # 1 for the first
    # None only in attempts recorded before outcomes were.
    outcome: DeliveryOutcome | None = None
    status: int | None = None  # the receiver's HTTP status, if it answered
    error: str | None = None  # the detail, for people


class WebhookStatus(BaseModel):
    state: Literal["pending", "delivered", "failed", "refused"]
    event_id: str | None = None
    attempts: list[WebhookAttempt] = Field(default_factory=list)


class JobStatus(BaseModel):
    job_id: str
    state: JobState
    styles: list[StyleStatus]
    error: JobError | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None  # when a worker first took the job
    updated_at: datetime | None = None
    finished_at: datetime | None = None  # when the job ended, whichever way
    tenant: str | None = None  # whose job (the API key's tenant)
    priority: Priority = "interactive"
    # The completion webhook, when the request had a callback_url.
    webhook: "WebhookStatus | None" = None
    # Counters a user or a benchmark can check: how often each stage really ran.
    counters: dict[str, int] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> int:
        return round(sum(s.progress for s in self.styles) / max(1, len(self.styles)))
