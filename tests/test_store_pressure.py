"""Writes after a submit survive a busy or full database; a delivery is recorded or reconciled, never
posted twice; a sink that keeps failing ends; tokens leave the database files for good."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot.adapters.store import Store
from bot.core.models import ImageRequest, JobStatus, Origin
from sandbox.server import Sandbox
from tests.bot_harness import World, wait_for_job
from tests.helpers import (
    FAST_RUNNER,
    FailingSink,
    RecordingSink,
    runner_settled,
    running_runner,
    unhandled_errors,
    wait_until,
)

ORIGIN = Origin(source="test", guild_id=1, channel_id=2, user_id=3)
QUICK_RECORD = replace(FAST_RUNNER, record_backoff=0.02, record_backoff_max=0.1, tell_backoff=0.01)


async def submit_arrived(sandbox: Sandbox) -> None:
    await wait_until(
        lambda: any(r.method == "POST" for r in sandbox.requests),
        "the submit to reach the sandbox",
        timeout=5,
        interval=0.01,
    )


def count_calls(store: object, method: str) -> list[object]:
    """Note each call of one of a repository's methods (still carried out), to wait for the runner's tries."""
    calls: list[object] = []
    real = getattr(store, method)

    async def noted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return await real(*args, **kwargs)

    setattr(store, method, noted)
    return calls


def job_row(db_path: Path, job_id: int = 1) -> dict[str, object]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", [job_id]).fetchone()
    finally:
        conn.close()
    assert row is not None
    return dict(row)


async def set_pragma(store: Store, pragma: str) -> None:
    """A pragma on the store's own connection, on its writer thread (limits are per connection)."""
    await store._run(lambda: store._db.execute(f"PRAGMA {pragma}").fetchall())


