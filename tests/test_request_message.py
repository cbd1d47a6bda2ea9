"""A request of several images in one message: the real bot, the fake Discord, the sandbox, SQLite.

The images are shown in the request's order 1..N whatever order they finish in, each as it finishes
(an edit that keeps the attachments already there and adds its own), and the message says which are
still rendering and which failed, and why."""

from __future__ import annotations

from typing import Any

from bot.core.models import ImageRequest, JobStatus
from tests.bot_harness import World, wait_for_job
from tests.request_helpers import channel_origin, launch_request


def request_posts(world: World) -> list[Any]:
    return world.bot_posts()


def files_in(world: World, message_id: int) -> list[str]:
    return [name for name, _ in world.fake.message_files(message_id)]


async def test_four_images_fill_one_message_in_their_order_as_they_finish(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    # Finishing order 4, 2, 3, 1: the message still shows 1, 2, 3, 4.
    for seconds in (1.6, 0.6, 1.0, 0.2):
        sandbox.force_next(duration=seconds)
    async with world.bot() as bot:
        jobs = await launch_request(
            bot.runner, bot.store, ImageRequest("four foxes"), channel_origin(fake), 4
        )
        first = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, jobs[3].id)
        [post] = request_posts(world)
        message_id = int(fake.messages[first.result_message_id or 0]["id"])
        # The first image to finish is shown at once, the others said to be rendering.
        content = fake.messages[message_id]["content"]
        assert "1 of 4" in content and "still rendering" in content
        assert files_in(world, message_id) == [f"imagine-{jobs[3].id}-1.png"]
        for job in jobs:
            await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job.id)
        await world.settle(bot)
        finished = [await bot.store.jobs.get(job.id) for job in jobs]

    assert len(request_posts(world)) == 1  # one message, edited; never a second post
    assert post.json["content"]
    assert files_in(world, message_id) == [f"imagine-{job.id}-1.png" for job in jobs]
    # Each image's bytes are the sandbox's image of that job's task.
    for job, (_, data) in zip(finished, fake.message_files(message_id), strict=True):
        assert job is not None and job.result_message_id == message_id
        assert data == sandbox.image_bytes(job.task_id or "")
    content = fake.messages[message_id]["content"]
    assert "4 of 4" in content and "still rendering" not in content
    ends = {job.request_index: job.finished_at for job in finished if job is not None}
    assert ends[4] < ends[2] < ends[3] < ends[1]  # they did finish out of order


async def test_a_failed_image_is_named_with_its_reason_and_the_others_still_come(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    sandbox.force_next(duration=0.2)
    sandbox.force_next("failed", error_message="the moon was in the way", duration=0.1)
    sandbox.force_next(duration=0.4)
    async with world.bot() as bot:
        jobs = await launch_request(
            bot.runner, bot.store, ImageRequest("three owls"), channel_origin(fake), 3
        )
        ended = [await wait_for_job(bot, lambda j: j.delivered_at is not None, job.id) for job in jobs]
        await world.settle(bot)
    assert len(request_posts(world)) == 1
    # The images are in one message; the failure is told there too, not in a message of its own.
    assert ended[0].result_message_id == ended[2].result_message_id is not None
    assert ended[1].status is JobStatus.FAILED
    message = fake.messages[ended[0].result_message_id]
    assert [a["filename"] for a in message["attachments"]] == [
        f"imagine-{jobs[0].id}-1.png",
        f"imagine-{jobs[2].id}-1.png",
    ]
    assert "**2** ❌ failed:" in message["content"] and "the moon was in the way" in message["content"]
    assert "2 of 3" in message["content"]
