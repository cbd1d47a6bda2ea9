"""API trouble while polling: Retry-After, capped backoff, an outage across many jobs, requests made
during an outage, and a 400 on a poll. The real runner against the real sandbox server, real SQLite.

Most tests run on a ScaledClock shared by the runner and the sandbox, so that a 15-second outage takes
three real seconds; every figure below is in the clock's (virtual) seconds, which is what the
sandbox's request log records (`RecordedRequest.clock`)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from bot.core.clock import ScaledClock
from bot.core.models import ImageRequest, JobStatus, Origin, Stage
from bot.core.policy.quotas import Member
from bot.core.runner import MSG_OUTAGE, PROBE_TASK_ID
from bot.core.schedule import PollSchedule
from sandbox.server import RecordedRequest, Sandbox, SandboxConfig, build_arg_parser, config_from_args
from tests.helpers import FAST_RUNNER, RecordingSink, runner_settled, running_runner, wait_until

ORIGIN = Origin(source="test", guild_id=1, channel_id=2, user_id=3)
FACTOR = 5.0


@pytest.fixture
async def scaled() -> AsyncIterator[tuple[Sandbox, ScaledClock]]:
    clock = ScaledClock(FACTOR)
    server = Sandbox(SandboxConfig(duration=4.0, seed=11, clock=clock.time))
    await server.start()
    try:
        yield server, clock
    finally:
        await server.stop()


def task_polls(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.requests if r.path == "/xai/tasks"]


async def wait_until_submitted(sandbox: Sandbox, count: int = 1) -> None:
    await wait_until(lambda: sandbox.task_count >= count, f"{count} submit(s) at the sandbox", interval=0.01)


async def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    def read() -> list[tuple[object, ...]]:
        with sqlite3.connect(db_path) as conn:
            return conn.execute(sql).fetchall()

    return await asyncio.to_thread(read)


async def test_retry_after_is_honoured_as_given_not_stretched(
    scaled: tuple[Sandbox, ScaledClock], db_path: Path
) -> None:
    sandbox, clock = scaled
    # Bounds like the defaults: the old code doubled a 1 s floor per error (2, 4, 8 s) past Retry-After.
    schedule = PollSchedule(min_interval=1.0, max_interval=15.0, first_poll=1.0)
    sink = RecordingSink()
    base_url = sandbox.base_url or ""
    async with running_runner(db_path, base_url, sink, schedule=schedule, clock=clock) as runner:
        await runner.enqueue(ImageRequest("patience"), ORIGIN)
        await wait_until_submitted(sandbox)
        sandbox.rate_limit_next(4, retry_after=1)
        sandbox.rate_limit_next(1, retry_after=3)
        [outcome] = await sink.wait_for(1, timeout=15)
    assert outcome.images is not None
    polls = task_polls(sandbox)
    told = [1, 1, 1, 1, 3]
    gaps = [b.clock - a.clock for a, b in itertools.pairwise(polls)][: len(told)]
    assert len(gaps) == len(told)
    for retry_after, gap in zip(told, gaps, strict=True):
        # Retry-After plus at most a tenth of it as jitter, and a little for the round trip.
        assert retry_after <= gap <= retry_after * 1.1 + 0.35, (told, gaps)


async def test_poll_errors_back_off_but_never_beyond_the_max_interval(
    scaled: tuple[Sandbox, ScaledClock], db_path: Path
) -> None:
    sandbox, clock = scaled
    schedule = PollSchedule(min_interval=0.5, max_interval=3.0, first_poll=0.5)
    # A high outage threshold: this test is about one job's own backoff.
    config = replace(FAST_RUNNER, outage_failures=1000)
    sink = RecordingSink()
    async with running_runner(
        db_path, sandbox.base_url or "", sink, schedule=schedule, config=config, clock=clock
    ) as runner:
        await runner.enqueue(ImageRequest("stubborn"), ORIGIN)
        await wait_until_submitted(sandbox)
        sandbox.fail_next_polls(7, status=502)
        [outcome] = await sink.wait_for(1, timeout=15)
    assert outcome.images is not None
    gaps = [b.clock - a.clock for a, b in itertools.pairwise(task_polls(sandbox))][:7]
    assert len(gaps) == 7
    assert max(gaps) <= 3.0 + 0.35, gaps  # capped at POLL_MAX_INTERVAL
    assert gaps[-1] >= 1.5, gaps  # grown to the cap (equal jitter: between half of it and all)
    assert gaps[0] <= 1.0 + 0.35, gaps  # and started small


async def test_an_outage_is_probed_once_and_every_job_finishes_after_it(
    scaled: tuple[Sandbox, ScaledClock], db_path: Path
) -> None:
    sandbox, clock = scaled
    max_interval = 3.0
    schedule = PollSchedule(min_interval=0.5, max_interval=max_interval, first_poll=0.5)
    # A time limit shorter than the outage: time the service was down must not count toward it.
    config = replace(FAST_RUNNER, time_limit=8.0)
    jobs = 20
    sink = RecordingSink()
    async with running_runner(
        db_path, sandbox.base_url or "", sink, schedule=schedule, config=config, clock=clock
    ) as runner:
        for n in range(jobs):
            await runner.enqueue(ImageRequest(f"job {n}"), ORIGIN)
        await wait_until_submitted(sandbox, jobs)
        start, end = sandbox.start_outage(15.0, after=0.5)
        outcomes = await sink.wait_for(jobs, timeout=20)
    assert all(o.images is not None for o in outcomes), [o.reason for o in outcomes]
    during = [r for r in sandbox.requests if start <= r.clock < end]
    # The polls already on their way when the outage began (at most POLL_CONCURRENCY: here all 20
    # jobs' first polls fall due together) meet it at once; after them, one request a second at most.
    assert len(during) <= config.concurrency + (end - start), len(during)
    settled = [r for r in during if r.clock >= start + 2.0]
    assert len(settled) <= end - start - 2.0, len(settled)
    probes = [r for r in during if r.query.get("taskId") == PROBE_TASK_ID]
    assert len(probes) >= 3  # the outage was probed...
    assert len(settled) == len([r for r in settled if r in probes])  # ...instead of polling each job
    delivered = await rows(db_path, "SELECT status, delivered_at FROM jobs")
    assert {status for status, _ in delivered} == {JobStatus.DELIVERED.value}
    # Every task finished during the outage; each is delivered within POLL_MAX_INTERVAL of its end.
    latest = max(float(at) for _, at in delivered if isinstance(at, float))
    assert latest - end <= max_interval + 1.0, latest - end


async def test_a_request_made_during_an_outage_waits_and_is_sent_once_it_ends(
    scaled: tuple[Sandbox, ScaledClock], db_path: Path
) -> None:
    sandbox, clock = scaled
    schedule = PollSchedule(min_interval=0.5, max_interval=2.0, first_poll=0.5)
    sink = RecordingSink()
    async with running_runner(
        db_path, sandbox.base_url or "", sink, schedule=schedule, clock=clock
    ) as runner:
        start, end = sandbox.start_outage(6.0)
        first = await runner.enqueue(ImageRequest("during"), ORIGIN)
        await wait_until(
            lambda: (first.id, Stage.SERVICE_DOWN) in sink.progress_log,
            "the first job to be told the service is down",
            timeout=5,
            interval=0.01,
        )
        later = await runner.enqueue(ImageRequest("later"), ORIGIN)
        outcomes = await sink.wait_for(2, timeout=10)
    assert all(o.images is not None for o in outcomes)
    assert (later.id, Stage.SERVICE_DOWN) in sink.progress_log
    submits = [r for r in sandbox.requests if r.method == "POST"]
    # The first request's few tries found the outage; the later one waited without trying.
    assert len([r for r in submits if start <= r.clock < end]) <= 3
    assert sandbox.task_count == 2


async def test_a_request_queued_past_the_outage_limit_ends_and_is_refunded(
    scaled: tuple[Sandbox, ScaledClock], db_path: Path
) -> None:
    sandbox, clock = scaled
    config = replace(FAST_RUNNER, outage_queue_limit=3.0)
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink, config=config, clock=clock) as runner:
        sandbox.start_outage(60.0)
        decision, jobs = await runner.admit(
            ImageRequest("in vain"), ORIGIN, Member(guild_id=1, user_id=3), default_quota=10
        )
        job = jobs[0] if jobs else None
        assert decision.allowed and job is not None
        await runner.launch(job, None)
        [outcome] = await sink.wait_for(1, timeout=10)
    assert outcome.text == MSG_OUTAGE
    assert (job.id, Stage.SERVICE_DOWN) in sink.progress_log
    assert sandbox.task_count == 0
    [(status,)] = await rows(db_path, f"SELECT status FROM jobs WHERE id = {job.id}")
    assert status == JobStatus.FAILED.value
    [(outcome_col, counted)] = await rows(db_path, "SELECT outcome, counted FROM usage")
    assert (outcome_col, counted) == ("failed", 0)  # not counted against the member's quota


async def test_a_400_answer_to_a_poll_ends_the_job_with_a_clear_message(
    sandbox: Sandbox, db_path: Path
) -> None:
    sandbox.config.duration = 2.0
    sink = RecordingSink()
    async with running_runner(db_path, sandbox.base_url or "", sink) as runner:
        job = await runner.enqueue(ImageRequest("refused later"), ORIGIN)
        await wait_until_submitted(sandbox)
        sandbox.fail_next_polls(1, status=400)
        [outcome] = await sink.wait_for(1, timeout=5)
        polls = len(task_polls(sandbox))
        await runner_settled(runner)  # the job ended in the store; a poll would be under way or made
    assert outcome.reason is not None and "refused to report on this request" in outcome.reason
    assert "Injected failure" in outcome.reason  # the API's message, sanitized
    assert len(task_polls(sandbox)) == polls  # the job is no longer polled
    [(status,)] = await rows(db_path, f"SELECT status FROM jobs WHERE id = {job.id}")
    assert status == JobStatus.FAILED.value


async def test_the_sandbox_simulates_an_outage_from_its_command_line() -> None:
    args = build_arg_parser().parse_args(["--outage-after", "0.2", "--outage-for", "0.4"])
    server = Sandbox(config_from_args(args))
    base_url = await server.start()
    headers = {"Authorization": "Bearer sandbox-key"}
    url = f"{base_url}/xai/tasks?taskId=nope"
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            statuses = []
            for pause in (0.0, 0.3, 0.5):
                await asyncio.sleep(pause)  # time passing is what is tested: into the outage, then out
                async with session.get(url) as response:
                    statuses.append(response.status)
    finally:
        await server.stop()
    assert statuses == [404, 503, 404]
    assert "default: no outage" in build_arg_parser().format_help()
