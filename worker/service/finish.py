"""How outputs and jobs end. Every way a job ends (success, partial, failure,
cancel, give-up by the sweep) reaches JobRecord.finish, the one function that
stamps the end, sets the record's expiry and emits the `job.finished` event."""

import logging

from api_contracts.errors import ErrorCode
from api_contracts.models import TERMINAL_STATES, JobError, JobState
from jobstore.records import JobRecord

log = logging.getLogger(__name__)

GIVE_UP_MESSAGE = "the job's tasks were lost repeatedly"


def complete_output(record: JobRecord, index: int, outputs: int, result_key: str) -> bool:
    """One output succeeded. True when it was the last of the plan's `outputs`."""
    record.advance(JobState.SUCCEEDED, output=index, progress=100, result_key=result_key)
    return record.mark_done(index, outputs)


def fail_output(record: JobRecord, index: int, outputs: int, code: ErrorCode, message: str) -> bool:
    """One output fails; the others go on. True when it was the last open output."""
    record.fail_output(index, code, message)
    return record.mark_done(index, outputs)


def past_gpu(record: JobRecord, outputs: list[int], task_id: str) -> bool:
    """These outputs' GPU steps are over (a picture stored or a failure
    recorded) in the generation `task_id` names: the job leaves the GPUs'
    in-flight window once all of its outputs have, so its composites on the
    CPU pool hold no GPU's turn. True when it left. Best effort: if this
    fails, the job leaves the window at its end, as before."""
    generation = record.generation_of(task_id)
    if generation is None:
        return False
    try:
        return record.leave_window(outputs, generation)
    except Exception as exc:  # a corrupt record, Redis away, a time limit landing here
        log.warning("job %.200s stays in the window until it ends: %.300s", record.job_id, exc)
        return False


def fail_job(record: JobRecord, code: ErrorCode, message: str) -> None:
    """A failure before the fan-out: the job and every output fail with it. A
    cancel seen by a step (the flag is set a moment before the client ends the
    job) ends it CANCELLED, whichever of the two gets there first."""
    state = JobState.CANCELLED if code == ErrorCode.CANCELLED else JobState.FAILED
    record.finish(state, JobError(code=code, message=message), state)


def conclude(record: JobRecord) -> JobState:
    """Every output has ended: the job's state follows from theirs. A finalize
    that comes early (a duplicate or forged message) changes nothing."""
    status = record.status()
    states = [s.state for s in status.styles]
    if any(s not in TERMINAL_STATES for s in states):
        return status.state
    ok = states.count(JobState.SUCCEEDED)
    error = next((s.error for s in status.styles if s.error), None)
    if ok == len(states):
        record.finish(JobState.SUCCEEDED)
    elif ok:
        record.finish(JobState.PARTIAL)
    elif record.cancelled():
        record.finish(JobState.CANCELLED, JobError(code=ErrorCode.CANCELLED, message="cancelled"))
    else:
        record.finish(
            JobState.FAILED, error or JobError(code=ErrorCode.INTERNAL, message="no output")
        )
    return record.status().state


def give_up(record: JobRecord) -> None:
    """The sweep restarted the job too often: its open outputs fail, and the
    job ends PARTIAL when some output succeeded."""
    status = record.status()
    ok = any(s.state == JobState.SUCCEEDED for s in status.styles)
    error = JobError(code=ErrorCode.INTERNAL, message=GIVE_UP_MESSAGE)
    record.finish(JobState.PARTIAL if ok else JobState.FAILED, error, JobState.FAILED)
