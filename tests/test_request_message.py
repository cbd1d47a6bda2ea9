"""A request of several images in one message: the real bot, the fake Discord, the sandbox, SQLite.

The images are shown in the request's order 1..N whatever order they finish in, each as it finishes
(an edit that keeps the attachments already there and adds its own), and the message says which are
still rendering and which failed, and why."""

from __future__ import annotations

import time
from typing import Any

from bot.core.models import ImageRequest, JobStatus
from tests.bot_harness import World, wait_for_job
from tests.helpers import wait_until
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
        for job in jobs:
            await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job.id, timeout=30)
        await world.settle(bot)
        finished = [await bot.store.jobs.get(job.id) for job in jobs]
    assert all(finished)
    ends = {job.request_index: job.finished_at or 0.0 for job in finished if job is not None}
    first = min(ends, key=lambda n: ends[n])
    # The first image to finish was shown at once, in a new message that said the others were rendering.
    [post] = request_posts(world)
    assert [f.filename for f in post.files] == [f"imagine-{jobs[first - 1].id}-1.png"]
    assert "1 of 4" in post.json["content"] and "still rendering" in post.json["content"]
    message_id = finished[0].result_message_id if finished[0] is not None else 0
    assert message_id is not None
    assert len(request_posts(world)) == 1  # one message, edited; never a second post
    # One process made every edit: after the first, it knew the message as its last edit had left it.
    looks = [r for r in fake.requests if r.method == "GET" and r.path.endswith(f"/messages/{message_id}")]
    assert len(looks) <= 1
    assert post.json["content"]
    assert files_in(world, message_id) == [f"imagine-{job.id}-1.png" for job in jobs]
    # Each image's bytes are the sandbox's image of that job's task.
    for job, (_, data) in zip(finished, fake.message_files(message_id), strict=True):
        assert job is not None and job.result_message_id == message_id
        assert data == sandbox.image_bytes(job.task_id or "")
    content = fake.messages[message_id]["content"]
    assert "4 of 4" in content and "still rendering" not in content
    assert sorted(ends, key=lambda n: ends[n]) != [1, 2, 3, 4]  # they did finish out of order


async def test_a_failed_image_is_named_with_its_reason_and_the_others_still_come(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    sandbox.force_next(duration=0.2)
    sandbox.force_next("failed", error_message="the moon was in the way", duration=0.1)
    sandbox.force_next(duration=0.4)
    async with world.bot() as bot:
        jobs = await launch_request(
            bot.runner, bot.store, ImageRequest("three owls"), channel_origin(fake), 3
        )
        ended = [
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job.id, timeout=30) for job in jobs
        ]
        await world.settle(bot)
    assert len(request_posts(world)) == 1
    # The images are in one message; the failure is told there too, not in a message of its own.
    [failed] = [job for job in ended if job.status is JobStatus.FAILED]
    made = [job for job in ended if job is not failed]
    [message_id] = {job.result_message_id for job in made}
    message = fake.messages[message_id or 0]
    assert [a["filename"] for a in message["attachments"]] == [f"imagine-{job.id}-1.png" for job in made]
    assert f"**{failed.request_index}** ❌ failed:" in message["content"]
    assert "the moon was in the way" in message["content"] and "2 of 3" in message["content"]


ROUTES = ("channel", "status", "ephemeral", "dm", "followup")


