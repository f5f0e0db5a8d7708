"""Error codes: the one vocabulary for everything that can go wrong with a job."""

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_IMAGE = "INVALID_IMAGE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    INPUT_NOT_FOUND = "INPUT_NOT_FOUND"
    STYLE_NOT_FOUND = "STYLE_NOT_FOUND"
    NO_SUBJECT_FOUND = "NO_SUBJECT_FOUND"
    INVALID_REQUEST = "INVALID_REQUEST"
    NOT_FOUND = "NOT_FOUND"  # no job (or result) with that id
    UNAUTHORIZED = "UNAUTHORIZED"  # no API key, or one nobody issued
    FORBIDDEN = "FORBIDDEN"  # a revoked API key
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"  # a tenant's limit: try again after retry_after
    CONFLICT = "CONFLICT"  # e.g. a tenant name that is taken
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    SERVICE_BUSY = "SERVICE_BUSY"  # the gateway is at capacity: try again after retry_after
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"


class BackdropError(Exception):
    """A failure a user can act on: a code for machines, a message for people."""

    def __init__(self, code: ErrorCode, message: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # Seconds after which the same call may succeed (quotas: HTTP Retry-After).
        self.retry_after = retry_after
