"""What every step needs besides its arguments, and the ways a step stops early."""

from dataclasses import dataclass, field

from redis import Redis

from api_contracts.errors import BackdropError, ErrorCode
from jobstore.records import JobRecord
from worker.runtime.settings import Settings
from worker.service.webhook_dns import Resolver
from worker.storage import ObjectStore


class Cancelled(Exception):
    """The job was cancelled while this step ran."""


class JobOver(Exception):
    """The job already ended (e.g. given up by the sweep): nothing left to do."""


@dataclass
class Services:
    """One per worker process: settings and the clients made from them."""

    settings: Settings
    store: ObjectStore
    redis: Redis
    # Webhook DNS lookups: counts those still running in this process.
    resolver: Resolver = field(init=False)

    def __post_init__(self) -> None:
        self.resolver = Resolver.for_settings(self.settings.webhooks)

    def record(self, job_id: str) -> JobRecord:
        return JobRecord(self.redis, job_id)


def make_services(settings: Settings) -> Services:
    """Fresh Redis and S3 clients (minio-py: one client per process)."""
    from worker.storage.minio_store import MinioStore

    s = settings.storage
    if s.access_key is None or s.secret_key is None:
        raise BackdropError(
            ErrorCode.INTERNAL, "BACKDROP_STORAGE__ACCESS_KEY/SECRET_KEY are not set"
        )
    store = MinioStore(
        s.endpoint, s.access_key.get_secret_value(), s.secret_key.get_secret_value(),
        secure=s.secure, region=s.region, public_endpoint=s.public_endpoint,
    )  # fmt: skip
    return Services(settings, store, Redis.from_url(settings.redis.url))


def open_record(services: Services, job_id: str) -> JobRecord:
    """The record of a job that is still going: a step of a cancelled or
    ended job does nothing."""
    record = services.record(job_id)
    if record.cancelled():
        raise Cancelled
    if record.finished():
        raise JobOver
    return record
