"""/queue, /history and Cancel with requests of several images: one entry per request, each image's state,
and Cancel stopping every image of the request not finished."""

from __future__ import annotations

from typing import Any

from bot.core.models import ImageRequest, JobStatus
from tests.bot_harness import World, wait_for_job
from tests.request_helpers import channel_origin, finish_task, launch_request, running_tasks


def custom_ids(components: list[dict[str, Any]]) -> list[str]:
    return [c["custom_id"] for row in components for c in row["components"] if "custom_id" in c]


async def test_queue_lists_a_request_once_and_its_cancel_stops_every_unfinished_image(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    for _ in range(4):
        sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        jobs = await launch_request(
            bot.runner, bot.store, ImageRequest("a slow request"), channel_origin(fake), 4
        )
        tasks = await running_tasks(bot, jobs)
        finish_task(sandbox, tasks[0])
        first = await wait_for_job(bot, lambda j: j.status is JobStatus.DELIVERED, jobs[0].id, timeout=30)
        for job in jobs[1:]:
            await wait_for_job(bot, lambda j: j.status is JobStatus.RUNNING, job.id, timeout=30)

        asked = await fake.invoke_slash("queue", {})
        answer = (await fake.wait_for_callback(asked)).json["data"]
        content = answer["content"]
        assert content.count(f"`#{jobs[0].id}`") == 1 and "4 images" in content
        assert "**1** ✅ done" in content and "**4** 🎨 rendering" in content
        assert custom_ids(answer["components"]) == [f"imagine:cancel:{jobs[1].id}"]

        click = await fake.invoke_component(f"imagine:cancel:{jobs[1].id}", asked.original_message_id or 0)
        told = (await fake.wait_for_callback(click)).json["data"]["content"]
        assert "Cancelled 3 images" in told
        for job in jobs[1:]:
            ended = await wait_for_job(bot, lambda j: j.status is JobStatus.CANCELLED, job.id, timeout=30)
            assert ended.cancelled_by == fake.user_id
        await world.settle(bot)

        message = fake.messages[first.result_message_id or 0]
        assert [a["filename"] for a in message["attachments"]] == [f"imagine-{jobs[0].id}-1.png"]
        assert message["content"].count("🛑 cancelled") == 3
        ids = custom_ids(message["components"])
        assert not any(i.startswith("imagine:cancel:") for i in ids)  # nothing left to cancel

        again = await fake.invoke_slash("queue", {})
        assert "nothing in progress" in (await fake.wait_for_callback(again)).json["data"]["content"]


async def test_history_shows_a_request_as_one_entry_with_its_images(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    sandbox.force_next(duration=0.1)  # the request of one
    for _ in range(3):
        sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        single = await launch_request(
            bot.runner, bot.store, ImageRequest("one alone"), channel_origin(fake), 1
        )
        await wait_for_job(bot, lambda j: j.task_id is not None, single[0].id, timeout=30)
        jobs = await launch_request(
            bot.runner, bot.store, ImageRequest("three together"), channel_origin(fake), 3
        )
        tasks = await running_tasks(bot, jobs)
        finish_task(sandbox, tasks[1], "failed", "no")
        finish_task(sandbox, tasks[0])
        finish_task(sandbox, tasks[2])
        for job in [*single, *jobs]:
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job.id, timeout=30)
        await world.settle(bot)
        asked = await fake.invoke_slash("history", {})
        answer = (await fake.wait_for_callback(asked)).json["data"]
    content = answer["content"]
    assert "page 1 of 1 (2 requests in all)" in content  # the two requests, not the three images posted
    assert content.count(f"`#{jobs[0].id}`") == 1 and "2 of 3 images" in content
    assert "**1** ✅ · **2** ❌ · **3** ✅" in content
    assert content.index("three together") < content.index("one alone")  # newest first
    assert custom_ids(answer["components"]) == [
        f"imagine:repost:{jobs[0].id}",
        f"imagine:repost:{single[0].id}",
    ]


async def test_post_again_posts_the_requests_images_and_delete_records_every_one(world: World) -> None:
    fake, sandbox = world.fake, world.sandbox
    for _ in range(3):
        sandbox.force_next(never_finish=True)
    async with world.bot() as bot:
        jobs = await launch_request(bot.runner, bot.store, ImageRequest("again"), channel_origin(fake), 3)
        tasks = await running_tasks(bot, jobs)
        finish_task(sandbox, tasks[1], "failed", "no")
        finish_task(sandbox, tasks[0])
        finish_task(sandbox, tasks[2])
        ended = [
            await wait_for_job(bot, lambda j: j.delivered_at is not None, job.id, timeout=30) for job in jobs
        ]
        await world.settle(bot)
        message_id = ended[0].result_message_id or 0
        asked = await fake.invoke_slash("history", {})
        await fake.wait_for_callback(asked)
        again = await fake.invoke_component(f"imagine:repost:{jobs[0].id}", asked.original_message_id or 0)
        await fake.wait_for_callback(again)
        await world.settle(bot)
        repost = fake.messages[again.original_message_id or 0]
        assert [a["filename"] for a in repost["attachments"]] == [
            f"imagine-{jobs[0].id}-1.png",
            f"imagine-{jobs[2].id}-1.png",
        ]
        assert [data for _, data in fake.message_files(int(repost["id"]))] == [
            data for _, data in fake.message_files(message_id)
        ]

        click = await fake.invoke_component(f"imagine:delete:{jobs[0].id}", message_id)
        await fake.wait_for_callback(click)
        await world.settle(bot)
        assert message_id not in fake.messages
        after = [await bot.store.jobs.get(job.id) for job in jobs]
    assert [j.result_deleted_at is not None for j in after if j is not None] == [True, False, True]


async def test_history_pages_count_requests_of_one_and_four_images(world: World) -> None:
    """Six requests (three of one image, three of four: fifteen images) make two pages of five requests:
    "page 1 of 2" with Older only, then "page 2 of 2" with Newer only, whose Newer leads back; the
    buttons work after a restart."""
    fake = world.fake
    world.sandbox.config.duration = 0.05
    sizes = [1, 4, 1, 4, 4, 1]
    async with world.bot(default_daily_quota=50) as bot:
        requests = []
        for n, size in enumerate(sizes):
            jobs = await launch_request(
                bot.runner, bot.store, ImageRequest(f"request {n}"), channel_origin(fake), size
            )
            for job in jobs:
                await wait_for_job(bot, lambda j: j.delivered_at is not None, job.id, timeout=30)
            requests.append(jobs)
        await world.settle(bot)

        asked = await fake.invoke_slash("history", {})
        first = (await fake.wait_for_callback(asked)).json["data"]
        assert "page 1 of 2 (6 requests in all)" in first["content"]
        assert "request 5" in first["content"] and "request 0" not in first["content"]
        ids = custom_ids(first["components"])
        assert ids[:5] == [f"imagine:repost:{jobs[0].id}" for jobs in requests[:0:-1]]
        assert ids[5:] == [f"imagine:history:{fake.user_id}:1:next:{requests[1][0].id}"]  # Older only

    async with world.bot():  # the page buttons need nothing the first process held
        older = await fake.invoke_component(ids[5], asked.original_message_id or 0)
        second = (await fake.wait_for_callback(older)).json["data"]
        assert "page 2 of 2 (6 requests in all)" in second["content"]
        assert "request 0" in second["content"] and "request 1" not in second["content"]
        back = custom_ids(second["components"])
        assert back == [
            f"imagine:repost:{requests[0][0].id}",
            f"imagine:history:{fake.user_id}:0:prev:{requests[0][0].id}",  # Newer only
        ]

        newer = await fake.invoke_component(back[1], asked.original_message_id or 0)
        again = (await fake.wait_for_callback(newer)).json["data"]
    assert "page 1 of 2 (6 requests in all)" in again["content"]
    assert custom_ids(again["components"]) == ids
