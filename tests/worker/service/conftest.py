"""The service's steps in this process, on the real Redis and a local store:
the fast tier's view of the queue (no worker process, no S3 server)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from api_contracts.models import JobRequest
from jobstore.records import JobRecord
from tests.conftest import MODELS, PHOTOS, STYLES
from worker.runtime.settings import Settings
from worker.service.context import Services
from worker.storage.local_store import LocalStore

STEPS_REDIS = "redis://127.0.0.1:6379/11"  # its own database: these tests flush it


def small_settings(**changes: object) -> Settings:
    settings = Settings(models_dir=MODELS, allow_download=False)
    settings.intake.max_side = 96
    settings.style = settings.style.model_copy(update={"iterations": 3})
    settings.compute.dial = "fixed"  # test_dial.py turns the calibrated dial on
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(STEPS_REDIS)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def svc(tmp_path: Path, redis: Redis) -> Services:
    store = LocalStore(tmp_path / "s3")
    s = small_settings()
    store.ensure_buckets([s.storage.input_bucket, s.storage.styles_bucket,
                          s.storage.work_bucket, s.storage.results_bucket])  # fmt: skip
    return Services(s, store, redis)


def upload(svc: Services, path: Path) -> str:
    data = path.read_bytes()
    key = f"uploads/{path.stem}"
    svc.store.put(svc.settings.storage.input_bucket, key, data, "application/octet-stream")
    return key


def new_job(svc: Services, job_id: str, **request: object) -> JobRecord:
    fields = {"photo_key": upload(svc, PHOTOS / "grace_hopper.png"),
              "styles": [{"key": upload(svc, STYLES / "starry.jpg")}], **request}  # fmt: skip
    record = svc.record(job_id)
    record.create(JobRequest.model_validate(fields))
    return record
