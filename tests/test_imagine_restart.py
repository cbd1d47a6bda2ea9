"""A restart loses nothing: jobs resume from the database and are delivered exactly once."""

from __future__ import annotations

import sqlite3

from bot.core.models import JobStatus
from bot.core.runner import MSG_INTERRUPTED
from tests.bot_harness import World, wait_for_job
from tests.helpers import wait_until


async def test_job_running_at_shutdown_is_delivered_once_by_the_next_bot(world: World) -> None:
    fake = world.fake
    world.sandbox.config.duration = 1.0
    async with world.bot() as first:
        interaction = await fake.invoke_slash(
            "imagine", {"prompt": "across a restart", "aspect_ratio": "3:2"}
        )
        await wait_for_job(first, lambda j: j.status is JobStatus.RUNNING)
    assert world.bot_posts() == []

    async with world.bot() as second:
        job = await wait_for_job(second, lambda j: j.status is JobStatus.DELIVERED)
        await world.settle(second)  # a duplicate would be under way or posted by now
    [post] = world.bot_posts()
    assert post.files[0].data == world.sandbox.image_bytes(next(iter(world.sandbox.tasks)))
    assert int(post.json["message_reference"]["message_id"]) == interaction.original_message_id
    assert world.sandbox.task_count == 1 and len(world.submits()) == 1
    assert job.result_message_id is not None

    async with world.bot() as third:
        await world.settle(third)  # its start-up resumed what the store left, if anything
    assert len(world.bot_posts()) == 1


async def test_submit_cut_off_by_shutdown_is_not_sent_again(world: World) -> None:
    fake = world.fake
    world.sandbox.config.submit_delay = 5.0
    async with world.bot() as first:
        interaction = await fake.invoke_slash("imagine", {"prompt": "in flight"})
        await wait_for_job(first, lambda j: j.status is JobStatus.SUBMITTING)
        await wait_until(lambda: world.sandbox.tasks, "the submit to reach the sandbox")
    world.sandbox.config.submit_delay = 0.0

    async with world.bot() as second:
        job = await wait_for_job(second, lambda j: j.delivered_at is not None)
    assert job.status is JobStatus.UNKNOWN
    assert len(world.submits()) == 1
    final = fake.messages[interaction.original_message_id or 0]["content"]
    assert MSG_INTERRUPTED.english().split(",")[0] in final


async def test_a_crash_between_posting_and_recording_does_not_post_twice(world: World) -> None:
    fake = world.fake
    async with world.bot() as first:
        await fake.invoke_slash("imagine", {"prompt": "posted once"})
        job = await wait_for_job(first, lambda j: j.status is JobStatus.DELIVERED)
    # As if the process died after Discord took the post but before the row said so.
    conn = sqlite3.connect(world.db_path)
    with conn:
        conn.execute(
            "UPDATE jobs SET status = 'completed', delivered_at = NULL, delivery = NULL,"
            " result_message_id = NULL WHERE id = ?",
            [job.id],
        )
    conn.close()
    async with world.bot() as second:
        again = await wait_for_job(second, lambda j: j.status is JobStatus.DELIVERED)
    # The restarted bot found its earlier post in the channel and recorded it instead of posting again.
    assert len(world.bot_posts()) == 1
    posted = [m for m in fake.messages.values() if "posted once" in m["content"] and m.get("attachments")]
    assert len(posted) == 1
    assert again.result_message_id == job.result_message_id and again.delivery == "channel"
