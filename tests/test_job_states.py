"""The job's states and transitions are written down once (`bot.core.runner.job_states`): every move
the table does not allow is an error, in the table and in the runner; and the one retry helper."""

from __future__ import annotations

import itertools
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest

from bot.core.models import FINAL_JOB_STATUSES, ImageRequest, Job, JobStatus, Origin
from bot.core.runner import IllegalTransition
from bot.core.runner.job_states import TRANSITIONS, advance, allowed
from bot.core.runner.retrying import doubling, growing, retry
from sandbox.server import Sandbox
from tests.helpers import RecordingSink, running_runner

ENDINGS = {JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED, JobStatus.UNKNOWN}


def test_the_table_names_every_state() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_final_states_lead_nowhere_and_every_unfinished_state_can_end() -> None:
    for status in FINAL_JOB_STATUSES:
        assert TRANSITIONS[status] == frozenset()
    for status in (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING):
        assert TRANSITIONS[status] >= ENDINGS
    assert TRANSITIONS[JobStatus.COMPLETED] == {JobStatus.DELIVERED}  # a made image is never "failed"


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobStatus, JobStatus)))
def test_a_move_outside_the_table_raises(source: JobStatus, target: JobStatus) -> None:
    job = _job(source)
    if allowed(source, target):
        advance(job, target)
        assert job.status is target
    else:
        with pytest.raises(IllegalTransition, match=f"{source.value} → {target.value}"):
            advance(job, target)
        assert job.status is source


async def test_the_runner_refuses_to_end_a_delivered_job(sandbox: Sandbox, db_path: Path) -> None:
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        await runner.enqueue(ImageRequest("a fox"), Origin(source="test"))
        [outcome] = await sink.wait_for(1)
    job = outcome.job  # the delivery's own copy: recorded before the stop returned
    assert job.status is JobStatus.DELIVERED  # every move on the way was in the table
    with pytest.raises(IllegalTransition):
        await runner.deliverer.end(job, JobStatus.FAILED, "late")
    assert await runner.cancel(job, by_user=1) is None  # a cancel of a finished job is no error
    assert len(sink.outcomes) == 1


def _job(status: JobStatus) -> Job:
    required = [f.name for f in fields(Job) if f.default is MISSING and f.default_factory is MISSING]
    values: dict[str, Any] = dict.fromkeys(required)
    values.update(id=1, source="test", status=status, prompt="p", created_at=0.0, poll_count=0, poll_errors=0)
    return Job(**values)


async def test_retry_gives_up_after_its_attempts_and_lets_other_errors_through() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    async def flaky() -> str:
        calls.append(1)
        raise OSError("busy")

    with pytest.raises(OSError):
        await retry(
            flaky, retry_on=lambda e: isinstance(e, OSError), attempts=4, delay=doubling(1, 3), pause=pause
        )
    assert len(calls) == 4 and pauses == [1, 2, 3]

    async def broken() -> str:
        calls.append(1)
        raise ValueError("not retried")

    calls.clear()
    with pytest.raises(ValueError):
        await retry(
            broken, retry_on=lambda e: isinstance(e, OSError), attempts=None, delay=growing(1), pause=pause
        )
    assert len(calls) == 1

    outcomes = iter([OSError(), OSError(), "done"])

    async def third_time() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    pauses.clear()
    assert (
        await retry(third_time, retry_on=lambda e: True, attempts=None, delay=growing(2), pause=pause)
        == "done"
    )
    assert pauses == [2, 4]
