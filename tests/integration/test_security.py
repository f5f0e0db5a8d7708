"""The worker accepts JSON only: a pickle message is refused, never executed."""

import time

import pytest
from celery import Celery

from api_contracts.models import JobRequest, JobState, StyleRef
from api_contracts.names import QUEUE_GPU, TASK_SEGMENT
from jobstore.records import JobRecord
from tests.services import REDIS_URL

pytestmark = pytest.mark.integration


def test_pickle_message_is_refused(client, redis_client, worker) -> None:
    job_id = "pickle-probe"
    record = JobRecord(redis_client, job_id)
    record.create(JobRequest(photo_key="uploads/none", styles=[StyleRef(key="uploads/none")]))
    hostile = Celery("hostile", broker=REDIS_URL, set_as_current=False)
    hostile.conf.update(task_serializer="pickle", accept_content=["pickle"])
    hostile.send_task(TASK_SEGMENT, args=[job_id], queue=QUEUE_GPU, serializer="pickle")
    deadline = time.monotonic() + 20
    log = ""
    while time.monotonic() < deadline:
        log = worker.log_path.read_text()
        if "ContentDisallowed" in log or "Refusing to deserialize" in log:
            break
        time.sleep(0.2)
    assert "ContentDisallowed" in log or "Refusing to deserialize" in log
    # Had it run, the missing photo would have failed the job.
    assert record.status().state == JobState.QUEUED