async def test_every_route_shows_a_request_in_one_message(world: World) -> None:
    """The channel, the status message (the channel refuses the bot), a message only the requester sees,
    a DM, and personal use's follow-up: on each, one message ends with the three images, in order."""
    fake = world.fake
    async with world.bot() as bot:
        store, now = bot.store, time.time()
        users = {route: fake.add_member(fake.guild_id, username=f"by-{route}") for route in ROUTES}
        await store.settings.update_policy(
            fake.guild_id, fake.owner_id, now, max_running=20, private_images=True
        )
        await store.styles.save_member_settings(fake.guild_id, users["ephemeral"], now, delivery="ephemeral")
        await store.styles.save_member_settings(fake.guild_id, users["dm"], now, delivery="dm")
        closed = fake.add_channel(fake.guild_id, "no-bot-posts")
        fake.forbid_channel_posts(closed)
        for route, user in users.items():
            where: dict[str, Any] = {}
            if route == "status":
                where["channel_id"] = closed
            if route == "followup":
                where = {"dm": True, "user_install": True}
            options = {"prompt": f"by {route}", "count": COUNT[route]}
            asked = await fake.invoke_slash("imagine", options, user_id=user, **where)
            await fake.wait_for_callback(asked)
        rows: dict[str, list[Any]] = {}
        for route, user in users.items():

            async def delivered(user: int = user, route: str = route) -> list[Any] | None:
                mine = await world_jobs(bot, user)
                done = len(mine) == COUNT[route] and all(j.delivered_at for j in mine)
                return mine if done else None

            rows[route] = await wait_until(delivered, f"the {route} request to be delivered", timeout=20)
        await world.settle(bot)
    for route, jobs in rows.items():
        assert {j.delivery for j in jobs} == {"dm" if route == "dm" else DELIVERY[route]}, route
        [message_id] = {j.result_message_id for j in jobs}
        names = [name for name, _ in fake.message_files(message_id or 0)]
        assert names == [f"imagine-{j.id}-1.png" for j in sorted(jobs, key=lambda j: j.request_index)], route
        count = COUNT[route]
        assert f"{count} of {count}" in fake.messages[message_id or 0]["content"], route
    # Each image was taken once (a refused post, the closed channel's, takes nothing): in the request's
    # new message, or in an edit of it.
    uploads = [
        f.filename
        for r in fake.requests
        if r.status == 200
        for f in r.files
        if f.filename.startswith("imagine-")
    ]
    assert len(uploads) == len(set(uploads)) == sum(COUNT.values())


# Personal use runs at most 2 images at a time.
COUNT = {"channel": 3, "status": 3, "ephemeral": 3, "dm": 3, "followup": 2}
DELIVERY = {
    "channel": "channel",
    "status": "interaction",
    "ephemeral": "ephemeral",
    "followup": "interaction",
}


async def world_jobs(bot: Any, user: int) -> list[Any]:
    jobs = []
    for job_id in range(1, 100):
        job = await bot.store.jobs.get(job_id)
        if job is None:
            break
        if job.user_id == user:
            jobs.append(job)
    return jobs


async def test_on_the_status_message_a_running_image_neither_hides_the_others_nor_cancel_drops_them(
    world: World,
) -> None:
    """The channel refuses the bot, so the request's message is the interaction's status message. Image 1
    keeps rendering (its progress must not overwrite the message), then its Cancel on that very message
    stops it: the images stay, and the message says it was cancelled."""
    fake, sandbox = world.fake, world.sandbox
    for _ in range(3):
        sandbox.force_next(never_finish=True)  # which task is which job is known once they are sent
    closed = fake.add_channel(fake.guild_id, "no-bot-posts")
    fake.forbid_channel_posts(closed)
    async with world.bot() as bot:
        await bot.store.settings.update_policy(fake.guild_id, fake.owner_id, time.time(), max_running=20)
        asked = await fake.invoke_slash("imagine", {"prompt": "status three", "count": 3}, channel_id=closed)
        await fake.wait_for_callback(asked)
        for job_id in (2, 3):
            running = await wait_for_job(bot, lambda j: j.task_id is not None, job_id, timeout=30)
            task = sandbox.tasks[running.task_id or ""]
            task.final_status, task.duration = "completed", sandbox.config.clock() - task.created_clock
        for job_id in (2, 3):
            await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, job_id, timeout=30)
        first = await wait_for_job(
            bot, lambda j: j.poll_count >= 3, 1, timeout=30
        )  # it went on polling, with progress
        status_id = asked.original_message_id or 0
        assert first.status is JobStatus.RUNNING
        assert files_in(world, status_id) == ["imagine-2-1.png", "imagine-3-1.png"]
        assert "**1** 🎨 still rendering" in fake.messages[status_id]["content"]

        click = await fake.invoke_component("imagine:cancel:1", status_id)
        await fake.wait_for_callback(click)
        await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED, 1, timeout=30)
        await world.settle(bot)
    message = fake.messages[status_id]
    assert files_in(world, status_id) == ["imagine-2-1.png", "imagine-3-1.png"]
    assert "**1** 🛑 cancelled" in message["content"] and "2 of 3" in message["content"]
    ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    assert "imagine:cancel:1" not in ids