async def test_the_task_id_waits_out_a_busy_database(
    sandbox: Sandbox, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.config.submit_delay = 0.3
    sink = RecordingSink()
    url = sandbox.base_url or ""
    with unhandled_errors() as unhandled:
        async with running_runner(db_path, url, sink, config=QUICK_RECORD, busy_timeout=0.1) as runner:
            await runner.enqueue(ImageRequest("a busy day"), ORIGIN)
            await submit_arrived(sandbox)
            # Another process takes the write lock while the submit is on its way, and holds it.
            tries = count_calls(runner.store.jobs, "mark_running")
            other = sqlite3.connect(db_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            # The answer came and the runner has tried (and failed) to record it several times.
            await wait_until(lambda: len(tries) >= 3, "three tries to record the task id", timeout=5)
            assert job_row(db_path)["status"] == "submitting"  # the answer came; the row cannot say so yet
            other.execute("ROLLBACK")
            other.close()
            [outcome] = await sink.wait_for(1)
    assert outcome.images is not None and outcome.images[0].data
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1
    assert "could not record its task id" in caplog.text
    row = job_row(db_path)
    assert row["status"] == "delivered" and row["task_id"] == next(iter(sandbox.tasks))
    assert unhandled.found == []


def add_fillers(db_path: Path, count: int = 300) -> None:
    """Small finished jobs of another source, appended to the jobs table by another connection."""
    other = sqlite3.connect(db_path, isolation_level=None)
    with other:
        other.executemany(
            "INSERT INTO jobs (source, status, prompt, created_at) VALUES ('filler', 'delivered', 'x', 0)",
            [()] * count,
        )
    other.close()


async def test_the_task_id_waits_out_a_full_database(
    sandbox: Sandbox, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.config.submit_delay = 0.3
    sink = RecordingSink()
    url = sandbox.base_url or ""
    await (await Store.open(db_path)).close()
    add_fillers(db_path)  # the table spans several pages: later rows are appended to a fresh one
    with unhandled_errors() as unhandled:
        async with running_runner(db_path, url, sink, config=QUICK_RECORD) as runner:
            job = await runner.enqueue(ImageRequest("a full disk"), ORIGIN)
            await submit_arrived(sandbox)
            # Rows appended after ours fill its page to the brim, and the database may not grow (the
            # limit cannot go below the current size, so 1 means "no page more"): recording the task
            # id makes the row longer, needs a new page and fails with SQLITE_FULL, as on a full disk.
            add_fillers(db_path)
            await set_pragma(runner.store, "max_page_count = 1")
            tries = count_calls(runner.store.jobs, "mark_running")
            await wait_until(
                lambda: "could not record its task id" in caplog.text, "the first refused write", timeout=5
            )
            assert "full" in caplog.text
            await wait_until(lambda: len(tries) >= 3, "three tries to record the task id", timeout=5)
            assert job_row(db_path, job.id)["status"] == "submitting"
            await set_pragma(runner.store, "max_page_count = 1073741823")  # space again
            [outcome] = await sink.wait_for(1)
    assert outcome.images is not None
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1
    assert job_row(db_path, job.id)["status"] == "delivered"
    assert unhandled.found == []


async def test_a_job_left_submitting_with_its_task_id_is_resumed_not_abandoned(
    sandbox: Sandbox, db_path: Path
) -> None:
    sandbox.config.duration = 1.0
    url = sandbox.base_url or ""
    async with running_runner(db_path, url, RecordingSink()) as runner:
        job = await runner.enqueue(ImageRequest("sent, then a crash"), ORIGIN)
        await wait_until(lambda: job_row(db_path)["status"] == "running", "the job to be running", timeout=5)
    # As a process that died after the API answered and the task id reached the row, before the status did.
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("UPDATE jobs SET status = 'submitting' WHERE id = ?", [job.id])
    conn.close()
    sink = RecordingSink()
    with unhandled_errors() as unhandled:
        async with running_runner(db_path, url, sink):
            [outcome] = await sink.wait_for(1)
    assert outcome.images is not None and outcome.reason is None
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1
    assert job_row(db_path)["status"] == "delivered"
    assert unhandled.found == []


async def test_a_sink_that_keeps_failing_ends_and_the_job_is_marked_undeliverable(
    sandbox: Sandbox, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FailingSink()
    config = replace(QUICK_RECORD, redeliver_delays=(0.2,))
    with unhandled_errors() as unhandled:
        async with running_runner(db_path, sandbox.base_url or "", sink, config=config) as runner:
            job = await runner.enqueue(ImageRequest("nowhere to go"), ORIGIN)
            await wait_until(
                lambda: job_row(db_path)["delivered_at"] is not None, "the job to be given up on", timeout=10
            )
    row = job_row(db_path)
    assert row["delivery"] == "undeliverable" and row["delivery_attempts"] == 2
    assert row["status"] == "completed"  # the image exists; it just never reached anyone
    assert sink.calls == 2 * config.tell_attempts  # the first round, and the one retry later
    lines = [r for r in caplog.records if r.name == "bot.core.runner" and r.levelname in ("WARNING", "ERROR")]
    assert [
        r.getMessage().split(";")[-1].strip() for r in lines if "could not be delivered" in r.getMessage()
    ] == [
        "trying again in 0.2 s",
        "gave up after 2 tries",
    ]
    assert all(r.exc_info is None for r in lines)  # no traceback spam
    assert unhandled.found == []
    # Given up: a restart does not try again.
    async with running_runner(db_path, sandbox.base_url or "", sink, config=config) as again:
        await runner_settled(again)  # its start-up resumed what the store left, if anything
    assert sink.calls == 2 * config.tell_attempts and job.id == 1
    store = await Store.open(db_path)
    try:
        assert await store.jobs.unfinished(1, 3) == []  # not shown in /queue as still on its way
    finally:
        await store.close()


async def test_an_outcome_that_could_not_be_told_is_told_on_a_later_try(
    sandbox: Sandbox, db_path: Path
) -> None:
    config = replace(QUICK_RECORD, redeliver_delays=(0.2, 0.2))
    sink = FailingSink(failures=config.tell_attempts)  # the first round fails, the second works
    async with running_runner(db_path, sandbox.base_url or "", sink, config=config) as runner:
        await runner.enqueue(ImageRequest("second time lucky"), ORIGIN)
        [outcome] = await sink.wait_for(1)
        await wait_until(
            lambda: job_row(db_path)["status"] == "delivered", "the job to be delivered", timeout=5
        )
    assert outcome.images is not None
    assert job_row(db_path)["delivery"] == "test"


async def test_a_delivery_the_database_refused_to_record_is_not_posted_again(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    fake = world.fake
    config = replace(QUICK_RECORD, record_attempts=3)
    async with world.bot(runner_config=config) as first:
        await set_pragma(first.store, "busy_timeout = 50")
        await fake.invoke_slash("imagine", {"prompt": "recorded or not"})
        post = await fake.wait_for_request(
            lambda r: r.method == "POST" and r.path.endswith("/messages") and bool(r.files)
        )
        # The image is on Discord; now another process holds the database until the runner gives up.
        other = sqlite3.connect(world.db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        await wait_until(
            lambda: "could not record its delivery after 3 attempts" in caplog.text,
            "the runner to give up recording the delivery",
            timeout=5,
        )
        other.execute("ROLLBACK")
        other.close()
        assert post.status == 200
    left = job_row(world.db_path)
    assert left["status"] == "completed" and left["delivered_at"] is None

    async with world.bot() as second:
        again = await wait_for_job(second, lambda j: j.status is JobStatus.DELIVERED)
        await world.settle(second)  # a second post would be under way or made by now
    assert len(world.bot_posts()) == 1  # found in the channel and recorded, not posted again
    [image_post] = [
        m for m in fake.messages.values() if m.get("attachments") and "recorded or not" in m["content"]
    ]
    assert again.result_message_id == int(image_post["id"]) and again.delivery == "channel"


async def test_interaction_tokens_leave_the_database_files(world: World) -> None:
    def on_disk() -> bytes:
        return b"".join(p.read_bytes() for p in world.db_path.parent.glob(world.db_path.name + "*"))

    fake = world.fake
    world.sandbox.config.duration = 0.5
    async with world.bot() as bot:
        interaction = await fake.invoke_slash("imagine", {"prompt": "a token to forget"})
        await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING)
        token = interaction.token.encode()
        assert token in on_disk()  # stored while needed, so this test can fail
        job = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED)
        assert job.interaction_token is None
    # The bot has closed: its last checkpoint emptied the write-ahead log into the database file.
    assert token not in on_disk()
