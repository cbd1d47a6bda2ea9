"""The job runner against the real sandbox API over HTTP, with a real SQLite file."""

from __future__ import annotations

import asyncio
import base64
import itertools
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.core.models import ImageRequest, JobStatus, Origin, Stage
from bot.core.runner import MSG_INTERRUPTED, MSG_NO_IMAGE, MSG_UNAVAILABLE, RunnerConfig
from sandbox.server import Sandbox
from tests.helpers import FAST_RUNNER, RecordingSink, runner_settled, running_runner, wait_until

ORIGIN = Origin(source="test", guild_id=1, channel_id=2, user_id=3)


def database_bytes(db_path: Path) -> bytes:
    """Every byte SQLite wrote for this database, write-ahead log included."""
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


async def job_row(db_path: Path, job_id: int) -> dict[str, object]:
    store = await Store.open(db_path)
    try:
        job = await store.get_job(job_id)
    finally:
        await store.close()
    assert job is not None
    return vars(job)


async def has_status(db_path: Path, job_id: int, status: JobStatus) -> bool:
    return (await job_row(db_path, job_id))["status"] is status


async def test_happy_path_delivers_the_sandbox_image(sandbox: Sandbox, db_path: Path) -> None:
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("a red fox", "16:9"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.images is not None and outcome.reason is None
    task_id = next(iter(sandbox.tasks))
    assert outcome.images[0].data == sandbox.image_bytes(task_id)
    submits = [r for r in sandbox.requests if r.method == "POST"]
    assert len(submits) == 1
    assert submits[0].json == {"prompt": "a red fox", "model": "grok-imagine-image", "aspectRatio": "16:9"}
    assert submits[0].authorization == "Bearer sandbox-key"
    stages = [stage for job_id, stage in sink.progress_log if job_id == job.id]
    assert stages[:2] == [Stage.QUEUED, Stage.SUBMITTED]
    row = await job_row(db_path, job.id)
    assert row["status"] is JobStatus.DELIVERED
    assert row["task_id"] == task_id
    assert row["trace_id"] == sandbox.tasks[task_id].trace_id
    assert row["delivered_at"] is not None and row["submitted_at"] is not None
    assert row["interaction_token"] is None
    assert isinstance(row["poll_count"], int) and row["poll_count"] >= 1


@pytest.mark.parametrize("shape", ["urls", "objects", "data", "b64", "nested"])
async def test_every_result_shape_is_delivered(sandbox: Sandbox, db_path: Path, shape: str) -> None:
    sandbox.config.result_shape = shape  # type: ignore[assignment]
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        await runner.enqueue(ImageRequest("shapes", "1:1"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    task_id = next(iter(sandbox.tasks))
    assert outcome.images is not None
    assert outcome.images[0].data == sandbox.image_bytes(task_id)


async def test_completed_without_image_is_a_failure(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.force_next("completed", result={"images": [], "note": "nothing here"})
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("empty"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.text == MSG_NO_IMAGE
    assert (await job_row(db_path, job.id))["status"] is JobStatus.FAILED


async def test_failed_task_reports_the_sanitized_api_reason(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.force_next("failed", error_message="Content\x00 flagged by\n policy @everyone", error_code=400)
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("bad"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.reason is not None
    assert "Content flagged by policy" in outcome.reason
    assert "\x00" not in outcome.reason and "\n" not in outcome.reason
    assert "@everyone" not in outcome.reason  # defused with a zero-width space
    row = await job_row(db_path, job.id)
    assert row["status"] is JobStatus.FAILED and row["error"] == outcome.stored


@pytest.mark.parametrize(("status", "word"), [("cancelled", "cancelled"), ("timeout", "timed out")])
async def test_cancelled_and_timeout_statuses(
    sandbox: Sandbox, db_path: Path, status: str, word: str
) -> None:
    sandbox.force_next(status)  # type: ignore[arg-type]
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        await runner.enqueue(ImageRequest("x"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.reason is not None and word in outcome.reason


async def test_job_time_limit_gives_up_with_a_clear_message(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.force_next(never_finish=True)
    sink = RecordingSink()
    config = RunnerConfig(**{**vars(FAST_RUNNER), "time_limit": 0.6})
    async with running_runner(db_path, sandbox.base_url or "", sink, config=config) as runner:
        job = await runner.enqueue(ImageRequest("slow"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.reason is not None and "stopped waiting" in outcome.reason
    assert (await job_row(db_path, job.id))["status"] is JobStatus.TIMED_OUT


async def test_rate_limits_and_server_errors_on_polls_are_survived(sandbox: Sandbox, db_path: Path) -> None:
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("stubborn"), ORIGIN)
        # Once the submit is through, every poll meets trouble first: two 503s, then a 429.
        await wait_until(lambda: sandbox.tasks, "the submit to reach the sandbox", interval=0.005)
        sandbox.fail_next_polls(2, status=503)
        sandbox.fail_next_polls(1, status=500)
        sandbox.rate_limit_next(1, retry_after=1)
        [outcome] = await sink.wait_for(1, timeout=15)
    assert outcome.images is not None
    polls = [r for r in sandbox.requests if r.path == "/xai/tasks"]
    assert len(polls) >= 5
    # The poll after the 429 came no sooner than Retry-After said.
    statuses = [r for r in sandbox.requests if r.path == "/xai/tasks"]
    assert (await job_row(db_path, job.id))["status"] is JobStatus.DELIVERED
    gaps = [b.at - a.at for a, b in itertools.pairwise(statuses)]
    assert max(gaps) >= 0.95


async def test_submit_rate_limit_is_retried_without_double_tasks(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.rate_limit_next(1, retry_after=0)
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        await runner.enqueue(ImageRequest("again"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.images is not None
    assert sandbox.task_count == 1


async def test_bad_key_fails_without_leaking_it(
    sandbox: Sandbox, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    secret = "sk-very-secret-key-123456"
    async with running_runner(db_path, sandbox.base_url or "", sink, api_key=secret) as runner:
        job = await runner.enqueue(ImageRequest("x"), ORIGIN)
        [outcome] = await sink.wait_for(1)
    assert outcome.text == MSG_UNAVAILABLE
    assert secret not in caplog.text
    assert any("refused the key" in r.getMessage() for r in caplog.records)
    assert secret.encode() not in await asyncio.to_thread(database_bytes, db_path)
    assert (await job_row(db_path, job.id))["status"] is JobStatus.FAILED


async def test_restart_while_running_delivers_exactly_once(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.config.duration = 1.0
    first = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", first) as runner:
        job = await runner.enqueue(ImageRequest("survivor"), ORIGIN)
        await wait_until(lambda: has_status(db_path, job.id, JobStatus.RUNNING), "the job to be running")
    assert first.outcomes == []
    second = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", second) as again:
        await second.wait_for(1)
        await runner_settled(again)  # a duplicate would be under way or delivered by now
    assert len(second.outcomes) == 1 and second.outcomes[0].images is not None
    assert sandbox.task_count == 1
    # A third start finds nothing left to do.
    third = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", third) as last:
        await runner_settled(last)  # its start-up resumed what the store left, if anything
    assert third.outcomes == []


async def test_submit_cut_off_by_restart_is_not_resubmitted(sandbox: Sandbox, db_path: Path) -> None:
    sandbox.config.submit_delay = 5.0
    first = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", first) as runner:
        job = await runner.enqueue(ImageRequest("cut off"), ORIGIN)
        await wait_until(lambda: sandbox.tasks, "the submit to reach the sandbox")
    assert (await job_row(db_path, job.id))["status"] is JobStatus.SUBMITTING
    sandbox.config.submit_delay = 0.0
    second = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", second) as again:
        [outcome] = await second.wait_for(1)
        await runner_settled(again)  # a second submit would be under way or made by now
    assert outcome.text == MSG_INTERRUPTED
    assert sandbox.task_count == 1  # the API saw exactly one submit: nothing was sent again
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1
    assert (await job_row(db_path, job.id))["status"] is JobStatus.UNKNOWN


async def test_queued_job_that_never_left_is_submitted_after_restart(sandbox: Sandbox, db_path: Path) -> None:
    store = await Store.open(db_path)
    job = await store.create_job(ImageRequest("left behind"), ORIGIN, 0.0)
    await store.close()
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink):
        [outcome] = await sink.wait_for(1)
    assert outcome.job.id == job.id and outcome.images is not None


async def test_inline_base64_result_survives_restart_before_delivery(sandbox: Sandbox, db_path: Path) -> None:
    png = sandbox.image_bytes  # any real PNG will do; make one through a finished task first
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        await runner.enqueue(ImageRequest("source"), ORIGIN)
        await sink.wait_for(1)
    data = png(next(iter(sandbox.tasks)))
    store = await Store.open(db_path)
    job = await store.create_job(ImageRequest("inline"), ORIGIN, 0.0)
    await store.mark_running(job.id, "t-inline", 0.0, 0.0)
    await store.mark_completed(
        job.id, ["data:image/png;base64," + base64.b64encode(data).decode()], 1.0, None
    )
    await store.close()
    again = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", again):
        [outcome] = await again.wait_for(1)
    assert outcome.images is not None and outcome.images[0].data == data


async def test_a_job_cancelled_while_waiting_to_resubmit_is_never_sent(
    sandbox: Sandbox, db_path: Path
) -> None:
    sandbox.rate_limit_next(1, retry_after=1)
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("never mind"), ORIGIN)
        await wait_until(  # the 429 came back; the job waits to be sent again
            lambda: sandbox.requests and has_status(db_path, job.id, JobStatus.QUEUED),
            "the rate-limited job to wait, queued, to be sent again",
        )
        assert await runner.cancel(job, by_user=3, refund=True)
        await runner_settled(runner)  # the waiting submit ends once the Retry-After has passed
    assert sandbox.task_count == 0
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1
    assert (await job_row(db_path, job.id))["status"] is JobStatus.CANCELLED
